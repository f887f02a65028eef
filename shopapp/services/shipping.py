"""Shipping: the address Checkout collected, and staff marking a paid order shipped.

Checkout collects an address when config SHIPPING_COUNTRIES lists countries (`shipping_address_collection
[allowed_countries]`). Where the completed session carries it depends on the API version: current versions
put it at `collected_information.shipping_details` (stripe-python's checkout/_session.py,
Session.CollectedInformation.ShippingDetails: name + address); versions before 2025-03-31 at the top-level
`shipping_details`; versions before 2022-08-01 at `shipping`. `shipping_details_from_session` is the one
reader of all three.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from shopapp.models import Order
from shopapp.models.base import utcnow
from shopapp.services import orders as order_rules
from shopapp.services import outbox, refunds
from shopapp.services.addresses import address_lines as address_lines  # the order pages print it from here
from shopapp.services.tx import write_transaction

ADDRESS_KEYS = ("line1", "line2", "city", "postal_code", "state", "country")
MAX_CARRIER = 80
MAX_TRACKING = 120


class ShippingError(ValueError):
    """A refused shipping change (the message is for staff; `reason` without the order number, when refused)."""

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


def session_params(countries: Sequence[str]) -> dict[str, Any]:
    """The Checkout Session parameters that make Stripe collect a shipping address ({} when off)."""
    if not countries:
        return {}
    return {"shipping_address_collection": {"allowed_countries": [c.upper() for c in countries]}}


def shipping_details_from_session(checkout_session: Mapping[str, Any]) -> dict[str, Any] | None:
    """{"name": ..., "address": {line1, line2, city, postal_code, state, country}} from a completed
    Checkout Session of any supported API version, or None when it collected no address."""
    collected = checkout_session.get("collected_information")
    candidates = [
        collected.get("shipping_details") if isinstance(collected, Mapping) else None,
        checkout_session.get("shipping_details"),
        checkout_session.get("shipping"),
    ]
    for details in candidates:
        if isinstance(details, Mapping) and isinstance(details.get("address"), Mapping):
            address = details["address"]
            if not any(address.get(key) for key in ADDRESS_KEYS):
                continue
            return {
                "name": str(details.get("name") or ""),
                "address": {key: (str(address[key]) if address.get(key) else None) for key in ADDRESS_KEYS},
            }
    return None


def shipping_address_json(checkout_session: Mapping[str, Any]) -> str | None:
    """The collected address as stored on Order.shipping_address (JSON), or None."""
    details = shipping_details_from_session(checkout_session)
    return None if details is None else json.dumps(details, sort_keys=True)


@dataclass(frozen=True)
class Shipped:
    """What mark_shipped did: `repeated` when the order was already marked shipped."""

    order_id: int
    repeated: bool


def tracking_url(carrier: str | None, tracking_number: str | None) -> str | None:
    """The carrier's tracking page for a number (config CARRIER_TRACKING_URLS, keyed by lower-cased carrier
    name), or None when the carrier is not listed or either part is missing. The number is URL-quoted."""
    if not carrier or not tracking_number:
        return None
    pattern = current_app.config["CARRIER_TRACKING_URLS"].get(carrier.strip().lower())
    return pattern.format(number=quote(tracking_number.strip(), safe="")) if pattern else None


def refusal(session: Session, order: Order) -> str | None:
    """Why staff cannot mark the order shipped now, in words for them; None when they can (or it is shipped).

    The one answer the order page ("Ready to ship" and its form), the bulk "Mark shipped" action and
    mark_shipped give: a dispute's hold first, then "not paid", then refunds in flight for all that is left."""
    if order.shipped_at is not None:
        return None
    if order.hold_reason is not None:
        return order.hold_reason
    if not order.is_shippable:
        return f"{order.status.label}: only paid orders can be shipped."
    if refunds.pending_refund_cents(session, order.id) and not refunds.remaining_refundable_cents(session, order):
        return "Everything left on the order is being refunded."
    return None


def mark_shipped(order_id: int, *, carrier: str = "", tracking_number: str = "", actor: str) -> Shipped:
    """Mark a paid order shipped (optional carrier and tracking number) with a timeline entry, in one transaction.

    Raises ShippingError when `refusal` names a reason (held, not paid, all of it being refunded) and
    LookupError for an unknown one.
    Marking it again changes nothing (repeated=True). The shopper's notice (carrier, tracking number, a link
    to the order page) is queued in the outbox in the same transaction as the mark, so it goes exactly when
    the mark commits, once (dedupe key "order-<id>-shipped").
    """
    carrier, tracking_number = carrier.strip(), tracking_number.strip()
    if len(carrier) > MAX_CARRIER or len(tracking_number) > MAX_TRACKING:
        raise ShippingError(f"Carrier at most {MAX_CARRIER} characters, tracking number at most {MAX_TRACKING}.")
    with write_transaction() as session:
        order = session.scalar(
            select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
        )
        if order is None:
            raise LookupError(order_id)
        if order.shipped_at is not None:
            return Shipped(order_id, repeated=True)
        refused = refusal(session, order)
        if refused is not None:
            raise ShippingError(f"Order #{order_id}: {refused}", reason=refused)
        order.shipped_at = utcnow()
        order.shipping_carrier, order.tracking_number = carrier, tracking_number
        via = " ".join(part for part in (carrier, tracking_number) if part)
        order_rules.record_order_event(session, order, actor=actor, note="Shipped" + (f" via {via}" if via else ""))
        outbox.enqueue_shipping_notice(order)
    return Shipped(order_id, repeated=False)
