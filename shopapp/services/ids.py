"""Reading integers from untrusted text (form fields, Stripe metadata), and the random part of idempotency keys."""

from __future__ import annotations

import re
import secrets
import string

_DIGITS = re.compile(r"[0-9]{1,18}")

# The largest row id the database stores: PostgreSQL's `integer` (SQLite's is wider). An id above it names no
# row; reading it would overflow the query (a 500), so URLs and query arguments refuse it as "not found".
DB_INT_MAX = 2**31 - 1


def db_id(value: object) -> int:
    """`type=` for request.args.get: the id spelled in ASCII digits within DB_INT_MAX; ValueError otherwise
    (Werkzeug then gives the default, None, and the view answers 404)."""
    found = parse_ascii_int(value, max_digits=10)
    if found is None or found > DB_INT_MAX:
        raise ValueError(value)
    return found


def parse_ascii_int(value: object, max_digits: int = 9) -> int | None:
    """The integer spelled by `value` in ASCII digits (at most `max_digits`), else None.

    str.isdigit() also accepts "²" or Arabic-Indic digits, which int() refuses or reads differently: every id
    that comes from outside goes through here instead.
    """
    text = value if isinstance(value, str) else ""
    if len(text) > max_digits or not _DIGITS.fullmatch(text):
        return None
    return int(text)


# Letters only: a key part that never forms a digit run (logs are scanned for card-like numbers).
_KEY_ALPHABET = string.ascii_lowercase
KEY_PART_LENGTH = 14  # 26**14: about 65 bits


def random_key_part() -> str:
    """The random part of an idempotency key (lower-case letters, KEY_PART_LENGTH of them, from `secrets`)."""
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(KEY_PART_LENGTH))
