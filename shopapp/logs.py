"""Logging set-up that keeps secrets, cookies and card numbers out of every log line."""

from __future__ import annotations

import functools
import logging
import re
import sys
import time
import unicodedata
from typing import Any

from flask import Flask
from flask.logging import default_handler
from pythonjsonlogger.json import JsonFormatter

from shopapp.request_ids import current_request_id, made_here

# Card-number-like digit runs (13-19 digits, optionally grouped), Stripe secrets, and cookie/bearer values.
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_SECRET = re.compile(r"\b(sk|rk|whsec)_(test_|live_)?[A-Za-z0-9]+")
_COOKIE = re.compile(r"\b(session|remember_token|csrf_token)=[^;,\s&]+", re.IGNORECASE)
_BEARER = re.compile(r"\b(Bearer)\s+\S+", re.IGNORECASE)
# Password reset links (/account/reset/<signed token>): the token lets whoever holds it set the password.
# Also percent-encoded, as in a query string ("?next=%2Faccount%2Freset%2F<token>").
_RESET = re.compile(r"((?:/|%2F)reset(?:/|%2F))[A-Za-z0-9_.\-]+", re.IGNORECASE)


# What people (and encoders) put between the digit groups of a card number, after NFKC: spaces of every
# width (NBSP, thin, ideographic after NFKC), hyphens and dashes, dots, slashes, underscores, "+" (a
# form-encoded space). Up to three in a row ("4242 - 4242").
_SEPARATORS = frozenset(" \t\r\n-._/+\u00a0\u2007\u202f\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc")
_MAX_SEPARATORS = 3
# Unicode decimals, the hex digits of %XX escapes, and raw UTF-8 bytes as a request line shows them (a
# full-width digit is three of those).
_DIGIT_LIKE = re.compile(r"[\d\x80-\xff]")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_HEX_PAIR = re.compile(r"[0-9A-Fa-f]{2}")
CARD_MIN_DIGITS, CARD_MAX_DIGITS = 13, 19  # ISO/IEC 7812 primary account numbers


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check every card number passes; `digits` is ASCII 0-9 only."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _byte_at(text: str, index: int) -> tuple[int, int] | None:
    """The byte a URL or a raw request line carries at `index`: a "%XX" escape, or a character below 256 (a
    server decodes request bytes as Latin-1, PEP 3333); with the index after it. None past the end."""
    if index >= len(text):
        return None
    match = _PERCENT.match(text, index) if text[index] == "%" else None
    if match is not None:
        return int(match.group(1), 16), match.end()
    return (ord(text[index]), index + 1) if ord(text[index]) < 256 else None


def _utf8_sequence(text: str, index: int) -> tuple[str, int] | None:
    """A character written as its UTF-8 bytes at `index` (percent-escaped, "%EF%BC%94", or raw as a request
    line shows them, "\u00ef\u00bc\u0094"), with the index after it; None when there is none there.

    Full-width digits in a URL reach the logs this way (issue 26, finding 7), so they are decoded before the
    digits are looked for."""
    lead = _byte_at(text, index)
    if lead is None or not 0xC2 <= lead[0] <= 0xF4:
        return None
    length = 2 if lead[0] < 0xE0 else 3 if lead[0] < 0xF0 else 4
    data, end = bytearray([lead[0]]), lead[1]
    for _ in range(length - 1):
        unit = _byte_at(text, end)
        if unit is None or not 0x80 <= unit[0] <= 0xBF:
            return None
        data.append(unit[0])
        end = unit[1]
    try:
        return data.decode("utf-8"), end
    except UnicodeDecodeError:
        return None


def _normalised(text: str) -> list[tuple[str, int, int]]:
    """Each character of text as "0"-"9", " " (a separator) or "x", with its span in text.

    Percent-escapes are decoded (twice nested at most: "%2520"), UTF-8 byte sequences too (escaped or raw), and
    each character NFKC-normalised, so full-width digits and ideographic spaces count as what they look like.
    """
    out: list[tuple[str, int, int]] = []
    index = 0
    while index < len(text):
        end, char = index + 1, text[index]
        sequence = _utf8_sequence(text, index) if char == "%" or "\xc2" <= char <= "\xf4" else None
        match = _PERCENT.match(text, index) if char == "%" and sequence is None else None
        if sequence is not None:
            char, end = sequence
        elif match is not None:
            char, end = chr(int(match.group(1), 16)), match.end()
            nested = _HEX_PAIR.match(text, end) if char == "%" else None
            if nested is not None:  # "%2520": an escaped escape
                char, end = chr(int(nested.group(), 16)), nested.end()
        folded = unicodedata.normalize("NFKC", char)
        if len(folded) == 1 and unicodedata.decimal(folded, None) is not None:
            out.append((str(unicodedata.decimal(folded)), index, end))
        elif folded and all(c in _SEPARATORS for c in folded):
            out.append((" ", index, end))
        else:
            out.append(("x", index, end))
        index = end
    return out


def _card_spans(text: str) -> list[tuple[int, int]]:
    """Spans of text holding 13-19 digits that pass the Luhn check, separated and encoded in any way above."""
    chars = _normalised(text)
    flat = "".join(kind for kind, _, _ in chars)
    spans = []
    for run in re.finditer(rf"[0-9]+(?: {{1,{_MAX_SEPARATORS}}}[0-9]+)*", flat):
        groups = [(m.start() + run.start(), m.end() + run.start()) for m in re.finditer(r"[0-9]+", run.group())]
        # Every sequence of whole groups (a card is never split inside a group) with 13-19 digits.
        for first in range(len(groups)):
            digits = ""
            for last in range(first, len(groups)):
                digits += flat[groups[last][0] : groups[last][1]]
                if len(digits) > CARD_MAX_DIGITS:
                    break
                if len(digits) >= CARD_MIN_DIGITS and luhn_valid(digits):
                    spans.append((chars[groups[first][0]][1], chars[groups[last][1] - 1][2]))
    return spans


def redact_cards(text: str) -> str:
    """Replace every Luhn-valid 13-19 digit card number in text, however separated or encoded."""
    if len(_DIGIT_LIKE.findall(text)) < CARD_MIN_DIGITS:
        return text  # the common case: too few digits of any kind to hold a card number
    spans = _card_spans(text)
    if not spans:
        return text
    # Merge overlapping spans, then cut from the end so earlier offsets stay valid.
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for start, end in reversed(merged):
        text = text[:start] + "[card-redacted]" + text[end:]
    return text


def redact(text: str) -> str:
    """Mask card numbers (any separators or encoding), Stripe secret keys, cookie or bearer values and reset
    tokens in text."""
    text = _SECRET.sub(lambda m: f"{m.group(1)}_***", text)
    text = _COOKIE.sub(lambda m: f"{m.group(1)}=***", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} ***", text)
    text = _RESET.sub(lambda m: f"{m.group(1)}***", text)
    text = redact_cards(text)
    # Any other 13-19 digit run grouped by spaces or dashes (an unchecked card-like number) as before.
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
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        # A traceback ends with the exception's text, which may quote a card number or a key: formatted
        # once here, redacted, and kept where every formatter looks first (logging.Formatter.format).
        record.exc_text = redact(_TRACEBACKS.formatException(record.exc_info))


_TRACEBACKS = logging.Formatter()
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
        # Every line carries the id of the request it belongs to ("-" outside requests: CLI, cron). One from
        # the proxy's header is client-controlled: redacted, once per id, not once per line. One made here is
        # random hex, kept as is (the card check could only mangle it).
        request_id = current_request_id() or "-"
        record.request_id = request_id if made_here(request_id) else _clean_request_id(request_id)
        return record

    logging.setLogRecordFactory(factory)


@functools.lru_cache(maxsize=256)
def _clean_request_id(request_id: str) -> str:
    # All lines of a request share its id: the card check (per character, for an id of 13+ digits such as
    # our own 32 hex characters) runs once per request instead of once per line.
    return redact(request_id)


def redact_value(value: Any) -> Any:
    """redact() applied to every string inside value (dicts, lists and tuples walked; keys kept)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(item) for item in value]
    return value


class RedactingJsonFormatter(JsonFormatter):
    """python-json-logger's formatter, one JSON object per line, with every field redacted.

    The message is clean already (the record factory); this also covers what is formatted later: the
    traceback (an exception's text may quote a card number) and fields passed with `extra=`.
    """

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        """Redact each value of the line about to be written, except the fields made clean upstream."""
        data = super().process_log_record(log_data)
        return {key: value if key in _CLEAN_FIELDS else redact_value(value) for key, value in data.items()}


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record is emitted (gunicorn and test runners replace it)."""

    shop_json = True

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> Any:  # type: ignore[override]
        """The current sys.stderr."""
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # StreamHandler.setStream: stderr is always the current one


JSON_FIELDS = "{asctime}{levelname}{name}{message}{request_id}"
# Fields that hold no text from outside: the time, level and logger name the formatter writes from the record,
# and the request id the record factory redacted. The time alone has 17 digits, so redacting it ran the
# per-character card check on every line (about 600 Python calls a line, issue 25).
_CLEAN_FIELDS = frozenset({"time", "level", "logger", "request_id"})


def json_formatter() -> logging.Formatter:
    """The production formatter: time (ISO 8601, UTC), level, logger, message, request_id, then any extras."""
    formatter = RedactingJsonFormatter(
        JSON_FIELDS,
        style="{",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        timestamp=False,
    )
    formatter.converter = time.gmtime  # type: ignore[assignment]
    formatter.default_time_format = "%Y-%m-%dT%H:%M:%S"
    formatter.default_msec_format = "%s.%03dZ"
    return formatter


def init_logging(app: Flask) -> None:
    """Send the app's logs to stderr at the configured level, redacted; one JSON object a line when
    LOG_FORMAT is json (production's default)."""
    app.logger.setLevel(app.config["LOG_LEVEL"])
    _install_record_factory()
    if app.config.get("LOG_FORMAT") == "json":
        # The shop's own loggers ("shopapp.*") all reach the app's logger; gunicorn's stay its own. Flask's
        # default handler is shared by every app in the process, so it is replaced, not re-formatted.
        for handler in list(app.logger.handlers):
            if handler is default_handler or getattr(handler, "shop_json", False):
                app.logger.removeHandler(handler)
        json_handler = StderrHandler()
        json_handler.setFormatter(json_formatter())
        app.logger.addHandler(json_handler)
    for handler in app.logger.handlers or logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    logging.getLogger("shopapp").setLevel(app.config["LOG_LEVEL"])
