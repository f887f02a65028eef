"""Error reports to Sentry (sentry-sdk), switched on by SENTRY_DSN, scrubbed like the logs before they leave.

sentry-sdk's own defaults already leave out cookies, IP addresses and user details (send_default_pii is
off) and mask values whose keys look like passwords or tokens (its EventScrubber). before_send then runs
every remaining string of the event (messages, exception values, local variables, breadcrumbs, request
data) through shopapp.logs.redact, so a card number in an exception's text, a reset token in a URL or a
Stripe key in a local variable never reaches Sentry, and drops the request's cookies and headers that
carry credentials.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from shopapp.logs import redact_value

# Request headers that carry credentials or session state: removed outright.
SECRET_HEADERS = frozenset({"cookie", "authorization", "stripe-signature", "x-csrftoken", "x-csrf-token"})
# Form or JSON fields never sent, whatever their value.
SECRET_FIELDS = frozenset(
    {"password", "new_password", "current_password", "confirm", "csrf_token", "code", "totp", "recovery_code"}
)


def scrub_event(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sentry's before_send: the event without cookies, credential headers or password fields, redacted."""
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("cookies", None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {k: v for k, v in headers.items() if k.lower() not in SECRET_HEADERS}
        data = request.get("data")
        if isinstance(data, dict):
            request["data"] = {k: ("[removed]" if k.lower() in SECRET_FIELDS else v) for k, v in data.items()}
    scrubbed: dict[str, Any] = redact_value(event)
    return scrubbed


def init_error_reports(app: Flask) -> None:
    """Start sentry-sdk with the Flask integration when SENTRY_DSN is set; nothing otherwise."""
    dsn = app.config.get("SENTRY_DSN")
    if not dsn:
        return
    import sentry_sdk  # only where it is used: importing it patches nothing until init
    from sentry_sdk.integrations.flask import FlaskIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=app.config.get("SENTRY_ENVIRONMENT"),
        integrations=[FlaskIntegration()],
        send_default_pii=False,
        before_send=scrub_event,  # type: ignore[arg-type]
        before_send_transaction=scrub_event,  # type: ignore[arg-type]
        traces_sample_rate=0.0,
        max_request_body_size="small",
    )
