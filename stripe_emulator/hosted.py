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

from . import discounts, invoices, payments, shipping, totals
from .errors import EmulatorStateError
from .objects import ZERO_DECIMAL
from .sdkfacts import SHIPPING_COUNTRIES
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


# The few words of the page in the languages of `locale` it speaks beyond English (Checkout shows its page in the
# session's `locale`; "auto" follows the browser, here English). Amounts follow the locale too (Babel).
_WORDS: dict[str, dict[str, str]] = {
    "de": {
        "Pay": "Bezahlen",
        "Subtotal": "Zwischensumme",
        "Discount": "Rabatt",
        "Shipping": "Versand",
        "Tax": "Steuer",
        "Tax (included)": "Enthaltene Steuer",
        "Total due": "Fälliger Betrag",
        "Add promotion code": "Aktionscode hinzufügen",
        "Apply": "Anwenden",
        "Remove": "Entfernen",
        "Update total": "Summe aktualisieren",
        "Billing address": "Rechnungsadresse",
        "Shipping method": "Versandart",
        "Complete order": "Bestellung abschließen",
        "Card information": "Kartendaten",
        "Cancel and return to the shop": "Abbrechen und zum Shop zurückkehren",
    },
    "fr": {
        "Pay": "Payer",
        "Subtotal": "Sous-total",
        "Discount": "Remise",
        "Shipping": "Livraison",
        "Tax": "Taxe",
        "Tax (included)": "Taxe incluse",
        "Total due": "Total à payer",
        "Add promotion code": "Ajouter un code promotionnel",
        "Apply": "Appliquer",
        "Remove": "Supprimer",
        "Update total": "Mettre à jour le total",
        "Billing address": "Adresse de facturation",
        "Shipping method": "Mode de livraison",
        "Complete order": "Finaliser la commande",
        "Card information": "Informations de carte",
        "Cancel and return to the shop": "Annuler et revenir à la boutique",
    },
}


def page_locale(session: dict[str, Any] | None) -> tuple[str, Locale]:
    """(language tag for `<html lang>`, Babel locale for amounts) from the session's `locale` ("auto": English)."""
    tag = str((session or {}).get("locale") or "auto")
    if tag == "auto":
        return "en", _LOCALE
    try:
        return tag, Locale.parse(tag.replace("-", "_"))
    except (ValueError, LookupError):
        return tag, _LOCALE


def _t(session: dict[str, Any] | None, text: str) -> str:
    tag, _ = page_locale(session)
    return _WORDS.get(tag.split("-")[0], {}).get(text, text)


def _money(session: dict[str, Any], amount: int) -> str:
    return money(amount, session["currency"], page_locale(session)[1])


def asset(path: str) -> Response:
    """GET /static/emulator.css or /static/emulator.js"""
    body, mimetype = ASSETS[path]
    return Response(body, mimetype=mimetype, headers={"Cache-Control": "max-age=3600"})


def money(amount: int, currency: str, locale: Locale | None = None) -> str:
    """An amount in the currency's smallest unit as money: 7997 usd -> "$79.97", 1500 jpy -> "¥1,500".

    Stripe's minor units decide the digits, not CLDR's (Stripe docs, "Supported currencies" > "Zero-decimal
    currencies", the list in objects.ZERO_DECIMAL; every other currency is sent with two decimals, HUF
    included, where CLDR would round 175.50 Ft to 176).
    """
    exponent = 0 if currency.lower() in ZERO_DECIMAL else 2
    return format_currency(
        Decimal(amount).scaleb(-exponent),
        currency.upper(),
        locale=locale or _LOCALE,
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
    lang: str = "en",
) -> Response:
    html = (
        f'<!doctype html>\n<html lang="{escape(lang)}">\n<head>\n<meta charset="utf-8">\n'
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
        heading = {"paid": "Payment received", "no_payment_required": "Order complete"}.get(
            session["payment_status"], "Payment processing"
        )
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
        f"{escape(_money(session, item['price']['unit_amount']))}</span></div></div></td>"
        f'<td class="num">{escape(_money(session, item["amount_subtotal"]))}</td></tr>'
        for item in items
    )
    details = session.get("total_details") or {}
    extra = []
    if details.get("amount_discount") or details.get("amount_shipping") or details.get("amount_tax"):
        extra.append((_t(session, "Subtotal"), _money(session, session["amount_subtotal"]), "subtotal"))
    if details.get("amount_discount"):
        code = (session.get("_promotion_code") or {}).get("code") or (session.get("_coupon") or {}).get("name")
        label = _t(session, "Discount") + (f" ({code})" if code else "")
        extra.append((label, "-" + _money(session, details["amount_discount"]), "discount"))
    if session.get("shipping_cost"):
        extra.append(
            (_t(session, "Shipping"), _money(session, session["shipping_cost"]["amount_subtotal"]), "shipping")
        )
    if session["automatic_tax"]["enabled"]:
        inclusive = any(t["rate"]["inclusive"] for t in (session.get("_breakdown") or {}).get("taxes", []))
        label = _t(session, "Tax (included)" if inclusive else "Tax")
        if session["automatic_tax"]["status"] == "requires_location_inputs":
            extra.append((label, "Calculated from your address", "tax"))
        else:
            extra.append((label, _money(session, details.get("amount_tax", 0)), "tax"))
    extra_rows = "".join(
        f'<tr class="{css}"><th scope="row">{escape(label)}</th><td class="num">{escape(value)}</td></tr>\n'
        for label, value, css in extra
    )
    total = _money(session, session["amount_total"])
    due = _t(session, "Total due")
    return f"""<table>
<caption class="visually-hidden">Order summary</caption>
<thead><tr><th scope="col">Item</th><th scope="col" class="num">Amount</th></tr></thead>
<tbody>
{rows}
</tbody>
<tfoot>{extra_rows}<tr><th scope="row">{escape(due)}</th><td class="num">{escape(total)}</td></tr></tfoot>
</table>"""


def _code_field(session: dict[str, Any], error: str | None) -> str:
    """Checkout's promotion code field (only with `allow_promotion_codes`): apply a code, or remove it."""
    if not session.get("allow_promotion_codes"):
        return ""
    action = f"/pay/{escape(session['id'])}/discount"
    applied = session.get("_promotion_code")
    if applied:
        return (
            f'<form method="post" action="{action}" class="promo"><p>{escape(applied["code"])} '
            f'<button type="submit" name="remove" value="1">{escape(_t(session, "Remove"))}</button></p></form>'
        )
    described = ' aria-describedby="code-error"' if error else ""
    alert = f'<p class="error" role="alert" id="code-error">{escape(error)}</p>' if error else ""
    return (
        f'<form method="post" action="{action}" class="promo">\n'
        f'<label for="promotion_code">{escape(_t(session, "Add promotion code"))}</label>\n'
        f'<input type="text" id="promotion_code" name="code" autocomplete="off"{described}>\n'
        f'<button type="submit">{escape(_t(session, "Apply"))}</button>\n{alert}</form>'
    )


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


def _shipping_options(store: Store, session: dict[str, Any], values: dict[str, str]) -> str:
    """The shipping options as radio buttons (the first preselected, as Checkout does)."""
    options = session.get("shipping_options") or []
    if not options:
        return ""
    chosen = values.get("shipping_rate") or (session.get("_shipping") or {}).get("shipping_rate")
    radios = []
    for option in options:
        rate = store.shipping_rates[option["shipping_rate"]]
        checked = " checked" if rate["id"] == chosen else ""
        radios.append(
            f'<div class="method"><input type="radio" id="rate-{escape(rate["id"])}" name="shipping_rate" '
            f'value="{escape(rate["id"])}"{checked}> <label for="rate-{escape(rate["id"])}">'
            f"{escape(rate['display_name'])} ({escape(_money(session, option['shipping_amount']))})</label></div>"
        )
    return (
        f"<fieldset>\n<legend>{escape(_t(session, 'Shipping method'))}</legend>\n" + "\n".join(radios) + "\n</fieldset>"
    )


def _billing(session: dict[str, Any], values: dict[str, str], error: str | None) -> str:
    """Billing address fields, when `billing_address_collection=required` or tax needs the buyer's location."""
    if not payments.needs_billing_address(session):
        return ""
    billed = {k.removeprefix("billing_"): v for k, v in values.items() if k.startswith("billing_")}
    fields = "\n".join(
        [
            _field("billing_name", "Name", "billing name", {"billing_name": billed.get("name", "")}, error),
            _field(
                "billing_line1",
                "Address line 1",
                "billing address-line1",
                {"billing_line1": billed.get("line1", "")},
                error,
            ),
            _field("billing_city", "City", "billing address-level2", {"billing_city": billed.get("city", "")}, error),
            _field(
                "billing_state",
                "State or region",
                "billing address-level1",
                {"billing_state": billed.get("state", "")},
                error,
            ),
            _field(
                "billing_postal_code",
                "Postal code",
                "billing postal-code",
                {"billing_postal_code": billed.get("postal_code", "")},
                error,
            ),
        ]
    )
    chosen = billed.get("country", "")
    options = "\n".join(
        f'<option value="{code}"{" selected" if code == chosen else ""}>'
        f"{escape(_LOCALE.territories.get(code, code))}</option>"
        for code in SHIPPING_COUNTRIES
    )
    fields += (
        '\n<label for="billing_country">Country</label>\n'
        '<select id="billing_country" name="billing_country" autocomplete="billing country">\n'
        f'<option value=""{"" if chosen else " selected"}>Choose a country</option>\n{options}\n</select>'
    )
    return f"<fieldset>\n<legend>{escape(_t(session, 'Billing address'))}</legend>\n{fields}\n</fieldset>"


def _update_button(session: dict[str, Any]) -> str:
    """ "Update total": re-totals for the chosen shipping option and the address (tax) without paying."""
    if not session.get("shipping_options") and not session["automatic_tax"]["enabled"]:
        return ""
    return (
        '<p><button type="submit" class="secondary" id="update-total" '
        f'formaction="/pay/{escape(session["id"])}/update">'
        f"{escape(_t(session, 'Update total'))}</button></p>"
    )


def _top(business: str) -> str:
    return f'<div class="top"><p class="business">{escape(business)}</p><span class="test-badge">Test mode</span></div>'


def _form(
    store: Store,
    session: dict[str, Any],
    items: list[dict[str, Any]],
    error: str | None,
    values: dict[str, str],
    business: str,
    code_error: str | None = None,
) -> str:
    total = _money(session, session["amount_total"])
    free = session["amount_total"] == 0  # fully discounted: Checkout asks for no payment method
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
        f'<p class="cancel"><a href="{escape(session["cancel_url"])}">'
        f"{escape(_t(session, 'Cancel and return to the shop'))}</a></p>\n"
        if session.get("cancel_url")
        else ""
    )
    # Test-only methods sit behind a small disclosure, open when one of them is chosen.
    test_open = " open" if method != "card" else ""
    pay_label = _t(session, "Complete order") if free else f"{_t(session, 'Pay')} {total}"
    return f"""<div>
{_top(business)}
<h1 class="amount-due">{escape(_t(session, "Pay"))} {escape(total)}</h1>
{_summary(session, items)}
{_code_field(session, code_error)}
</div>
<div>
{alert}
<form method="post" action="/pay/{escape(session["id"])}" id="payment-form">
{_shipping(session, values, error)}
{_shipping_options(store, session, values)}
{_billing(session, values, error)}
{_update_button(session)}
{"" if free else _card_fields(session, card_hidden, number, expiry, described, radio, test_open)}
<button type="submit" id="pay-button">{escape(pay_label)}</button>
</form>
{cancel}<p class="footnote">Local Stripe service: no real money moves.</p></div>"""


def _card_fields(
    session: dict[str, Any],
    card_hidden: str,
    number: str,
    expiry: str,
    described: str,
    radio: Callable[[str, str], str],
    test_open: str,
) -> str:
    return f"""<fieldset id="card-fields"{card_hidden}>
<legend>{escape(_t(session, "Card information"))}</legend>
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
<p>Test cards: 4242 4242 4242 4242 pays, 4000 0000 0000 0002 is declined,
4000 0000 0000 0259 pays and is then disputed, 4000 0000 0000 5423 pays and gets an early fraud warning.
Or a delayed bank debit:</p>
<fieldset>
<legend>Payment method</legend>
{radio("card", "Card")}
{radio("delayed_succeed", "Bank debit (delayed; later succeeds)")}
{radio("delayed_fail", "Bank debit (delayed; later fails)")}
</fieldset>
</details>"""


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
        code_draft = (drafts or {}).pop(f"{session_id}:code", None)
        items = store.line_items[session_id]
        code_error = code_draft["error"] if code_draft else None
        body = _form(store, session, items, error_message, values, business, code_error)
        title = f"{_t(session, 'Pay')} {_money(session, session['amount_total'])} - {business}"
        lang = page_locale(session)[0]
    return _page(title, body, 200, _origin(session["success_url"]), "checkout", image_origins(items), lang)


def promotion_code(request: Request, store: Store, session_id: str, drafts: Drafts | None = None) -> Response:
    """POST /pay/<id>/discount: apply the code typed into the page's field (case-insensitive, as Checkout
    matches codes), or remove the applied one; 303 back to the page, which shows the new total or why not."""
    back = Response(status=303, headers={"Location": f"/pay/{session_id}", "Cache-Control": "no-store"})
    with store.lock:
        try:
            session = payments.open_session(store, session_id)
        except EmulatorStateError as error:
            return _message_page(error, store, session_id, store.business_name, error.status)
        if not session.get("allow_promotion_codes"):
            return Response("This checkout does not take promotion codes.", status=400, mimetype="text/plain")
        if request.form.get("remove"):
            payments.apply_discount(store, session, None, None)
            return back
        typed = request.form.get("code", "").strip()
        found = discounts.find_active_code(store, typed) if typed else None
        message = None
        if found is None:
            message = "This code is invalid." if typed else "Enter a promotion code."
        else:
            try:
                coupon, code = discounts.check_redeemable(store, session, None, found["id"], None)
            except discounts.DiscountRefused as refused:
                message = refused.message
            else:
                payments.apply_discount(store, session, coupon, code)
                if 0 < session["amount_total"] < payments.MINIMUM_AMOUNT:
                    payments.apply_discount(store, session, None, None)
                    message = "This code cannot be applied: the amount left to pay would be below the minimum charge."
        if message is not None and drafts is not None:
            drafts[f"{session_id}:code"] = {"error": message}
    return back


def update(request: Request, store: Store, session_id: str, drafts: Drafts | None = None) -> Response:
    """POST /pay/<id>/update ("Update total"): take the chosen shipping option and the address typed so far, re-total
    (shipping, tax) and show the page again with the fields kept, as Checkout updates its summary while the buyer
    fills the form. Nothing is paid."""
    form = request.form
    with store.lock:
        try:
            session = payments.open_session(store, session_id)
        except EmulatorStateError as error:
            return _message_page(error, store, session_id, store.business_name, error.status)
        rate = form.get("shipping_rate")
        if rate and rate in {o["shipping_rate"] for o in session["shipping_options"]}:
            shipping.choose(session, store.shipping_rates[rate])
        shipped = {name: form.get(name, "") for name in payments.SHIPPING_FIELDS}
        billed = {name: form.get(f"billing_{name}", "") for name in payments.SHIPPING_FIELDS}
        if session["automatic_tax"]["enabled"]:
            located = shipped if session.get("shipping_address_collection") else billed
            if located.get("country"):
                session["_tax_address"] = payments.form_address(located)
        totals.recompute(store, session)
        values = {
            "method": form.get("method", "card"),
            "expiry": form.get("expiry", ""),
            "shipping_rate": rate or "",
            **shipped,
            **{f"billing_{k}": v for k, v in billed.items()},
        }
        if drafts is not None:
            drafts[session_id] = {"error": None, "values": values, "status": 200}
    return Response(status=303, headers={"Location": f"/pay/{session_id}", "Cache-Control": "no-store"})


def invoice(store: Store, rest: str) -> Response:
    """GET /invoices/<id> (the hosted invoice page) and /invoices/<id>/pdf (its PDF)."""
    invoice_id, _, kind = rest.partition("/")
    with store.lock:
        found = store.invoices.get(invoice_id)
        if found is None or kind not in ("", "pdf"):
            return Response("No such invoice.", status=404, mimetype="text/plain")
        if kind == "pdf":
            name = f"Invoice-{found['number']}.pdf"
            return Response(
                invoices.pdf(found),
                mimetype="application/pdf",
                headers={"Content-Disposition": f'inline; filename="{name}"'},
            )
        return Response(invoices.hosted_page(found), mimetype="text/html")


def submit(
    request: Request, store: Store, session_id: str, pay: Pay, business: str, drafts: Drafts | None = None
) -> Response:
    """POST /pay/<id>: pay, then 303 to success_url; a refused attempt 303s back to the form (Post/Redirect/Get),
    which shows why once, so Back after paying never offers to resubmit a declined form."""
    form = request.form
    method = form.get("method", "card")
    delayed = {"delayed_succeed": "succeed", "delayed_fail": "fail"}.get(method)
    shipping = {name: form.get(name, "") for name in payments.SHIPPING_FIELDS}
    billing = {name: form.get(f"billing_{name}", "") for name in payments.SHIPPING_FIELDS}
    try:
        result = pay(
            session_id,
            card=form.get("card_number", ""),
            expiry=form.get("expiry", ""),
            cvc=form.get("cvc", ""),
            delayed=delayed,
            shipping=shipping,
            billing=billing,
            shipping_rate=form.get("shipping_rate") or None,
        )
    except EmulatorStateError as error:
        with store.lock:
            business = _business(store.sessions.get(session_id), business)
            return _message_page(error, store, session_id, business, error.status)
    if result.redirect_url:
        return Response(status=303, headers={"Location": result.redirect_url})
    # The card number and CVC are never kept (as at Stripe); the method, expiry and address are.
    values = {
        "method": method,
        "expiry": form.get("expiry", ""),
        "shipping_rate": form.get("shipping_rate", ""),
        **shipping,
        **{f"billing_{k}": v for k, v in billing.items()},
    }
    if drafts is not None:
        with store.lock:
            drafts[session_id] = {"error": result.message, "values": values, "status": result.status}
        return Response(status=303, headers={"Location": f"/pay/{session_id}", "Cache-Control": "no-store"})
    with store.lock:
        session = store.sessions[session_id]
        business = _business(session, business)
        items = store.line_items[session_id]
        body = _form(store, session, items, result.message, values, business)
    return _page(
        f"Payment failed - {business}",
        body,
        result.status,
        _origin(session["success_url"]),
        "checkout",
        image_origins(items),
    )
