"""Paid invoices for one-time Checkout payments (`invoice_creation[enabled]=true`).

Sources: Checkout "Post-payment invoices for one-time purchases" (docs.stripe.com/payments/checkout/post-payment-
invoices): after a successful payment Checkout creates a paid Invoice, sets the session's `invoice`, and the
invoice has a hosted page (`hosted_invoice_url`) and a PDF (`invoice_pdf`); the invoice lifecycle events
`invoice.created`, `invoice.finalized`, `invoice.paid` and `invoice.payment_succeeded` are sent for it.
The Invoice's fields are the SDK's `stripe.Invoice` (API 2025-03-31.basil shape and later: no `paid`, `charge`
or `payment_intent` fields) and Stripe's required-field list. `invoice_data` (description, footer, metadata,
custom_fields) is copied onto the invoice. Checkout attaches the invoice to a Customer it creates; the emulator
serves no Customer objects, so `customer` is an id only.
"""

from __future__ import annotations

import copy
from html import escape
from typing import Any

from .errors import invalid, no_such
from .objects import new_id
from .store import Store

_DATA_KEYS = {"description", "footer", "metadata", "custom_fields", "rendering_options", "issuer", "account_tax_ids"}


def invoice_creation(raw: Any) -> dict[str, Any] | None:
    """`invoice_creation` as the session shows it, or None when not asked for (then no invoice is made)."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or "enabled" not in raw:
        raise invalid(
            "Missing required param: invoice_creation[enabled].", "invoice_creation[enabled]", "parameter_missing"
        )
    if raw["enabled"] not in ("true", "false"):
        raise invalid(f"Invalid boolean: {raw['enabled']}", "invoice_creation[enabled]", "parameter_invalid_boolean")
    data = raw.get("invoice_data") or {}
    if not isinstance(data, dict):
        raise invalid("Invalid object", "invoice_creation[invoice_data]")
    for key in data:
        if key not in _DATA_KEYS:
            param = f"invoice_creation[invoice_data][{key}]"
            raise invalid(f"Received unknown parameter: {param}", param, "parameter_unknown")
    if data.get("account_tax_ids"):
        raise invalid(
            "No such tax ID: the local Stripe service has no account tax IDs.",
            "invoice_creation[invoice_data][account_tax_ids]",
            "resource_missing",
        )
    fields = data.get("custom_fields") or None
    if fields is not None and (not isinstance(fields, list) or len(fields) > 4):
        raise invalid("You can have up to 4 custom fields.", "invoice_creation[invoice_data][custom_fields]")
    return {
        "enabled": raw["enabled"] == "true",
        "invoice_data": {
            "account_tax_ids": None,
            "custom_fields": [{"name": str(f["name"]), "value": str(f["value"])} for f in fields] if fields else None,
            "description": data.get("description") or None,
            "footer": data.get("footer") or None,
            "issuer": {"account": None, "type": "self"},
            "metadata": dict(data.get("metadata") or {}),
            "rendering_options": None,
        },
    }


def _tax_entries(taxes: list[dict[str, Any]], behavior: bool) -> list[dict[str, Any]]:
    return [
        {
            "amount": t["amount"],
            "tax_behavior": "inclusive" if behavior else "exclusive",
            "tax_rate_details": {"tax_rate": t["rate"]["id"]},
            "taxability_reason": t["taxability_reason"] or "not_collecting",
            "taxable_amount": t["taxable_amount"],
            "type": "tax_rate_details",
        }
        for t in taxes
    ]


def create_paid_invoice(store: Store, session: dict[str, Any], business: str, public_url: str) -> dict[str, Any]:
    """The paid Invoice of a completed session (stored, linked from the session, its four events emitted)."""
    creation = session["invoice_creation"]["invoice_data"]
    invoice_id = new_id("in_")
    now = store.clock.timestamp()
    customer = session.get("customer") or new_id("cus_", 14)
    session["customer"] = customer
    details = session.get("customer_details") or {}
    breakdown = session.get("_breakdown") or {"discounts": [], "taxes": []}
    discount = breakdown["discounts"][0]["discount"] if breakdown["discounts"] else None
    lines = []
    for item in store.line_items[session["id"]]:
        lines.append(
            {
                "id": new_id("il_"),
                "object": "line_item",
                "amount": item["amount_subtotal"],
                "currency": item["currency"],
                "description": item["description"],
                "discount_amounts": [{"amount": item["amount_discount"], "discount": discount["id"]}]
                if discount
                else [],
                "discountable": True,
                "discounts": [discount["id"]] if discount else [],
                "invoice": invoice_id,
                "livemode": False,
                "metadata": {},
                "parent": None,
                "period": {"end": now, "start": now},
                "pretax_credit_amounts": [],
                "pricing": None,
                "quantity": item["quantity"],
                "subscription": None,
                "subtotal": item["amount_subtotal"],
                "taxes": [],
            }
        )
    totals = session["total_details"]
    taxes = [t for t in breakdown["taxes"] if t["amount"] or t["taxability_reason"]]
    total_taxes = [e for t in taxes for e in _tax_entries([t], t["rate"]["inclusive"])]
    exclusive_tax = sum(t["amount"] for t in taxes if not t["rate"]["inclusive"])
    paid = session["amount_total"]
    number = f"{session['id'][-8:].upper()}-0001"
    invoice: dict[str, Any] = {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "US",
        "account_name": business,
        "account_tax_ids": None,
        "amount_due": paid,
        "amount_overpaid": 0,
        "amount_paid": paid,
        "amount_remaining": 0,
        "amount_shipping": totals["amount_shipping"],
        "application": None,
        "attempt_count": 1 if paid else 0,
        "attempted": True,
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": session["automatic_tax"]["enabled"],
            "liability": session["automatic_tax"]["liability"],
            "provider": session["automatic_tax"]["provider"],
            "status": session["automatic_tax"]["status"],
        },
        "automatically_finalizes_at": None,
        "billing_reason": "manual",
        "collection_method": "charge_automatically",
        "created": now,
        "currency": session["currency"],
        "custom_fields": copy.deepcopy(creation["custom_fields"]),
        "customer": customer,
        "customer_account": None,
        "customer_address": details.get("address"),
        "customer_email": details.get("email") or session.get("customer_email"),
        "customer_name": details.get("name"),
        "customer_phone": None,
        "customer_shipping": None,
        "customer_tax_exempt": "none",
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": creation["description"],
        "discounts": [discount["id"]] if discount else [],
        "due_date": None,
        "effective_at": now,
        "ending_balance": 0,
        "footer": creation["footer"],
        "from_invoice": None,
        "hosted_invoice_url": f"{public_url}/invoices/{invoice_id}",
        "invoice_pdf": f"{public_url}/invoices/{invoice_id}/pdf",
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": {
            "object": "list",
            "data": lines,
            "has_more": False,
            "url": f"/v1/invoices/{invoice_id}/lines",
        },
        "livemode": False,
        "metadata": dict(creation["metadata"]),
        "next_payment_attempt": None,
        "number": number,
        "on_behalf_of": None,
        "parent": None,
        "payment_settings": {"default_mandate": None, "payment_method_options": None, "payment_method_types": None},
        "period_end": now,
        "period_start": now,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": copy.deepcopy(session.get("shipping_cost")),
        "shipping_details": (session.get("collected_information") or {}).get("shipping_details"),
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "paid",
        "status_transitions": {
            "finalized_at": now,
            "marked_uncollectible_at": None,
            "paid_at": now,
            "voided_at": None,
        },
        "subtotal": session["amount_subtotal"],
        "subtotal_excluding_tax": session["amount_subtotal"] - (totals["amount_tax"] - exclusive_tax),
        "test_clock": None,
        "total": paid,
        "total_discount_amounts": [{"amount": totals["amount_discount"], "discount": discount["id"]}]
        if discount
        else [],
        "total_excluding_tax": paid - exclusive_tax,
        "total_pretax_credit_amounts": [],
        "total_taxes": total_taxes,
        "webhooks_delivered_at": now,
    }
    store.invoices[invoice_id] = invoice
    session["invoice"] = invoice_id
    draft = {**invoice, "status": "draft", "amount_paid": 0, "amount_remaining": paid, "number": None}
    # "null until the invoice has been finalized" (Invoice.hosted_invoice_url, invoice_pdf)
    del draft["hosted_invoice_url"], draft["invoice_pdf"]
    draft["status_transitions"] = {**invoice["status_transitions"], "finalized_at": None, "paid_at": None}
    store.emit("invoice.created", draft, None)
    open_ = {**invoice, "status": "open", "amount_paid": 0, "amount_remaining": paid}
    open_["status_transitions"] = {**invoice["status_transitions"], "paid_at": None}
    store.emit("invoice.finalized", open_, None)
    store.emit("invoice.paid", invoice, None)
    store.emit("invoice.payment_succeeded", invoice, None)
    return invoice


def get_invoice(store: Store, invoice_id: str) -> dict[str, Any]:
    """The stored invoice or a 404."""
    invoice = store.invoices.get(invoice_id)
    if invoice is None:
        raise no_such("invoice", invoice_id)
    return invoice


def _money(amount: int, currency: str) -> str:
    from .hosted import money  # the page's formatting (Babel); imported here: hosted imports payments

    return money(amount, currency)


def summary_lines(invoice: dict[str, Any]) -> list[str]:
    """The invoice as text lines, shared by the hosted page and the PDF."""
    cur = invoice["currency"]
    rows = [
        f"Invoice {invoice['number']}",
        f"{invoice['account_name']}",
        f"Billed to: {invoice['customer_name'] or invoice['customer_email'] or invoice['customer']}",
        f"Status: {invoice['status']}",
        "",
    ]
    for line in invoice["lines"]["data"]:
        rows.append(f"{line['description']}  x{line['quantity']}  {_money(line['amount'], cur)}")
    rows.append("")
    rows.append(f"Subtotal: {_money(invoice['subtotal'], cur)}")
    discount = sum(d["amount"] for d in invoice["total_discount_amounts"])
    if discount:
        rows.append(f"Discount: -{_money(discount, cur)}")
    if invoice["amount_shipping"]:
        rows.append(f"Shipping: {_money(invoice['amount_shipping'], cur)}")
    for tax in invoice["total_taxes"]:
        kind = "included" if tax["tax_behavior"] == "inclusive" else "added"
        rows.append(f"Tax ({kind}): {_money(tax['amount'], cur)}")
    rows.append(f"Total: {_money(invoice['total'], cur)}")
    rows.append(f"Amount paid: {_money(invoice['amount_paid'], cur)}")
    if invoice["footer"]:
        rows += ["", invoice["footer"]]
    return rows


def hosted_page(invoice: dict[str, Any]) -> str:
    """The hosted invoice page (HTML) with a link to the PDF."""
    items = "\n".join(f"<li>{escape(row)}</li>" if row else "" for row in summary_lines(invoice)[4:])
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>Invoice {escape(invoice['number'])}</title>\n"
        '<link rel="stylesheet" href="/static/emulator.css">\n</head>\n<body>\n<main>\n'
        f"<h1>Invoice {escape(invoice['number'])}</h1>\n<p>{escape(invoice['account_name'])}</p>\n"
        f'<p role="status">Paid</p>\n<ul class="invoice">\n{items}\n</ul>\n'
        f'<p><a href="{escape(invoice["invoice_pdf"])}">Download invoice (PDF)</a></p>\n</main>\n</body>\n</html>\n'
    )


def pdf(invoice: dict[str, Any]) -> bytes:
    """A one-page PDF of the invoice, built by hand (PDF 1.4, Helvetica, WinAnsi text)."""
    text = ["BT", "/F1 11 Tf", "14 TL", "56 780 Td"]
    for row in summary_lines(invoice):
        safe = row.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        text.append(f"({safe}) Tj T*")
    text.append("ET")
    stream = "\n".join(text).encode("cp1252", errors="replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
