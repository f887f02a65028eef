"""The hosted payment page at `/pay/<session_id>`: plain, accessible HTML without scripts."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

from werkzeug.wrappers import Request, Response

from . import payments
from .errors import EmulatorStateError
from .objects import format_amount
from .store import Store

CSS = """\
body { font-family: system-ui, sans-serif; margin: 0; background: #f6f9fc; color: #1a1f36; }
main { max-width: 32rem; margin: 2rem auto; padding: 1.5rem; background: #fff; border-radius: 8px; }
label { display: block; margin-top: 1rem; font-weight: 600; }
input[type=text] { width: 100%; padding: .5rem; font-size: 1rem; box-sizing: border-box; }
fieldset { margin-top: 1rem; border: 1px solid #ccd; }
fieldset label { display: inline; font-weight: normal; }
button { margin-top: 1.5rem; padding: .75rem 1.5rem; font-size: 1rem; background: #635bff;
         color: #fff; border: 0; border-radius: 4px; }
.error { color: #b00020; font-weight: 600; }
table { width: 100%; border-collapse: collapse; }
td, th { text-align: left; padding: .25rem 0; }
"""

Pay = Callable[..., payments.PaymentResult]


def stylesheet(_request: Request) -> Response:
    """GET /static/emulator.css"""
    return Response(CSS, mimetype="text/css")


def _page(title: str, body: str, status: int) -> Response:
    html = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n"
        '<link rel="stylesheet" href="/static/emulator.css">\n</head>\n'
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )
    return Response(html, status=status, mimetype="text/html")


def _message_page(error: EmulatorStateError) -> Response:
    body = f'<h1>Payment unavailable</h1>\n<p role="alert">{escape(error.message)}</p>'
    return _page("Payment unavailable - Stripe emulator", body, error.status)


def _form(session: dict[str, Any], items: list[dict[str, Any]], error: str | None,
          values: dict[str, str]) -> str:
    total = format_amount(session["amount_total"], session["currency"])
    rows = "\n".join(
        f"<tr><td>{escape(item['description'])}</td><td>{item['quantity']}</td>"
        f"<td>{escape(format_amount(item['amount_total'], item['currency']))}</td></tr>"
        for item in items
    )
    alert = f'<p class="error" role="alert" id="error">{escape(error)}</p>' if error else ""
    method = values.get("method", "card")

    def radio(value: str, label: str) -> str:
        checked = " checked" if method == value else ""
        return (f'<div><input type="radio" id="method-{value}" name="method" value="{value}"'
                f'{checked}> <label for="method-{value}">{label}</label></div>')

    def field(name: str, label: str, autocomplete: str, placeholder: str) -> str:
        value = escape(values.get(name, ""))
        described = ' aria-describedby="error"' if error else ""
        return (f'<label for="{name}">{label}</label>\n<input type="text" id="{name}" '
                f'name="{name}" autocomplete="{autocomplete}" inputmode="numeric" '
                f'placeholder="{placeholder}" value="{value}"{described}>')

    return f"""<h1>Pay {escape(total)}</h1>
<table>
<caption>Order summary</caption>
<thead><tr><th scope="col">Item</th><th scope="col">Qty</th><th scope="col">Amount</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
{alert}
<form method="post" action="/pay/{escape(session['id'])}">
<fieldset>
<legend>Payment method</legend>
{radio("card", "Card")}
{radio("delayed_succeed", "Bank debit (delayed; later succeeds)")}
{radio("delayed_fail", "Bank debit (delayed; later fails)")}
</fieldset>
{field("card_number", "Card number", "cc-number", "4242 4242 4242 4242")}
{field("expiry", "Expiry (MM / YY)", "cc-exp", "MM / YY")}
{field("cvc", "CVC", "cc-csc", "123")}
<button type="submit">Pay {escape(total)}</button>
</form>
<p><a href="{escape(session['cancel_url'])}">Cancel and return to the shop</a></p>"""


def show(request: Request, store: Store, session_id: str) -> Response:
    """GET /pay/<id>: the payment form, or why it cannot be paid."""
    with store.lock:
        try:
            session = payments.open_session(store, session_id)
        except EmulatorStateError as error:
            return _message_page(error)
        body = _form(session, store.line_items[session_id], None, {})
    return _page(f"Pay {format_amount(session['amount_total'], session['currency'])}", body, 200)


def submit(request: Request, store: Store, session_id: str, pay: Pay) -> Response:
    """POST /pay/<id>: pay, then redirect to success_url or show the decline."""
    form = request.form
    method = form.get("method", "card")
    delayed = {"delayed_succeed": "succeed", "delayed_fail": "fail"}.get(method)
    try:
        result = pay(session_id, card=form.get("card_number", ""), expiry=form.get("expiry", ""),
                     cvc=form.get("cvc", ""), delayed=delayed)
    except EmulatorStateError as error:
        return _message_page(error)
    if result.redirect_url:
        return Response(status=303, headers={"Location": result.redirect_url})
    with store.lock:
        session = store.sessions[session_id]
        values = {"method": method, "expiry": form.get("expiry", ""),
                  "card_number": form.get("card_number", "")}
        body = _form(session, store.line_items[session_id], result.message, values)
    return _page("Payment failed - Stripe emulator", body, result.status)
