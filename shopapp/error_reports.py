"""Error reports to Sentry (sentry-sdk), switched on by SENTRY_DSN, scrubbed like the logs before they leave.

sentry-sdk is told to leave out user details and masks values whose keys look like passwords or tokens
(its default denylist). before_send then runs
every remaining string of the event (messages, exception values, local variables, breadcrumbs, request
data) through shopapp.logs.redact, so a card number in an exception's text, a reset token in a URL or a
Stripe key in a local variable never reaches Sentry, and drops the request's cookies and headers that
carry credentials.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from shopapp.logs import redact

# A value under a key containing one of these (any case) is replaced whole, wherever it sits in the event:
# request headers, form and JSON fields, a frame's local variables, breadcrumbs, extra context.
SENSITIVE_KEY_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "cookie",
    "authorization",
    "csrf",
    "api_key",
    "apikey",
    "signature",
    "session",
    "totp",
    "recovery",
)
# Exact keys that are sensitive but too short to match by part ("code": a two-factor code field).
SENSITIVE_KEYS = frozenset({"code", "otp", "card", "number", "cvc"})
FILTERED = "[Filtered]"
_enabled = False  # set once sentry_sdk.init ran in this process


def _sensitive(key: object) -> bool:
    lowered = str(key).lower()
    return lowered in SENSITIVE_KEYS or any(part in lowered for part in SENSITIVE_KEY_PARTS)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: (FILTERED if _sensitive(key) else _scrub(item)) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


def scrub_event(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sentry's before_send: sensitive keys masked everywhere, every other string through logs.redact."""
    scrubbed: dict[str, Any] = _scrub(event)
    return scrubbed


def init_error_reports(app: Flask) -> None:
    """Start sentry-sdk with the Flask integration when SENTRY_DSN is set; nothing otherwise."""
    dsn = app.config.get("SENTRY_DSN")
    if not dsn:
        return
    import sentry_sdk  # only where it is used: importing it patches nothing until init
    from sentry_sdk.consts import DEFAULT_OPTIONS
    from sentry_sdk.integrations.flask import FlaskIntegration

    options: dict[str, Any] = {
        "dsn": dsn,
        "environment": app.config.get("SENTRY_ENVIRONMENT"),
        "integrations": [FlaskIntegration()],
        "before_send": scrub_event,
        "traces_sample_rate": 0.0,
        "max_request_body_size": "small",
    }
    # Say "no user details" in whichever words the installed SDK knows (2.x: send_default_pii; 3.x:
    # data_collection); before_send scrubs either way.
    if "send_default_pii" in DEFAULT_OPTIONS:
        options["send_default_pii"] = False
    if "data_collection" in DEFAULT_OPTIONS:
        options["data_collection"] = {"user_info": False}
    sentry_sdk.init(**options)
    global _enabled
    _enabled = True


def capture(error: BaseException) -> None:
    """Send one unexpected error to Sentry when reporting is on (scrubbed by scrub_event); else nothing."""
    if not _enabled:
        return
    import sentry_sdk

    sentry_sdk.capture_exception(error)
