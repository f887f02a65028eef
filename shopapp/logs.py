"""Logging set-up that keeps secrets, cookies and card numbers out of every log line."""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Flask

# Card-number-like digit runs (13-19 digits, optionally grouped), Stripe secrets, and cookie/bearer values.
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_SECRET = re.compile(r"\b(sk|rk|whsec)_(test_|live_)?[A-Za-z0-9]+")
_COOKIE = re.compile(r"\b(session|remember_token|csrf_token)=[^;,\s&]+", re.IGNORECASE)
_BEARER = re.compile(r"\b(Bearer)\s+\S+", re.IGNORECASE)
# Password reset links (/account/reset/<signed token>): the token lets whoever holds it set the password.
_RESET = re.compile(r"(/reset/)[A-Za-z0-9_.\-]+")


def redact(text: str) -> str:
    """Mask card-number-like digit runs, Stripe secret keys, cookie or bearer values and reset tokens in text."""
    text = _SECRET.sub(lambda m: f"{m.group(1)}_***", text)
    text = _COOKIE.sub(lambda m: f"{m.group(1)}=***", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} ***", text)
    text = _RESET.sub(lambda m: f"{m.group(1)}***", text)
    return _CARD.sub("[card-redacted]", text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message through redact()."""

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except (TypeError, ValueError):
        return  # a broken format string: the handler reports it as logging always has
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, None


_previous_factory: Any = None


def _install_record_factory() -> None:
    """Redact every record as it is created, so any handler (gunicorn, pytest, a log shipper) sees clean text.

    A filter on the "shopapp" logger would not see records of its children ("shopapp.auth" ...), and handler
    filters only cover the handlers present at start-up: redacting at creation covers both.
    """
    global _previous_factory
    if _previous_factory is not None:
        return
    _previous_factory = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = _previous_factory(*args, **kwargs)
        _redact_record(record)
        return record

    logging.setLogRecordFactory(factory)


def init_logging(app: Flask) -> None:
    """Send the app's logs to stderr at the configured level, redacted."""
    app.logger.setLevel(app.config["LOG_LEVEL"])
    _install_record_factory()
    for handler in app.logger.handlers or logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    logging.getLogger("shopapp").setLevel(app.config["LOG_LEVEL"])
