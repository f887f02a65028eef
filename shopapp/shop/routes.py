"""Shop views: the product page, Buy, and cancelling a pending order."""

from __future__ import annotations

import logging

from flask import current_app, flash, redirect, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from shopapp.extensions import limiter
from shopapp.services import catalog, checkout, orders, stock
from shopapp.shop import bp, page_cache

log = logging.getLogger("shopapp.shop")


# A GET never writes: the order stays pending (and keeps any units it holds) until the shopper cancels it
# or its session expires at Stripe.
CANCELED_NOTICE = (
    "Payment canceled: nothing was charged. Your order stays open until its payment page expires; "
    "cancel it under My orders to release its items now."
)


def _render_shop(*, error: str | None = None, status: int = 200, selection: dict[str, str] | None = None):
    user = current_user
    # 0 for a visitor (no orders to show); a shopper's page number, bounded like the orders query's.
    page = min(max(1, request.args.get("page", default=1, type=int)), orders.MAX_PAGE) if user.is_authenticated else 0
    notice = CANCELED_NOTICE if request.args.get("checkout") == "canceled" else None
    return page_cache.shop_page(user, page, notice=notice, error=error, selection=selection or {}), status


@bp.get("/")
def index():
    """The shop page: products for everyone, "My orders" for a logged-in shopper."""
    return _render_shop()


def _checkout_limit() -> str:
    return str(current_app.config["CHECKOUT_RATE_LIMIT"])


@bp.post("/checkout")
@limiter.limit(_checkout_limit)
@login_required
def buy() -> Response | tuple[str, int]:
    """Validate the selection, create or reuse the order and its Checkout Session, and go pay (303)."""
    fields = list(request.form.items(multi=True))
    selection = {name: value for name, value in fields if name.startswith("qty-")}
    try:
        cart = catalog.parse_selection(fields, current_app.config["MAX_QUANTITY_PER_LINE"])
        started = checkout.start_checkout(
            current_user.id,
            cart,
            checkout.CheckoutUrls(
                success_url=url_for("payments.success", _external=True) + "?session_id={CHECKOUT_SESSION_ID}",
                cancel_url=url_for("shop.index", checkout="canceled", _external=True),
            ),
            checkout.SessionTTL(
                default=current_app.config["CHECKOUT_SESSION_TTL_MINUTES"],
                with_stock=current_app.config["CHECKOUT_SESSION_TTL_MINUTES_WITH_STOCK"],
            ),
        )
    except (catalog.SelectionError, stock.OutOfStock) as error:
        return _render_shop(error=str(error), status=400, selection=selection)
    except checkout.CheckoutError as error:
        response = _render_shop(error=str(error), status=503, selection=selection)
        return response
    return redirect(started.url, code=303)


# Bounded so an id beyond the database integer range is a 404, not an overflow.
@bp.post("/orders/<int(max=2147483647):order_id>/cancel")
@login_required
def cancel_order(order_id: int) -> Response | tuple[str, int]:
    """Cancel one of the shopper's pending orders (its session is expired at Stripe first)."""
    try:
        outcome = checkout.cancel_order(current_user.id, order_id)
    except checkout.OrderNotFound:
        log.warning("Cancel refused: order %s is not user %s's (or does not exist)", order_id, current_user.id)
        return _render_shop(error="That order was not found.", status=404)
    except checkout.CheckoutError as error:
        return _render_shop(error=str(error), status=503)
    if outcome == checkout.Outcome.EXPIRED:
        flash(f"Order #{order_id} was canceled. Nothing was charged.", "info")
    elif outcome == checkout.Outcome.PAID:
        flash(f"Order #{order_id} had already been paid, so it was not canceled.", "warning")
    else:
        flash(f"Order #{order_id} can no longer be canceled.", "warning")
    return redirect(url_for("shop.index"))
