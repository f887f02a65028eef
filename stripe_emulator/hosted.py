"""The hosted payment page at `/pay/<session_id>`, shaped like Stripe Checkout.

Accessible HTML with the business name, an order summary with a total row, amounts as money (Babel), card
fields that hide while bank debit is chosen (a small script served from this origin, allowed by the page's
Content-Security-Policy; without scripts every field stays visible and works), an optional shipping address,
and a page for a completed or expired session that links back to the shop.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from babel.core import Locale
from babel.numbers import format_currency
from werkzeug.wrappers import Request, Response

from . import payments
from .errors import EmulatorStateError
from .objects import ZERO_DECIMAL
from .store import Store

# The page's stylesheet and script live beside this module (static/), served from this origin (the page's CSP
# allows no inline style or script). The script hides the card fields while a bank debit is chosen (the server
# renders the same state) and spaces the card number in groups of four as it is typed (the server ignores spaces).
_STATIC = Path(__file__).resolve().parent / "static"
CSS = (_STATIC / "emulator.css").read_text(encoding="utf-8")
JS = (_STATIC / "emulator.js").read_text(encoding="utf-8")

ASSETS = {"/static/emulator.css": (CSS, "text/css"), "/static/emulator.js": (JS, "text/javascript")}

Pay = Callable[..., payments.PaymentResult]
# The last refused attempt per session, shown once by the GET that the refusal redirects to (Post/Redirect/Get).
Drafts = dict[str, dict[str, Any]]
_LOCALE = Locale.parse("en_US")


def asset(path: str) -> Response:
    """GET /static/emulator.css or /static/emulator.js"""
    body, mimetype = ASSETS[path]
    return Response(body, mimetype=mimetype, headers={"Cache-Control": "max-age=3600"})


def money(amount: int, currency: str) -> str:
    """An amount in the currency's smallest unit as money: 7997 usd -> "$79.97", 1500 jpy -> "¥1,500".

    Stripe's minor units decide the digits, not CLDR's (Stripe docs, "Supported currencies" > "Zero-decimal
    currencies", the list in objects.ZERO_DECIMAL; every other currency is sent with two decimals, HUF
    included, where CLDR would round 175.50 Ft to 176).
    """
    exponent = 0 if currency.lower() in ZERO_DECIMAL else 2
    return format_currency(
        Decimal(amount).scaleb(-exponent),
        currency.upper(),
        locale=_LOCALE,
        format=None if exponent else "¤#,##0",
        currency_digits=False,
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _page(
    title: str,
    body: str,
    status: int,
    form_target: str | None = None,
    main_class: str = "",
    image_sources: list[str] | None = None,
) -> Response:
    html = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n"
        '<link rel="stylesheet" href="/static/emulator.css">\n'
        '<script src="/static/emulator.js" defer></script>\n</head>\n'
        f'<body>\n<main class="{main_class}">\n{body}\n</main>\n</body>\n</html>\n'
    )
    # form-action also covers the redirect to the shop after paying, so it names the shop's origin.
    form_action = "'self'" + (f" {form_target}" if form_target else "")
    # Product pictures come from the shop (product_data.images): their origins are allowed as images only.
    img_src = " ".join(["'self'", *(image_sources or [])])
    csp = (
        f"default-src 'none'; style-src 'self'; script-src 'self'; img-src {img_src}; "
        f"form-action {form_action}; base-uri 'none'; frame-ancestors 'none'"
    )
    return Response(
        html,
        status=status,
        mimetype="text/html",
        headers={"Content-Security-Policy": csp, "Cache-Control": "no-store", "Referrer-Policy": "same-origin"},
    )


def _back_link(url: str, business: str) -> str:
    return f'<p><a href="{escape(url)}">Return to {escape(business)}</a></p>'


def _message_page(
    error: EmulatorStateError, store: Store, session_id: str, business: str, complete_status: int = 200
) -> Response:
    """Why a session cannot be paid; a completed or expired one links back to the shop.

    A completed session answers `complete_status`: 200 when the shopper comes Back to the page, the
    error's 409 when a form is posted to it again.
    """
    session = store.sessions.get(session_id)
    heading, link = "Payment unavailable", ""
    if session is not None and session["status"] == "complete":
        heading = "Payment received" if session["payment_status"] == "paid" else "Payment processing"
        # Back after paying lands here: send the shopper to the shop's own confirmation page.
        link = _back_link(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id), business)
        return _page(
            f"{heading} - {business}",
            f"<div>{_top(business)}<h1>{heading}</h1>\n"
            f'<p role="status">This checkout is already complete; nothing more to pay.</p>\n'
            f"{link}</div>",
            complete_status,
        )
    if session is not None and session["status"] == "expired":
        heading = "Checkout expired"
        link = _back_link(_origin(session["cancel_url"] or session["success_url"]) + "/", business)
    body = f'<div>{_top(business)}<h1>{heading}</h1>\n<p role="alert">{escape(error.message)}</p>\n{link}</div>'
    return _page(f"{heading} - {business}", body, error.status)


def _initials(name: str) -> str:
    words = name.split()
    return "".join(word[0] for word in words[:2]).upper() or "?"


def _thumb(item: dict[str, Any]) -> str:
    """The line's first `product_data.images` URL as Checkout shows it, or the name's initials without one."""
    images = item.get("_images") or []
    if images:
        # Decorative: the product's name is the text right beside it.
        return f'<img class="thumb" src="{escape(images[0])}" alt="" width="44" height="44">'
    return f'<span class="thumb" aria-hidden="true">{escape(_initials(item["description"]))}</span>'


def image_origins(items: list[dict[str, Any]]) -> list[str]:
    """The origins of the line items' pictures, which the page's Content-Security-Policy allows as img-src."""
    return sorted({_origin(url) for item in items for url in (item.get("_images") or [])[:1]})


def _summary(session: dict[str, Any], items: list[dict[str, Any]]) -> str:
    # A tile per product: the first of its `product_data.images`, as Checkout shows it, else its initials.
    rows = "\n".join(
        f'<tr><td><div class="item">{_thumb(item)}'
        f"<div>{escape(item['description'])}"
        f'<span class="unit">Qty {item["quantity"]} &times; '
        f"{escape(money(item['price']['unit_amount'], item['currency']))}</span></div></div></td>"
        f'<td class="num">{escape(money(item["amount_total"], item["currency"]))}</td></tr>'
        for item in items
    )
    total = money(session["amount_total"], session["currency"])
    return f"""<table>
<caption class="visually-hidden">Order summary</caption>
<thead><tr><th scope="col">Item</th><th scope="col" class="num">Amount</th></tr></thead>
<tbody>
{rows}
</tbody>
<tfoot><tr><th scope="row">Total due</th><td class="num">{escape(total)}</td></tr></tfoot>
</table>"""


def _field(
    name: str,
    label: str,
    autocomplete: str,
    values: dict[str, str],
    error: str | None,
    placeholder: str = "",
    numeric: bool = False,
) -> str:
    value = escape(values.get(name, ""))
    described = ' aria-describedby="error"' if error else ""
    mode = ' inputmode="numeric"' if numeric else ""
    hint = f' placeholder="{placeholder}"' if placeholder else ""
    return (
        f'<label for="{name}">{label}</label>\n<input type="text" id="{name}" name="{name}" '
        f'autocomplete="{autocomplete}"{mode}{hint} value="{value}"{described}>'
    )


def _shipping(session: dict[str, Any], values: dict[str, str], error: str | None) -> str:
    collection = session.get("shipping_address_collection")
    if not collection:
        return ""
    chosen = values.get("country") or collection["allowed_countries"][0]
    options = "\n".join(
        f'<option value="{code}"{" selected" if code == chosen else ""}>'
        f"{escape(_LOCALE.territories.get(code, code))}</option>"
        for code in collection["allowed_countries"]
    )
    fields = "\n".join(
        [
            _field("name", "Full name", "shipping name", values, error),
            _field("line1", "Address line 1", "shipping address-line1", values, error),
            _field("line2", "Address line 2 (optional)", "shipping address-line2", values, error),
            _field("city", "City", "shipping address-level2", values, error),
            _field("state", "State or region (optional)", "shipping address-level1", values, error),
            _field("postal_code", "Postal code", "shipping postal-code", values, error),
        ]
    )
    return f"""<fieldset>
<legend>Shipping address</legend>
{fields}
<label for="country">Country</label>
<select id="country" name="country" autocomplete="shipping country">
{options}
</select>
</fieldset>"""


def _top(business: str) -> str:
    return f'<div class="top"><p class="business">{escape(business)}</p><span class="test-badge">Test mode</span></div>'


def _form(
    session: dict[str, Any], items: list[dict[str, Any]], error: str | None, values: dict[str, str], business: str
) -> str:
    total = money(session["amount_total"], session["currency"])
    alert = f'<p class="error" role="alert" id="error">{escape(error)}</p>' if error else ""
    method = values.get("method", "card")

    def radio(value: str, label: str) -> str:
        checked = " checked" if method == value else ""
        return (
            f'<div class="method"><input type="radio" id="method-{value}" name="method" '
            f'value="{value}"{checked}> <label for="method-{value}">{label}</label></div>'
        )

    card_hidden = " hidden" if method != "card" else ""
    described = ' aria-describedby="error"' if error else ""
    number = escape(values.get("card_number", ""))
    expiry = escape(values.get("expiry", ""))
    cancel = (
        f'<p class="cancel"><a href="{escape(session["cancel_url"])}">Cancel and return to the shop</a></p>\n'
        if session.get("cancel_url")
        else ""
    )
    # Test-only methods sit behind a small disclosure, open when one of them is chosen.
    test_open = " open" if method != "card" else ""
    return f"""<div>
{_top(business)}
<h1 class="amount-due">Pay {escape(total)}</h1>
{_summary(session, items)}
</div>
<div>
{alert}
<form method="post" action="/pay/{escape(session["id"])}" id="payment-form">
{_shipping(session, values, error)}
<fieldset id="card-fields"{card_hidden}>
<legend>Card information</legend>
<div class="card-group">
<label for="card_number" class="sub-label">Card number</label>
<input type="text" id="card_number" name="card_number" autocomplete="cc-number" inputmode="numeric"
 placeholder="1234 1234 1234 1234" value="{number}"{described}>
<div class="row">
<div><label for="expiry" class="sub-label">Expiry (MM / YY)</label>
<input type="text" id="expiry" name="expiry" autocomplete="cc-exp" inputmode="numeric" placeholder="MM / YY"
 value="{expiry}"{described}></div>
<div><label for="cvc" class="sub-label">CVC</label>
<input type="text" id="cvc" name="cvc" autocomplete="cc-csc" inputmode="numeric" placeholder="CVC"{described}></div>
</div>
</div>
</fieldset>
<details class="test-options"{test_open}>
<summary>Test options</summary>
<p>Test cards: 4242 4242 4242 4242 pays, 4000 0000 0000 0002 is declined. Or a delayed bank debit:</p>
<fieldset>
<legend>Payment method</legend>
{radio("card", "Card")}
{radio("delayed_succeed", "Bank debit (delayed; later succeeds)")}
{radio("delayed_fail", "Bank debit (delayed; later fails)")}
</fieldset>
</details>
<button type="submit">Pay {escape(total)}</button>
</form>
{cancel}<p class="footnote">Local Stripe service: no real money moves.</p></div>"""


def _business(session: dict[str, Any] | None, business: str) -> str:
    """The name the page shows: the session's `branding_settings.display_name` (Stripe: "override the business
    name shown on the Checkout Session"), else the account's business name."""
    branding = (session or {}).get("branding_settings") or {}
    return str(branding.get("display_name") or business)


def show(request: Request, store: Store, session_id: str, business: str, drafts: Drafts | None = None) -> Response:
    """GET /pay/<id>: the payment form (with the last failed attempt's message, once), or why it cannot be paid."""
    with store.lock:
        business = _business(store.sessions.get(session_id), business)
        draft = (drafts or {}).pop(session_id, None)
        try:
            session = payments.open_session(store, session_id)
        except EmulatorStateError as error:
            return _message_page(error, store, session_id, business)
        error_message, values = (draft["error"], draft["values"]) if draft else (None, {})
        items = store.line_items[session_id]
        body = _form(session, items, error_message, values, business)
    title = f"Pay {money(session['amount_total'], session['currency'])} - {business}"
    return _page(title, body, 200, _origin(session["success_url"]), "checkout", image_origins(items))


def submit(
    request: Request, store: Store, session_id: str, pay: Pay, business: str, drafts: Drafts | None = None
) -> Response:
    """POST /pay/<id>: pay, then 303 to success_url; a refused attempt 303s back to the form (Post/Redirect/Get),
    which shows why once, so Back after paying never offers to resubmit a declined form."""
    form = request.form
    method = form.get("method", "card")
    delayed = {"delayed_succeed": "succeed", "delayed_fail": "fail"}.get(method)
    shipping = {name: form.get(name, "") for name in payments.SHIPPING_FIELDS}
    try:
        result = pay(
            session_id,
            card=form.get("card_number", ""),
            expiry=form.get("expiry", ""),
            cvc=form.get("cvc", ""),
            delayed=delayed,
            shipping=shipping,
        )
    except EmulatorStateError as error:
        with store.lock:
            business = _business(store.sessions.get(session_id), business)
            return _message_page(error, store, session_id, business, error.status)
    if result.redirect_url:
        return Response(status=303, headers={"Location": result.redirect_url})
    # The card number and CVC are never kept (as at Stripe); the method, expiry and address are.
    values = {"method": method, "expiry": form.get("expiry", ""), **shipping}
    if drafts is not None:
        with store.lock:
            drafts[session_id] = {"error": result.message, "values": values, "status": result.status}
        return Response(status=303, headers={"Location": f"/pay/{session_id}", "Cache-Control": "no-store"})
    with store.lock:
        session = store.sessions[session_id]
        business = _business(session, business)
        items = store.line_items[session_id]
        body = _form(session, items, result.message, values, business)
    return _page(
        f"Payment failed - {business}",
        body,
        result.status,
        _origin(session["success_url"]),
        "checkout",
        image_origins(items),
    )
