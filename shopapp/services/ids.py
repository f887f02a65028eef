"""Reading integers from untrusted text (form fields, Stripe metadata)."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"[0-9]{1,18}")


def parse_ascii_int(value: object, max_digits: int = 9) -> int | None:
    """The integer spelled by `value` in ASCII digits (at most `max_digits`), else None.

    str.isdigit() also accepts "²" or Arabic-Indic digits, which int() refuses or reads differently: every id
    that comes from outside goes through here instead.
    """
    text = value if isinstance(value, str) else ""
    if len(text) > max_digits or not _DIGITS.fullmatch(text):
        return None
    return int(text)
