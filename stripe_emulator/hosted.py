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
from typing import Any
from urllib.parse import urlsplit

from babel.core import Locale
from babel.numbers import format_currency
from werkzeug.wrappers import Request, Response

from . import payments
from .errors import EmulatorStateError
from .objects import ZERO_DECIMAL
from .store import Store

CSS = """\
body { font-family: system-ui, sans-serif; margin: 0; background: #f6f9fc; color: #1a1f36; }
main { max-width: 56rem; margin: 2rem auto; padding: 1.5rem; background: #fff; border-radius: 8px;
       display: grid; grid-template-columns: 1fr; gap: 2rem; }
@media (min-width: 48rem) { main.checkout { grid-template-columns: 1fr 1fr; } }
.business { font-size: 1rem; color: #4f566b; margin: 0 0 .5rem; font-weight: 600; }
.amount-due { font-size: 2rem; margin: 0 0 1rem; }
label { display: block; margin-top: 1rem; font-weight: 600; }
input[type=text], select { width: 100%; padding: .5rem; font-size: 1rem; box-sizing: border-box; }
fieldset { margin-top: 1rem; border: 1px solid #ccd; }
fieldset label { font-weight: normal; }
.method label { display: inline; }
button { margin-top: 1.5rem; padding: .75rem 1.5rem; font-size: 1rem; background: #635bff; width: 100%;
         color: #fff; border: 0; border-radius: 4px; }
.error { color: #b00020; font-weight: 600; }
table { width: 100%; border-collapse: collapse; }
caption { text-align: left; font-weight: 600; padding-bottom: .5rem; }
td, th { text-align: left; padding: .35rem 0; }
td.num, th.num { text-align: right; }
tfoot th, tfoot td { border-top: 1px solid #ccd; font-weight: 700; }
.unit { color: #4f566b; font-size: .875rem; display: block; }
[hidden] { display: none !important; }
"""

# Hide the card fields while a bank debit (delayed) method is chosen; the server renders the same state.
JS = """\
(function () {
  var form = document.getElementById("payment-form");
  var card = document.getElementById("card-fields");
  if (!form || !card) { return; }
  function update() {
    var chosen = form.querySelector("input[name=method]:checked");
    card.hidden = chosen !== null && chosen.value !== "card";
  }
  form.addEventListener("change", update);
  update();
})();
"""

ASSETS = {"/static/emulator.css": (CSS, "text/css"), "/static/emulator.js": (JS, "text/javascript")}

Pay = Callable[..., payments.PaymentResult]
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


def _page(title: str, body: str, status: int, form_target: str | None = None, main_class: str = "") -> Response:
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
    csp = (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
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
            f'<div><p class="business">{escape(business)}</p><h1>{heading}</h1>\n'
            f'<p role="status">This checkout is already complete; nothing more to pay.</p>\n'
            f"{link}</div>",
            complete_status,
        )
    if session is not None and session["status"] == "expired":
        heading = "Checkout expired"
        link = _back_link(_origin(session["cancel_url"] or session["success_url"]) + "/", business)
    body = (
        f'<div><p class="business">{escape(business)}</p><h1>{heading}</h1>\n'
        f'<p role="alert">{escape(error.message)}</p>\n{link}</div>'
    )
    return _page(f"{heading} - {business}", body, error.status)


def _summary(session: dict[str, Any], items: list[dict[str, Any]]) -> str:
    rows = "\n".join(
        f"<tr><td>{escape(item['description'])}"
        f'<span class="unit">Qty {item["quantity"]} &times; '
        f"{escape(money(item['price']['unit_amount'], item['currency']))}</span></td>"
        f'<td class="num">{escape(money(item["amount_total"], item["currency"]))}</td></tr>'
        for item in items
    )
    total = money(session["amount_total"], session["currency"])
    return f"""<table>
<caption>Order summary</caption>
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
    cancel = (
        f'<p><a href="{escape(session["cancel_url"])}">Cancel and return to the shop</a></p>\n'
        if session.get("cancel_url")
        else ""
    )
    return f"""<div>
<p class="business">{escape(business)}</p>
<h1 class="amount-due">Pay {escape(total)}</h1>
{_summary(session, items)}
</div>
<div>
{alert}
<form method="post" action="/pay/{escape(session["id"])}" id="payment-form">
{_shipping(session, values, error)}
<fieldset>
<legend>Payment method</legend>
{radio("card", "Card")}
{radio("delayed_succeed", "Bank debit (delayed; later succeeds)")}
{radio("delayed_fail", "Bank debit (delayed; later fails)")}
</fieldset>
<fieldset id="card-fields"{card_hidden}>
<legend>Card information</legend>
{_field("card_number", "Card number", "cc-number", values, error, "4242 4242 4242 4242", True)}
{_field("expiry", "Expiry (MM / YY)", "cc-exp", values, error, "MM / YY", True)}
{_field("cvc", "CVC", "cc-csc", values, error, "123", True)}
</fieldset>
<button type="submit">Pay {escape(total)}</button>
</form>
{cancel}</div>"""


def show(request: Request, store: Store, session_id: str, business: str) -> Response:
    """GET /pay/<id>: the payment form, or why it cannot be paid."""
    with store.lock:
        try:
            session = payments.open_session(store, session_id)
        except EmulatorStateError as error:
            return _message_page(error, store, session_id, business)
        body = _form(session, store.line_items[session_id], None, {}, business)
    title = f"Pay {money(session['amount_total'], session['currency'])} - {business}"
    return _page(title, body, 200, _origin(session["success_url"]), "checkout")


def submit(request: Request, store: Store, session_id: str, pay: Pay, business: str) -> Response:
    """POST /pay/<id>: pay, then redirect to success_url or show why not (the session stays open)."""
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
            return _message_page(error, store, session_id, business, error.status)
    if result.redirect_url:
        return Response(status=303, headers={"Location": result.redirect_url})
    with store.lock:
        session = store.sessions[session_id]
        values = {
            "method": method,
            "expiry": form.get("expiry", ""),
            "card_number": form.get("card_number", ""),
            **shipping,
        }
        body = _form(session, store.line_items[session_id], result.message, values, business)
    return _page(f"Payment failed - {business}", body, result.status, _origin(session["success_url"]), "checkout")
