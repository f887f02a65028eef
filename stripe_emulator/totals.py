"""A Checkout Session's amounts: subtotal, discount, shipping and tax, as Stripe computes them.

`amount_total = amount_subtotal - amount_discount + amount_shipping + exclusive tax` (Stripe's
`total_details`: "amount_tax" counts inclusive and exclusive tax alike, but only exclusive tax is added to the
total; inclusive tax is already inside the prices). The discount comes off the line items in proportion to their
amounts ("Apply a discount to an entire purchase subtotal", Checkout "Add discounts") and tax is computed on what
remains of each line and on the shipping amount (Stripe Tax, "Tax calculation": discounts reduce the taxable
amount). Everything is recomputed here, in one place, whenever a discount, shipping rate or address changes.
"""

from __future__ import annotations

from typing import Any

from . import discounts, taxes
from .store import Store


def recompute(store: Store, session: dict[str, Any]) -> None:
    """Set the session's and its line items' amounts, `total_details`, `shipping_cost` and `automatic_tax.status`."""
    items = store.line_items[session["id"]]
    subtotal = sum(item["amount_subtotal"] for item in items)
    session["amount_subtotal"] = subtotal
    breakdown: dict[str, list[dict[str, Any]]] = {"discounts": [], "taxes": []}
    discount = 0
    coupon = session.get("_coupon")
    if coupon is not None:
        discount = discounts.amount_off(coupon, subtotal)
        promotion_code = session.get("_promotion_code")
        discount_object = discounts.discount_object(session, coupon, promotion_code, session["created"])
        discount_object["_coupon"] = coupon  # what versions before 2025-09-30.clover show in place of `source`
        session["_discount_id"] = discount_object["id"]
        breakdown["discounts"].append({"amount": discount, "discount": discount_object})
    for item, share in zip(items, discounts.spread(discount, [i["amount_subtotal"] for i in items]), strict=True):
        item["amount_discount"] = share
    option = session.get("_shipping")  # the chosen shipping option: {"shipping_rate": id, "shipping_amount": n}
    shipping = option["shipping_amount"] if option else 0
    calculation = taxes.calculate(store, session, items, shipping)
    exclusive = 0
    for item, line in zip(items, calculation.lines, strict=True):
        item["amount_tax"] = line.amount
        item["amount_total"] = (
            item["amount_subtotal"] - item["amount_discount"] + (0 if line.inclusive else line.amount)
        )
        exclusive += 0 if line.inclusive else line.amount
    shipping_tax = calculation.shipping
    if option is not None:
        exclusive += 0 if shipping_tax.inclusive else shipping_tax.amount
        session["shipping_cost"] = {
            "amount_subtotal": shipping,
            "amount_tax": shipping_tax.amount,
            "amount_total": shipping + (0 if shipping_tax.inclusive else shipping_tax.amount),
            "shipping_rate": option["shipping_rate"],
        }
    else:
        session["shipping_cost"] = None
    breakdown["taxes"] = calculation.breakdown
    tax_total = sum(line.amount for line in calculation.lines) + shipping_tax.amount
    session["amount_total"] = subtotal - discount + shipping + exclusive
    session["total_details"] = {"amount_discount": discount, "amount_shipping": shipping, "amount_tax": tax_total}
    session["_breakdown"] = breakdown
    if session["automatic_tax"]["enabled"]:
        session["automatic_tax"]["status"] = calculation.status
