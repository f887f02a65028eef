"""Printing a stored shipping address. Imports nothing of the shop's, so mail composing can use it without
importing shipping (which queues mail through the outbox, which composes mail: the cycle this module breaks)."""

from __future__ import annotations

import json


def address_lines(shipping_address: str | None) -> list[str]:
    """The stored address as printable lines (name, street, city line, country); [] when none."""
    if not shipping_address:
        return []
    data = json.loads(shipping_address)
    address = data.get("address") or {}
    city = " ".join(part for part in (address.get("postal_code"), address.get("city"), address.get("state")) if part)
    lines = [data.get("name"), address.get("line1"), address.get("line2"), city, address.get("country")]
    return [str(line) for line in lines if line]
