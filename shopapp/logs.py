"""Logging set-up, with a filter that keeps secrets and card numbers out of every log line."""

from __future__ import annotations

import logging
import re

from flask import Flask

# Card-number-like digit runs (13-19 digits, optionally grouped) and Stripe secrets.
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_SECRET = re.compile(r"\b(sk|rk|whsec)_(test_|live_)?[A-Za-z0-9]+")


def redact(text: str) -> str:
    """Mask card-number-like digit runs and Stripe secret keys in text."""
    text = _SECRET.sub(lambda m: f"{m.group(1)}_***", text)
    return _CARD.sub("[card-redacted]", text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message through redact()."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def init_logging(app: Flask) -> None:
    """Send the app's logs to stderr at the configured level, redacted."""
    app.logger.setLevel(app.config["LOG_LEVEL"])
    for handler in app.logger.handlers or logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())
    logging.getLogger("shopapp").setLevel(app.config["LOG_LEVEL"])
    if not any(isinstance(f, RedactingFilter) for f in logging.getLogger("shopapp").filters):
        logging.getLogger("shopapp").addFilter(RedactingFilter())
