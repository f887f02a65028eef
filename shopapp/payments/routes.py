"""Payment views: thin; the checkout and webhook services decide everything."""

from __future__ import annotations

import logging

from flask import abort, current_app, render_template, request
from flask_login import current_user, login_required

from shopapp.database import RETRY_AFTER_SECONDS, is_unavailable
from shopapp.extensions import csrf, limiter
from shopapp.payments import bp
from shopapp.security import body_limit
from shopapp.services import checkout, webhook_rejections, webhooks

log = logging.getLogger("shopapp.payments")


def _success_limit() -> str:
    return str(current_app.config["SUCCESS_PAGE_RATE_LIMIT"])


def _shopper_key() -> str:
    return f"success-page:user:{current_user.id}"


@bp.get("/success/")
@login_required
# Per shopper (inside login_required, so there is one), on top of the per-order Stripe interval.
@limiter.limit(_success_limit, key_func=_shopper_key)
def success() -> str:
    """Where Stripe returns the shopper; never trusts the query string beyond looking the session up."""
    session_id = request.args.get("session_id", "")
    if not session_id.startswith("cs_") or len(session_id) > 255:
        abort(404)
    order = checkout.settle_from_success_page(current_user.id, session_id)
    if order is None:
        log.warning("Success page refused: session is not user %s's (or unknown)", current_user.id)
        abort(404)
    return render_template("payments/success.html", order=order)


@bp.post("/webhook/")
@bp.post("/webhook", endpoint="webhook_no_slash")
@csrf.exempt
# Stripe's events are a few KiB; the webhook has its own cap instead of the site-wide one.
@body_limit("WEBHOOK_MAX_BYTES")
def webhook() -> tuple[str, int] | tuple[str, int, dict[str, str]]:
    """Stripe's signed events: 400 for anything unverifiable, 5xx when applying failed (Stripe retries)."""
    if not current_app.config.get("STRIPE_WEBHOOK_SECRET"):
        log.error("Webhook refused: STRIPE_WEBHOOK_SECRET is not configured")
        return "webhook secret not configured\n", 400
    payload = request.get_data(cache=False)
    if request.max_content_length is not None and len(payload) >= request.max_content_length:
        abort(413)  # a chunked body is cut off at the cap (no Content-Length to refuse up front): refuse it too
    try:
        result = webhooks.receive_webhook(payload, request.headers.get("Stripe-Signature"))
    except webhooks.WebhookSignatureInvalid as error:
        log.warning("Webhook rejected from %s: %s", request.remote_addr, error)
        webhook_rejections.record(str(error))  # counted for the dashboard: a wrong clock refuses every event
        return "invalid signature\n", 400
    except webhooks.MalformedEvent as error:
        log.warning("Webhook rejected from %s: %s", request.remote_addr, error)
        return "malformed event\n", 400
    except webhooks.WebhookNotReady:
        # 409, not 5xx: nothing is broken, the event is early; any non-2xx makes Stripe redeliver it.
        return "not applicable yet; please retry\n", 409
    except webhooks.WebhookProcessingError as error:
        if is_unavailable(error):
            # The database is down, locked or read-only: Stripe retries a 503 like any 5xx, later.
            return "database unavailable; please retry\n", 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}
        return "processing failed; please retry\n", 500
    return f"{result.outcome}\n", 200
