"""Times as the shop shows them."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app


def local_time(moment: datetime | None) -> str:
    """A stored UTC time as the shop's local time, to the minute: "2026-11-29 18:05 EST" ("" for None).

    The zone is config SHOP_TIMEZONE (an IANA name, default UTC); no seconds or microseconds. Used by pages,
    the admin and emails alike, so a receipt and its order page name the same moment the same way.
    """
    if moment is None:
        return ""
    zone = ZoneInfo(current_app.config.get("SHOP_TIMEZONE") or "UTC")
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def local_day(moment: datetime | None) -> str:
    """A stored UTC time as the shop's local calendar day, short: "4 Dec" ("" for None), in SHOP_TIMEZONE.

    For deadlines ("respond by 4 Dec"): a day a reader acts on, not a minute.
    """
    if moment is None:
        return ""
    local = moment.astimezone(ZoneInfo(current_app.config.get("SHOP_TIMEZONE") or "UTC"))
    return f"{local.day} {local:%b}"
