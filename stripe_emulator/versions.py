"""API versions: which ones the emulator renders, and how objects and events differ between them.

Stripe keeps one copy of each object and renders it in the version of whoever reads it: an API request in its
`Stripe-Version` (the SDK sends its pin), a webhook endpoint in its own `api_version`, anything else in the
account's default. The emulator does the same: stored objects are in the newest shape plus internal fields
(names starting with `_`) that older shapes need; `render` produces the shape of one version.

Every change point below is from Stripe's changelog (docs.stripe.com/changelog):
- 2022-08-01: a Checkout Session has no PaymentIntent until the shopper confirms (the oldest version rendered;
  the emulator never creates one earlier).
- 2022-11-15: a Charge no longer includes `refunds` unless expanded; a PaymentIntent's `charges` list is replaced
  by `latest_charge`.
- 2024-10-28.acacia: `refund.created`, `refund.updated` and `refund.failed` are sent for card refunds too
  (before, only `charge.refunded` and `charge.refund.updated` announced them).
- 2025-02-24.acacia: a Checkout Session gains `collected_information` (with `shipping_details`).
- 2025-03-31.basil: the top-level `shipping_details` of a Checkout Session is removed.
- 2025-09-30.clover: a Promotion Code's top-level `coupon` (the whole Coupon) moves to `promotion.coupon` (an id)
  ("Promotion Codes now reference Coupons using a polymorphic field for promotions"); see discounts.py. The same
  version replaces a Discount's auto-expanded `coupon` with `source` (`type`, `coupon` id) ("Adds the Discount source
  property and removes the Discount coupon property").
"""

from __future__ import annotations

import copy
from typing import Any

from . import shapes
from .errors import invalid
from .sdkfacts import API_VERSIONS, PINNED_VERSION

OLDEST_RENDERED = "2022-08-01"
CHARGE_REFUNDS_COLLAPSED = "2022-11-15"
CARD_REFUND_EVENTS = "2024-10-28.acacia"
SESSION_COLLECTED_INFORMATION = "2025-02-24.acacia"
SESSION_SHIPPING_DETAILS_REMOVED = "2025-03-31.basil"
PROMOTION_CODE_PROMOTION = "2025-09-30.clover"

__all__ = ["PINNED_VERSION", "at_least", "check_version", "render", "render_event"]


def _date(version: str) -> str:
    return version.split(".", 1)[0]


def at_least(version: str, change: str) -> bool:
    """True when `version` is the release of `change` or newer (versions order by their date)."""
    return _date(version) >= _date(change)


def check_version(version: str, param: str = "api_version") -> str:
    """`version` if Stripe knows it and the emulator renders it; else a 400 naming `param`."""
    if version not in API_VERSIONS:
        raise invalid(f"Invalid API version: {version!r}.", param, "parameter_invalid_string")
    if not at_least(version, OLDEST_RENDERED):
        raise invalid(
            f"The local Stripe service renders API versions from {OLDEST_RENDERED} to {PINNED_VERSION}; "
            f"{version!r} is older.",
            param,
            "parameter_invalid_string",
        )
    return version


def render(obj: Any, version: str) -> Any:
    """A copy of a stored object (and the objects nested in it) in the shape of `version`."""
    if isinstance(obj, list):
        return [render(item, version) for item in obj]
    if not isinstance(obj, dict):
        return copy.deepcopy(obj)
    kind = obj.get("object")
    view = {key: render(value, version) for key, value in obj.items() if not key.startswith("_")}
    if kind == "charge" and not at_least(version, CHARGE_REFUNDS_COLLAPSED):
        refunds = render(obj.get("_refunds", []), version)
        view["refunds"] = {
            "object": "list",
            "data": refunds,
            "has_more": False,
            "url": f"/v1/charges/{obj['id']}/refunds",
        }
    elif kind == "payment_intent" and not at_least(version, CHARGE_REFUNDS_COLLAPSED):
        charges = render(obj.get("_charges", []), version)
        view["charges"] = {
            "object": "list",
            "data": charges,
            "has_more": False,
            "url": f"/v1/charges?payment_intent={obj['id']}",
        }
        view.pop("latest_charge", None)
    elif kind == "promotion_code" and not at_least(version, PROMOTION_CODE_PROMOTION):
        view.pop("promotion", None)
        view["coupon"] = render(obj.get("_coupon"), version)
    elif kind == "discount" and not at_least(version, PROMOTION_CODE_PROMOTION):
        view.pop("source", None)
        view["coupon"] = render(obj.get("_coupon"), version)
    elif kind == "checkout.session":
        collected = obj.get("collected_information") or {}
        if not at_least(version, SESSION_SHIPPING_DETAILS_REMOVED):
            view["shipping_details"] = render(collected.get("shipping_details"), version)
        if not at_least(version, SESSION_COLLECTED_INFORMATION):
            view.pop("collected_information", None)
    return view


def render_object(obj: Any, version: str) -> Any:
    """`render`, then every always-present field the stored object lacks (stripe_emulator.shapes)."""
    return shapes.fill(render(obj, version))


def render_event(event: dict[str, Any], version: str) -> dict[str, Any]:
    """A stored event as an endpoint (or API caller) of `version` receives it."""
    view = render_object(event, version)
    view["api_version"] = version
    return view


def event_exists_for(event: dict[str, Any], version: str) -> bool:
    """Whether Stripe sends this event to a reader of `version` (some types start at a version)."""
    since = event.get("_since_version")
    return since is None or at_least(version, since)
