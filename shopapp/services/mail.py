"""Composing the shop's emails and handing one to the SMTP server (Flask-Mail).

The outbox (services/outbox.py) decides WHEN a message goes; this module decides WHAT it says and talks
SMTP. Links point at SHOP_BASE_URL, so a message composed by `flask mail send-pending` (no request) carries
the same links as one sent right after a web request.
"""

from __future__ import annotations

import json
import smtplib
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any

from flask import current_app
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from flask_mail import Connection
from sqlalchemy import func, select

from shopapp.extensions import db
from shopapp.models import MailKind, Order, OutboxMessage, Refund, RefundStatus, User
from shopapp.services import brand, links, passwords, receipts
from shopapp.services.addresses import address_lines
from shopapp.services.catalog import format_money
from shopapp.services.clock import local_time

# Translated when composed, in the recipient's language (lazy strings; compose runs under force_locale).
SUBJECTS = {
    MailKind.WELCOME: _l("Welcome to {shop}"),
    MailKind.ORDER_RECEIPT: _l("Your {shop} receipt for order #{order_id}"),
    MailKind.REFUND_NOTICE: _l("{shop} refunded {amount} on order #{order_id}"),
    MailKind.PASSWORD_RESET: _l("Reset your {shop} password"),
    MailKind.PASSWORD_CHANGED: _l("Your {shop} password was changed"),
    MailKind.SHIPPING_NOTICE: _l("Your {shop} order #{order_id} has shipped"),
    MailKind.NEW_ORDER: "New paid order #{order_id}: {total}",  # to staff: English, like the admin
    MailKind.RESET_NO_ACCOUNT: _l("About resetting a {shop} password"),
    # To staff, in English like the admin.
    MailKind.STALL_ALERT: "{shop}: no paid order for {hours} hours, though checkouts are being started",
    MailKind.DISPUTE_OPENED: "Order #{order_id} is disputed: respond before the due date",
    MailKind.DISPUTE_DUE_SOON: "Dispute evidence for order #{order_id} is due within 3 days",
    MailKind.DISPUTE_CLOSED: "The dispute of order #{order_id} is closed",
    MailKind.FRAUD_WARNING: "Early fraud warning on order #{order_id}",
}
# Messages to staff, written in English like the admin.
STAFF_KINDS = frozenset(
    {MailKind.NEW_ORDER, MailKind.STALL_ALERT, MailKind.DISPUTE_OPENED, MailKind.DISPUTE_DUE_SOON,
     MailKind.DISPUTE_CLOSED, MailKind.FRAUD_WARNING}
)  # fmt: skip


class CannotCompose(ValueError):
    """The message's cause no longer exists (e.g. the account was deleted): it can never be sent."""


class PermanentFailure(Exception):
    """The SMTP server refused the message for good (5xx, e.g. an unknown recipient): do not retry."""


class TemporaryFailure(Exception):
    """The message could not be handed over now (server down, timeout, 4xx): retry later."""


@dataclass(frozen=True)
class Composed:
    """A ready message: subject, plain text and HTML bodies."""

    subject: str
    text: str
    html: str


def link(endpoint: str, **values: Any) -> str:
    """Absolute URL of a shop page for emails, built without a request (SHOP_BASE_URL + the route's path)."""
    return links.public_url(endpoint, **values)


def message_id(dedupe_key: str) -> str:
    """The stable Message-ID of the message caused by `dedupe_key`: every retry carries the same one, so a
    receiving server (or the shopper's mail program) can recognise a repeat delivery."""
    sender = parseaddr(current_app.config["MAIL_DEFAULT_SENDER"] or "")[1]
    domain = sender.rpartition("@")[2] or "tidy-shop.local"
    return f"<{dedupe_key}@{domain}>"


def _money(cents: int, currency: str) -> str:
    return format_money(cents, currency, current_app.config["DISPLAY_LOCALE"])


def _order_values(order: Order) -> dict[str, Any]:
    return {
        "order": order,
        "items": [
            {"name": i.product_name, "quantity": i.quantity, "total": _money(i.line_total_cents, order.currency)}
            for i in order.items
        ],
        "total": _money(order.total_cents, order.currency),
        # Issue 23: what Stripe charged besides the items, and the paid invoice, as the order page shows them.
        "has_extras": order.has_extras,
        "subtotal": _money(order.subtotal_cents, order.currency),
        "discount": _money(order.amount_discount_cents, order.currency) if order.amount_discount_cents else None,
        "promotion_code": order.promotion_code,
        "shipping": _money(order.amount_shipping_cents, order.currency) if order.shipping_rate_name else None,
        "shipping_rate_name": order.shipping_rate_name,
        "tax": _money(order.amount_tax_cents, order.currency) if order.amount_tax_cents else None,
        "tax_included": order.tax_behavior == "inclusive",
        "invoice_url": order.invoice_url,
        "invoice_pdf_url": order.invoice_pdf_url,
        "order_url": link("shop.order_page", order_id=order.id),
        # Times in the shop's time zone (config SHOP_TIMEZONE), as on the order page.
        "paid_at": local_time(order.paid_at),
    }


def _values(row: OutboxMessage) -> dict[str, Any]:
    """Template values for one outbox row, read from the rows it names (and its stored context)."""
    context = json.loads(row.context or "{}")
    values: dict[str, Any] = {"shop_url": link("shop.index"), "recipient": row.recipient}
    user = db.session.get(User, row.user_id) if row.user_id is not None else None
    if row.kind in (MailKind.PASSWORD_RESET, MailKind.PASSWORD_CHANGED, MailKind.WELCOME) and user is None:
        raise CannotCompose("the account no longer exists")
    if row.kind == MailKind.PASSWORD_RESET:
        assert user is not None
        # Signed now, not when queued: the token is never stored, and the hour counts from the email.
        token = passwords.make_reset_token(user.id, user.password_hash)
        values["reset_url"] = link("auth.reset_password", token=token)
        values["valid_minutes"] = current_app.config["PASSWORD_RESET_MAX_AGE_SECONDS"] // 60
        values["forgot_url"] = link("auth.forgot_password")
    elif row.kind == MailKind.PASSWORD_CHANGED:
        values["forgot_url"] = link("auth.forgot_password")
    elif row.kind == MailKind.RESET_NO_ACCOUNT:
        values["signup_url"] = link("auth.signup")
        values["forgot_url"] = link("auth.forgot_password")
    elif row.kind in (MailKind.ORDER_RECEIPT, MailKind.REFUND_NOTICE, MailKind.SHIPPING_NOTICE) or (
        row.kind in STAFF_KINDS and row.kind != MailKind.STALL_ALERT  # the stall alert names no order
    ):
        order = db.session.get(Order, row.order_id) if row.order_id is not None else None
        if order is None:
            raise CannotCompose("the order no longer exists")
        values.update(_order_values(order))
        if row.kind == MailKind.ORDER_RECEIPT:
            values["payment_method"] = receipts.payment_method_for_receipt(order)
        elif row.kind == MailKind.REFUND_NOTICE:
            values["amount"] = _money(int(context["amount_cents"]), order.currency)
            values["refunded_total"] = _money(int(context["refunded_total_cents"]), order.currency)
            values["remaining"] = _money(int(context["remaining_cents"]), order.currency)
            values["remaining_cents"] = int(context["remaining_cents"])
        elif row.kind == MailKind.SHIPPING_NOTICE:
            values["carrier"] = str(context.get("carrier") or "")
            values["tracking_number"] = str(context.get("tracking_number") or "")
            values["address"] = address_lines(order.shipping_address)
        elif row.kind == MailKind.NEW_ORDER:
            values["address"] = address_lines(order.shipping_address)
            shopper = db.session.get(User, order.user_id)
            values["shopper"] = shopper.email if shopper is not None else "(account deleted)"
            values["admin_url"] = link("orders.details_view", id=order.id)
        else:  # a dispute or fraud-warning notice to staff
            values["admin_url"] = link("disputes.index", order_id=order.id)
            values["order_admin_url"] = link("orders.details_view", id=order.id)
            due_by = context.get("due_by")
            values["due"] = local_time(datetime.fromisoformat(due_by) if due_by else order.dispute_due_by)
            values["standing"] = order.dispute_standing
            values["lost"] = _money(order.dispute_lost_cents, order.currency)
    elif row.kind == MailKind.STALL_ALERT:
        values.update(context)
        values["since"] = local_time(datetime.fromisoformat(context["since"]))
        last_paid = context.get("last_paid_at")
        values["last_paid_at"] = local_time(datetime.fromisoformat(last_paid)) if last_paid else None
        values["admin_url"] = link("admin.index")
    return values


def language_of(row: OutboxMessage) -> str:
    """The language a message is written in: the recipient account's (User.locale), else the one saved with
    the message when it was queued (context "locale"), else the shop's default; staff's notice in English."""
    default = str(current_app.config["BABEL_DEFAULT_LOCALE"])
    if row.kind in STAFF_KINDS:
        return "en"
    user_id = row.user_id
    if user_id is None and row.order_id is not None:
        user_id = db.session.scalar(select(Order.user_id).where(Order.id == row.order_id))
    locale = db.session.scalar(select(User.locale).where(User.id == user_id)) if user_id is not None else None
    if not locale:
        locale = json.loads(row.context or "{}").get("locale")
    return str(locale) if locale in current_app.config["LANGUAGES"] else default


def compose(row: OutboxMessage) -> Composed:
    """Subject, text and HTML of an outbox message (templates/mail/<kind>.txt and .html), in the recipient's
    language (language_of)."""
    with force_locale(language_of(row)):
        return _compose(row)


def _compose(row: OutboxMessage) -> Composed:
    values = _values(row)
    # The brand staff set in the admin (services.brand): name, contact and address in every message.
    shop_brand = brand.current_brand(current_app.config["SHOP_NAME"])
    values["shop"] = shop_brand.shop_name
    values["brand"] = shop_brand
    env = current_app.jinja_env
    subject = str(SUBJECTS[row.kind]).format(
        shop=values["shop"],
        order_id=row.order_id,
        amount=values.get("amount", ""),
        total=values.get("total", ""),
        hours=values.get("hours", ""),
    )
    text = env.get_template(f"mail/{row.kind.value}.txt").render(**values)
    html = env.get_template(f"mail/{row.kind.value}.html").render(subject=subject, **values)
    return Composed(subject, text, html)


def refund_context(refund: Refund, order: Order) -> dict[str, int]:
    """What a refund notice shows, fixed when Stripe confirms the refund: its amount, the order's confirmed
    refunds so far (this one included) and what remains paid, in cents."""
    session = db.session
    refunded = int(
        session.scalar(
            select(func.coalesce(func.sum(Refund.amount_cents), 0)).where(
                Refund.order_id == order.id, Refund.status == RefundStatus.SUCCEEDED
            )
        )
        or 0
    )
    refunded = min(max(refunded, refund.amount_cents), order.total_cents)
    return {
        "amount_cents": refund.amount_cents,
        "refunded_total_cents": refunded,
        "remaining_cents": order.total_cents - refunded,
    }


class _TimedConnection(Connection):
    """Flask-Mail's connection, with a timeout on the socket (Flask-Mail sets none, so a server that accepts
    the connection and then stalls would hang the sender forever)."""

    def configure_host(self) -> smtplib.SMTP | smtplib.SMTP_SSL:
        timeout = float(current_app.config["MAIL_TIMEOUT_SECONDS"])
        state = self.mail
        host: smtplib.SMTP | smtplib.SMTP_SSL
        if state.use_ssl:
            host = smtplib.SMTP_SSL(state.server, state.port, timeout=timeout)
        else:
            host = smtplib.SMTP(state.server, state.port, timeout=timeout)
        if state.use_tls:
            host.starttls()
        if state.username and state.password:
            host.login(state.username, state.password)
        return host


def _permanent(error: smtplib.SMTPException) -> bool:
    """True for refusals that will not change on retry: 5xx replies (RFC 5321 section 4.2.1)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code >= 500
    return False


def build_message(row: OutboxMessage, composed: Composed) -> EmailMessage:
    """The MIME message of one outbox row (text and HTML alternatives), with its stable Message-ID.

    Built with the standard library's EmailMessage rather than Flask-Mail's Message: Flask-Mail encodes a
    non-ASCII local part ("zoë@...") as an RFC 2047 word, which is not an address at all, while EmailMessage
    keeps it as UTF-8 for an SMTPUTF8 transaction (RFC 6531).
    """
    message = EmailMessage()
    message["Subject"] = composed.subject
    message["From"] = current_app.config["MAIL_DEFAULT_SENDER"]
    message["To"] = row.recipient
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = message_id(row.dedupe_key)
    message["X-Shop-Message"] = row.kind.value
    message.set_content(composed.text)
    message.add_alternative(composed.html, subtype="html")
    return message


def needs_smtputf8(*addresses: str) -> bool:
    """True when an address cannot be written in ASCII (an internationalised local part, RFC 6531)."""
    return not all(address.isascii() for address in addresses)


def transmit(row: OutboxMessage, composed: Composed) -> None:
    """Hand one message to the SMTP server. Raises PermanentFailure or TemporaryFailure (messages carry the
    server's reply, never the body).

    An internationalised address goes out with SMTPUTF8 when the server offers it; a server that does not
    cannot carry it (RFC 6531 section 3.4 forbids downgrading the address), so that row fails for good with
    the reason, and the rest of the outbox goes on.
    """
    message = build_message(row, composed)
    sender = parseaddr(current_app.config["MAIL_DEFAULT_SENDER"] or "")[1]
    state = current_app.extensions["mail"]
    try:
        with _TimedConnection(state) as connection:
            host = connection.host
            assert host is not None  # MAIL_SUPPRESS_SEND is never set by the shop
            if needs_smtputf8(sender, row.recipient):
                # smtplib's send_message then asks for SMTPUTF8 and BODY=8BITMIME itself; checked first here
                # for a reason staff can act on.
                host.ehlo_or_helo_if_needed()
                if not host.has_extn("smtputf8"):
                    raise PermanentFailure(
                        f"the mail server does not offer SMTPUTF8, which the address {row.recipient!r} needs "
                        "(RFC 6531); use a server that supports internationalised addresses"
                    )
            host.send_message(message, sender, [row.recipient])
    except smtplib.SMTPNotSupportedError as error:
        raise PermanentFailure(f"the mail server cannot carry this message: {error}") from error
    except smtplib.SMTPException as error:
        reason = _describe(error)
        if _permanent(error):
            raise PermanentFailure(reason) from error
        raise TemporaryFailure(reason) from error
    except OSError as error:  # refused connection, timeout, DNS: the server is not reachable now
        raise TemporaryFailure(f"SMTP server unreachable: {error.__class__.__name__}: {error}") from error


def _describe(error: smtplib.SMTPException) -> str:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(error.recipients.values()))
        return f"recipient refused: {code} {reply.decode(errors='replace') if isinstance(reply, bytes) else reply}"
    if isinstance(error, smtplib.SMTPResponseException):
        response: bytes | str = error.smtp_error
        text = response.decode(errors="replace") if isinstance(response, bytes) else response
        return f"SMTP {error.smtp_code} {text}"
    return f"SMTP error: {error.__class__.__name__}: {error}"
