"""Checkout: from a validated cart to a Stripe Checkout Session, and finalizing it exactly once.

Rules (README.md, "How money stays right"): the order is committed PENDING before Stripe is called; every create
carries a key derived from the order attempt; a repeated submit of the same cart reuses the open
session; a changed cart expires the old session first; one function, finalize_checkout, decides
whether Stripe's word makes an order PAID, and an atomic compare-and-set picks the single winner.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session, joinedload

from shopapp.database import newest_first
from shopapp.extensions import db
from shopapp.gateway import GatewayError, GatewayRejected, SessionNotFound, get_gateway
from shopapp.models import CheckoutAttempt, EventOutcome, Order, OrderStatus, User
from shopapp.models.base import utcnow
from shopapp.services import amounts, brand, outbox, pictures, shipping, stock
from shopapp.services import orders as order_rules
from shopapp.services.catalog import Cart, line_items_for, line_items_hash
from shopapp.services.ids import parse_ascii_int, random_key_part
from shopapp.services.tx import write_transaction

log = logging.getLogger("shopapp.checkout")

# Stripe accepts expires_at between 30 minutes and 24 hours ahead of its own clock.
MIN_TTL = timedelta(minutes=30)
MAX_TTL = timedelta(hours=24)
# Slack for clock skew and transit, so a session asked for "30 minutes" is never refused as too soon.
TTL_SLACK = timedelta(seconds=60)

# Test seam for the interleaving proof: called between a finalizer's checks and its compare-and-set.
before_compare_and_set: Callable[[int], None] | None = None


class CheckoutError(Exception):
    """A user-facing reason checkout could not start; `busy` means try again shortly."""

    def __init__(self, message: str, *, busy: bool = False) -> None:
        super().__init__(message)
        self.busy = busy


class NothingToPay(CheckoutError):
    """The cart totals zero: no Checkout Session is created for it (answer 400)."""


class SessionNotOurs(LookupError):
    """A Checkout Session that names no order of this shop."""


class OrderNotFound(LookupError):
    """A session names an order that does not exist (yet): retry later."""


@dataclass(frozen=True)
class CheckoutUrls:
    """Where Stripe sends the shopper back; success_url must contain {CHECKOUT_SESSION_ID}. A "{ORDER_ID}" in
    cancel_url is replaced by the order's id (Stripe offers no session placeholder there), so the page the
    shopper returns to can close exactly that checkout. `locale` is the language Checkout shows its page in
    (Stripe's Session `locale`: the shopper's language on the shop, shopapp/i18n.py); None lets Stripe choose."""

    success_url: str
    cancel_url: str
    locale: str | None = None


ORDER_ID_PLACEHOLDER = "{ORDER_ID}"


@dataclass(frozen=True)
class SessionTTL:
    """Minutes a Checkout Session stays open: `with_stock` when the order holds limited units."""

    default: int
    with_stock: int


@dataclass(frozen=True)
class CheckoutStarted:
    """The hosted payment page to send the shopper to."""

    order_id: int
    url: str
    reused: bool


class Outcome(enum.StrEnum):
    """What finalize_checkout did."""

    PAID = "paid"  # this call recorded the payment
    FAILED = "failed"
    EXPIRED = "expired"
    PROCESSING = "processing"  # paid by a delayed method: wait for async_payment_*
    OPEN = "open"  # the shopper has not paid yet
    NOOP = "no-op"  # already in that state (or later): a duplicate or late event
    FLAGGED = "flagged"  # Stripe's data does not match the order: staff must look

    @property
    def event_outcome(self) -> EventOutcome:
        """The member stored on PaymentEvent.outcome for an event that had this effect (member to member)."""
        return _EVENT_OUTCOMES[self]


_EVENT_OUTCOMES = {
    Outcome.PAID: EventOutcome.APPLIED,
    Outcome.FAILED: EventOutcome.APPLIED,
    Outcome.EXPIRED: EventOutcome.APPLIED,
    Outcome.PROCESSING: EventOutcome.PROCESSING,
    Outcome.OPEN: EventOutcome.OPEN,
    Outcome.NOOP: EventOutcome.NO_OP,
    Outcome.FLAGGED: EventOutcome.FLAGGED,
}


# ---------------------------------------------------------------------------------------------
# Starting checkout


@dataclass(frozen=True)
class _Plan:
    kind: str  # "reuse" | "retire" | "create"
    order_id: int
    url: str = ""
    session_id: str = ""
    params: Mapping[str, Any] | None = None
    idempotency_key: str = ""


def _lock_user(session: Session, user_id: int) -> None:
    # Serialises one shopper's concurrent submits. On SQLite BEGIN IMMEDIATE already does this;
    # on PostgreSQL the row lock does (FOR UPDATE is omitted by SQLite's compiler).
    session.execute(select(User.id).where(User.id == user_id).with_for_update())


def _expires_at(now: datetime, ttl_minutes: int) -> datetime:
    ttl = min(max(timedelta(minutes=ttl_minutes), MIN_TTL) + TTL_SLACK, MAX_TTL - TTL_SLACK)
    return (now + ttl).replace(microsecond=0)


def _session_params(order: Order, key: str, email: str, urls: CheckoutUrls, terms: amounts.Terms) -> dict[str, Any]:
    assert order.session_expires_at is not None
    line_items = line_items_for(
        order.currency,
        [(item.product_name, item.unit_price_cents, item.quantity) for item in order.items],
        # The product's picture as it is now, so the payment page's summary shows what is being bought.
        [[pictures.public_url(item.product.image_name)] if item.product.image_name else [] for item in order.items],
    )
    # Issue 23: each price's tax behaviour and each product's Stripe tax code, when the terms ask for tax.
    amounts.taxed_line_items(line_items, terms, [item.product.tax_code for item in order.items])
    return {
        "mode": "payment",
        "line_items": line_items,
        "success_url": urls.success_url,
        "cancel_url": urls.cancel_url.replace(ORDER_ID_PLACEHOLDER, str(order.id)),
        "client_reference_id": str(order.id),
        "metadata": {"order_id": str(order.id), "attempt": str(order.checkout_attempt), "attempt_key": key},
        "customer_email": email,
        "expires_at": int(order.session_expires_at.timestamp()),
        # Issue 23: codes allowed, shipping rates offered, tax on or off (explicitly), invoice (services/amounts.py).
        **amounts.session_params(terms, order.id),
        # Issue 22 (storefront): the payment page's name is the shop's brand, not the Stripe account's.
        "branding_settings": brand.session_branding(),
        **({"locale": urls.locale} if urls.locale else {}),
        **_descriptor_params(),
    }


def _descriptor_params() -> dict[str, Any]:
    """payment_intent_data[statement_descriptor_suffix] from config (checked against Stripe's rules at start in
    production, config.statement_descriptor_problem); nothing when it is empty."""
    suffix = current_app.config.get("STATEMENT_DESCRIPTOR_SUFFIX") or ""
    return {"payment_intent_data": {"statement_descriptor_suffix": suffix}} if suffix else {}


def new_attempt_key(order_id: int, number: int) -> str:
    """A Checkout Session create's idempotency key: readable, and unique to this shop's attempt for ever.

    The random part (about 65 bits) means a restored backup, a reset database or a second shop database on the
    same Stripe account never reuses a key Stripe still holds with other parameters (it keeps them 24 h).
    """
    return f"order-{order_id}-attempt-{number}-{random_key_part()}"


def _current_attempt(session: Session, order: Order) -> CheckoutAttempt | None:
    return session.scalar(
        select(CheckoutAttempt).where(
            CheckoutAttempt.order_id == order.id, CheckoutAttempt.number == order.checkout_attempt
        )
    )


def _new_attempt(session: Session, order: Order, terms: amounts.Terms) -> CheckoutAttempt:
    """Start the order's next attempt: its key and what it asks Stripe for (terms) are stored (committed with
    the plan) before Stripe is called."""
    order.checkout_attempt += 1
    attempt = CheckoutAttempt(
        order_id=order.id,
        number=order.checkout_attempt,
        idempotency_key=new_attempt_key(order.id, order.checkout_attempt),
        terms=terms.to_json(),
    )
    session.add(attempt)
    return attempt


def _plan_checkout(
    user_id: int, cart: Cart, urls: CheckoutUrls, ttl: SessionTTL, shipping_countries: tuple[str, ...] = ()
) -> _Plan:
    """In one write transaction, decide: reuse the open session, retire a stale one, or create."""
    now = utcnow()
    with write_transaction() as session:
        _lock_user(session, user_id)
        email = session.scalar(select(User.email).where(User.id == user_id)) or ""
        # newest_first: the (user_id, id) index, not a walk down the primary key over everyone's newer orders
        # when this shopper has many orders and none pending.
        users_orders, newest = newest_first(Order.user_id, user_id, Order.id)
        current = session.scalar(
            select(Order)
            # An order already paid by a delayed method is settling on its own: never touch it.
            .where(users_orders, Order.status == OrderStatus.PENDING, Order.payment_processing.is_(False))
            .order_by(*newest)
            .limit(1)
        )
        if current is not None:
            # Everything that reaches Stripe must match (amounts, currency, names, quantities), not a subset:
            # any difference closes the old session (e.g. staff changed only a product's currency).
            same_cart = current.cart_key == cart.key and current.line_items_hash == line_items_hash(cart.line_items)
            live = current.session_expires_at is not None and current.session_expires_at > now
            attempt = _current_attempt(session, current)
            # Issue 23: and the session must ask for what the shop would ask for now (codes, rates, tax).
            same_terms = attempt is not None and amounts.Terms.from_json(attempt.terms) == amounts.current_terms(
                session, current.currency, shipping_countries
            )
            if current.stripe_session_id and same_cart and same_terms and live and current.checkout_url:
                return _Plan("reuse", current.id, url=current.checkout_url, session_id=current.stripe_session_id)
            if current.stripe_session_id:
                # A different cart, or a session past its time: it must be closed before a new one.
                return _Plan("retire", current.id, session_id=current.stripe_session_id)
            # An attempt whose create failed or is in flight: retry it with the same key while its
            # expires_at is still acceptable to Stripe and it asks for what the shop offers now (a rate staff
            # stopped offering, say, must not reach Stripe), else start a fresh attempt with the current terms.
            if (
                attempt is not None
                and same_cart
                and same_terms
                and current.session_expires_at
                and current.session_expires_at - now >= MIN_TTL
            ):
                key = attempt.idempotency_key
                return _Plan(
                    "create",
                    current.id,
                    # The same key must send the same parameters: the terms recorded with the attempt.
                    params=_session_params(current, key, email, urls, amounts.Terms.from_json(attempt.terms)),
                    idempotency_key=key,
                )
            if not same_cart:
                order_rules.transition(
                    session, current, OrderStatus.CANCELED, actor="shopper", note="Replaced by a new cart"
                )
                stock.release(session, current)
                current = None
        if current is None:
            current = order_rules.build_order(session, user_id, cart)
            stock.reserve(session, current)
        terms = amounts.current_terms(session, current.currency, shipping_countries)
        attempt = _new_attempt(session, current, terms)
        # Units held for a checkout are unavailable to everyone else: hold them only briefly.
        ttl_minutes = ttl.with_stock if current.stock_reserved else ttl.default
        current.session_expires_at = _expires_at(now, ttl_minutes)
        params = _session_params(current, attempt.idempotency_key, email, urls, terms)
        current.line_items_hash = line_items_hash(params["line_items"])
        session.flush()
        return _Plan("create", current.id, params=params, idempotency_key=attempt.idempotency_key)


def _store_session(order_id: int, key: str, created: Mapping[str, Any]) -> None:
    with write_transaction() as session:
        # The fact "this session is the shop's, for this attempt" (an early event may have stored it first).
        session.execute(
            update(CheckoutAttempt)
            .where(CheckoutAttempt.idempotency_key == key, CheckoutAttempt.stripe_session_id.is_(None))
            .values(stripe_session_id=created["id"])
            .execution_options(synchronize_session=False)
        )
        # Concurrent identical submits all receive the same session (same key): storing it is idempotent.
        session.execute(
            update(Order)
            .where(
                Order.id == order_id,
                or_(Order.stripe_session_id.is_(None), Order.stripe_session_id == created["id"]),
            )
            .values(stripe_session_id=created["id"], checkout_url=created["url"], updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )


def start_checkout(
    user_id: int, cart: Cart, urls: CheckoutUrls, ttl: SessionTTL, *, shipping_countries: tuple[str, ...] = ()
) -> CheckoutStarted:
    """Create (or reuse) the shopper's PENDING order for `cart` and its Checkout Session.

    `shipping_countries` (ISO 3166-1 alpha-2) makes Checkout collect a shipping address; empty: none.

    Raises CheckoutError with a message for the shopper when Stripe cannot be used right now, and
    stock.OutOfStock (nothing held, nothing created) when a limited product does not have enough left.
    """
    if cart.total_cents <= 0:
        # A zero-total session would complete as `no_payment_required`: nothing is paid, nothing to confirm.
        raise NothingToPay(
            _("This selection costs nothing, so there is nothing to pay. Please choose a priced product.")
        )
    gateway = get_gateway()
    for _attempt in range(4):  # at most: find a reused session dead, retire one stale session, then create
        plan = _plan_checkout(user_id, cart, urls, ttl, shipping_countries)
        if plan.kind == "reuse":
            if _still_open(plan.order_id, plan.session_id):
                log.info("Order %s: reusing open session %s", plan.order_id, plan.session_id)
                return CheckoutStarted(plan.order_id, plan.url, reused=True)
            continue
        if plan.kind == "retire":
            _retire_session(plan.order_id, plan.session_id)
            continue
        assert plan.params is not None
        try:
            created = gateway.create_checkout_session(dict(plan.params), plan.idempotency_key)
        except GatewayError as error:
            log.warning("Order %s: creating session failed (%s)", plan.order_id, type(error).__name__)
            raise CheckoutError(str(error.user_message), busy=not isinstance(error, GatewayRejected)) from error
        _store_session(plan.order_id, plan.idempotency_key, created)
        log.info("Order %s: session %s created", plan.order_id, created["id"])
        return CheckoutStarted(plan.order_id, created["url"], reused=False)
    raise CheckoutError(_("Your previous checkout is still closing; please try again."), busy=True)


def _still_open(order_id: int, session_id: str) -> bool:
    """Before sending the shopper back to a stored payment page: is its session still open at Stripe?

    One retrieve per repeated Buy. A session Stripe does not know (its state was lost, or the keys changed)
    is closed locally; one that was paid or expired meanwhile is finalized; either way the caller plans
    again instead of sending the shopper to a dead page. If Stripe cannot be reached, the page is reused.
    """
    try:
        current = get_gateway().retrieve_checkout_session(session_id)
    except SessionNotFound:
        close_unknown_session(order_id, session_id, actor="shopper", target=OrderStatus.EXPIRED)
        return False
    except GatewayError:
        log.warning("Order %s: could not check session %s; reusing it", order_id, session_id)
        return True
    if current.get("status") == "open":
        return True
    finalize_checkout(current, actor="shopper (session no longer open)")
    return False


def close_unknown_session(order_id: int, session_id: str, *, actor: str, target: OrderStatus) -> Outcome:
    """Close an order whose Checkout Session Stripe says does not exist (404 resource_missing).

    That is final: Stripe will never complete a session it does not have, so the PENDING order moves to
    `target` (EXPIRED or CANCELED) and its held stock is released. Returns EXPIRED if this call closed it.
    """
    with write_transaction() as session:
        order = session.get(Order, order_id, populate_existing=True)
        if (
            order is not None
            and order.status == OrderStatus.PENDING
            and order.stripe_session_id == session_id
            and order_rules.transition(
                session, order, target, actor=actor, note=f"Stripe does not know session {session_id}"
            )
        ):
            stock.release(session, order)
            log.warning("Order %s: session %s unknown to Stripe; closed as %s", order_id, session_id, target.value)
            return Outcome.EXPIRED
    return Outcome.NOOP


def _close_session(order_id: int, session_id: str, *, actor: str, note: str) -> Outcome:
    """Expire an order's session at Stripe so it can no longer be paid, then settle the order.

    If Stripe expired it at our request the order is CANCELED; if the session was no longer open
    (paid meanwhile, or expired by time) the order follows what Stripe reports instead.
    """
    gateway = get_gateway()
    try:
        closed = gateway.expire_checkout_session(session_id)
    except SessionNotFound:
        return close_unknown_session(order_id, session_id, actor=actor, target=OrderStatus.CANCELED)
    except GatewayRejected:
        closed = None
    except GatewayError as error:
        raise CheckoutError(str(error.user_message), busy=True) from error
    if closed is not None and closed.get("status") == "expired":
        with write_transaction() as session:
            order = session.get(Order, order_id, populate_existing=True)
            if order is None or order.status not in (OrderStatus.PENDING, OrderStatus.EXPIRED):
                return Outcome.NOOP
            # Stripe sends checkout.session.expired as soon as it expires the session, so its webhook may have
            # closed the order (EXPIRED, stock released) before this transaction: it was still our request.
            was_pending = order.status == OrderStatus.PENDING
            if order_rules.transition(session, order, OrderStatus.CANCELED, actor=actor, note=note):
                if was_pending:
                    stock.release(session, order)
                return Outcome.EXPIRED
        return Outcome.NOOP
    try:
        settled = gateway.retrieve_checkout_session(session_id)
    except SessionNotFound:
        return close_unknown_session(order_id, session_id, actor=actor, target=OrderStatus.CANCELED)
    except GatewayError as error:
        raise CheckoutError(str(error.user_message), busy=True) from error
    return finalize_checkout(settled, actor=f"{actor} (session already settled)")


def _retire_session(order_id: int, session_id: str) -> None:
    """Close an old session before replacing it with a new cart's."""
    _close_session(order_id, session_id, actor="shopper", note="Replaced by a new cart")


def cancel_order(user_id: int, order_id: int) -> Outcome:
    """The shopper gives up a PENDING order: its session is expired at Stripe first, so it cannot be paid."""
    with write_transaction() as session:
        order = session.scalar(select(Order).where(Order.id == order_id, Order.user_id == user_id))
        if order is None:
            raise OrderNotFound(order_id)
        if order.status != OrderStatus.PENDING:
            return Outcome.NOOP
        session_id = order.stripe_session_id
        if session_id is None:
            order_rules.transition(session, order, OrderStatus.CANCELED, actor="shopper", note="Canceled")
            stock.release(session, order)
            return Outcome.EXPIRED
    return _close_session(order_id, session_id, actor="shopper", note="Canceled by the shopper")


# ---------------------------------------------------------------------------------------------
# Finalizing


def order_id_for_session(checkout_session: Mapping[str, Any]) -> int:
    """The order a Checkout Session names; metadata and client_reference_id must agree."""
    metadata = checkout_session.get("metadata")
    if not isinstance(metadata, Mapping):  # Stripe always sends an object; anything else is not our session
        raise SessionNotOurs(checkout_session.get("id"))
    from_metadata = str(metadata.get("order_id") or "")
    reference = str(checkout_session.get("client_reference_id") or "")
    order_id = parse_ascii_int(from_metadata)
    if order_id is None or reference != from_metadata:
        raise SessionNotOurs(checkout_session.get("id"))
    return order_id


def _payment_intent_id(checkout_session: Mapping[str, Any]) -> str | None:
    pi = checkout_session.get("payment_intent")
    if isinstance(pi, Mapping):
        return str(pi.get("id"))
    return str(pi) if pi else None


def _async_failed(checkout_session: Mapping[str, Any]) -> bool:
    pi = checkout_session.get("payment_intent")
    return isinstance(pi, Mapping) and pi.get("status") in ("requires_payment_method", "canceled")


# Built once (every paid webhook runs it).
_ATTEMPT_BY_SESSION = select(CheckoutAttempt).where(
    CheckoutAttempt.order_id == bindparam("order_id"), CheckoutAttempt.stripe_session_id == bindparam("session_id")
)


def _attempt_of(session: Session, order: Order, checkout_session: Mapping[str, Any]) -> CheckoutAttempt | None:
    """The shop's attempt this Checkout Session was created for, or None: a session the shop never created
    for this order (another integration on the account, a staging copy, a connected account) settles nothing.

    Known by its stored id; or, for an event that arrived before the create call's answer was stored, by the
    attempt's key in its metadata (random, stored before the call): then the id is stored now.
    """
    session_id = str(checkout_session.get("id") or "")
    attempt = session.scalar(_ATTEMPT_BY_SESSION, {"order_id": order.id, "session_id": session_id})
    if attempt is not None:
        return attempt
    metadata = checkout_session.get("metadata")
    key = metadata.get("attempt_key") if isinstance(metadata, Mapping) else None
    if not key or not session_id:
        return None
    attempt = session.scalar(
        select(CheckoutAttempt).where(
            CheckoutAttempt.order_id == order.id,
            CheckoutAttempt.idempotency_key == str(key),
            CheckoutAttempt.stripe_session_id.is_(None),
        )
    )
    if attempt is not None:
        attempt.stripe_session_id = session_id
        session.flush()
    return attempt


_WITH_ITEMS = (joinedload(Order.items),)


def apply_session(
    session: Session,
    checkout_session: Mapping[str, Any],
    *,
    actor: str,
    payment_failed: bool = False,
) -> tuple[Outcome, int]:
    """Record what a Checkout Session says about its order, within the caller's transaction; returns
    (outcome, order id). See finalize_checkout. Raises SessionNotOurs for a session the shop did not create
    for the order it names, OrderNotFound for an order not committed (yet)."""
    order_id = order_id_for_session(checkout_session)
    # The items in the same statement (stock needs them when the payment is recorded): one round trip, not two.
    order = session.get(Order, order_id, populate_existing=True, options=_WITH_ITEMS)
    if order is None:
        raise OrderNotFound(order_id)
    attempt = _attempt_of(session, order, checkout_session)
    if attempt is None:
        log.warning("Order %s: session %s was not created by this shop; ignored", order_id, checkout_session.get("id"))
        raise SessionNotOurs(checkout_session.get("id"))
    status = checkout_session.get("status")
    payment_status = checkout_session.get("payment_status")
    if payment_status == "paid" or (payment_status == "no_payment_required" and status == "complete"):
        # Issue 23: a session a promotion code made free completes `no_payment_required`; the amount check
        # decides whether that is what the shop allowed (a 100%-off code), like any paid amount.
        return _apply_paid(session, order, attempt, checkout_session, actor), order.id
    if payment_status == "no_payment_required" and status not in ("expired", "open"):
        return _apply_no_payment(session, order, checkout_session, actor), order.id
    if status == "complete" and (payment_failed or _async_failed(checkout_session)):
        return _apply_closed(session, order, checkout_session, OrderStatus.FAILED, "Delayed payment failed", actor)
    if status == "complete":
        return _apply_processing(session, order, actor), order.id
    if status == "expired":
        note = f"Session {checkout_session.get('id')} expired"
        return _apply_closed(session, order, checkout_session, OrderStatus.EXPIRED, note, actor)
    return (Outcome.OPEN if order.status == OrderStatus.PENDING else Outcome.NOOP), order.id


def _apply_paid(
    session: Session, order: Order, attempt: CheckoutAttempt, checkout_session: Mapping[str, Any], actor: str
) -> Outcome:
    """The fact "paid by this session of ours": recorded once per order; a repeat adds nothing.

    The amounts must pass the amount check against what this attempt asked Stripe for (services/amounts.py);
    what Stripe charged (discount, shipping, tax, the total paid) is recorded with the payment."""
    session_id = str(checkout_session.get("id"))
    terms = amounts.Terms.from_json(attempt.terms)
    checked = amounts.check(order, terms, checkout_session)
    problem = checked if isinstance(checked, str) else None
    # Fault 3: Stripe took money for a session the shop created (payment_status paid) whose amounts fail the
    # check: the payment fact is still recorded (paid_at, the PaymentIntent, what Stripe says it charged), so the
    # order is paid and flagged for review (staff can refund what was charged), never left pending forever.
    charged_anyway = problem is not None and checkout_session.get("payment_status") == "paid"
    if problem is not None and checkout_session.get("payment_status") == "no_payment_required":
        problem = f"session {session_id} needs no payment (payment_status no_payment_required): {problem}"
    if order.paid_at is not None and order.stripe_session_id != session_id:
        problem = f"a second paid session {session_id} for an order already paid by {order.stripe_session_id}"
        charged_anyway = False
    if charged_anyway and isinstance(checkout_session.get("amount_total"), int) and order.paid_at is None:
        assert problem is not None
        if not _record_payment(session, order, session_id, checkout_session, amounts.reported(terms, checkout_session)):
            return Outcome.NOOP
        order_rules.flag_for_review(session, order, problem, actor=actor)
        order_rules.settle(session, order, actor=actor, note=f"Paid via {session_id} (flagged)", reread=False)
        _announce_and_take_stock(session, order, actor)
        log.error("Order %s paid and flagged for review: %s", order.id, problem)
        return Outcome.FLAGGED
    if problem is not None:
        if not order.needs_review:
            order_rules.flag_for_review(session, order, problem, actor=actor)
        log.error("Order %s not marked paid: %s", order.id, problem)
        return Outcome.FLAGGED
    if order.paid_at is not None:
        return Outcome.NOOP  # the same payment again (duplicate, late, replayed, or the other finalizer)
    assert isinstance(checked, amounts.Charged)
    if before_compare_and_set is not None:
        before_compare_and_set(order.id)
    if not _record_payment(session, order, session_id, checkout_session, checked):
        return Outcome.NOOP
    order_rules.settle(session, order, actor=actor, note=f"Paid via {session_id}", reread=False)
    if not _announce_and_take_stock(session, order, actor):
        log.warning("Order %s paid late and out of stock: refund queued", order.id)
    log.info("Order %s PAID (%s)", order.id, actor)
    return Outcome.PAID


def _record_payment(
    session: Session, order: Order, session_id: str, checkout_session: Mapping[str, Any], charged: amounts.Charged
) -> bool:
    """The payment fact of `checkout_session` (its id `session_id`) on `order` (compare-and-set); False if
    another finalizer won."""
    return order_rules.record_payment(
        session,
        order,
        session_id=session_id,
        payment_intent=_payment_intent_id(checkout_session),
        shipping_address=shipping.shipping_address_json(checkout_session),
        charged=charged.order_columns(),
    )


def _announce_and_take_stock(session: Session, order: Order, actor: str) -> bool:
    """What follows a recorded payment, in its transaction (side effects belong to the one caller that recorded
    it): the receipt and the owner's notice (outbox, sent after commit), and the stock. Returns False when the
    stock ran out: then a shortfall is recorded (order flagged, a full refund queued, sent after the commit)."""
    outbox.enqueue_order_receipt(order)  # same transaction: one receipt per order, sent after commit
    # Issue 22 (storefront, kept separate from the payment rules): tell the owner, same transaction.
    outbox.enqueue_new_order_notice(order, brand.order_address())
    if stock.consume(session, order):
        return True
    # Never oversell: the order records the payment, is flagged, and a full refund is queued.
    stock.record_shortfall(session, order, actor=actor)
    return False


def _apply_no_payment(session: Session, order: Order, checkout_session: Mapping[str, Any], actor: str) -> Outcome:
    """A session needing no payment that is neither complete (a 100%-off code: the amount check decides, in
    _apply_paid), open nor expired contradicts the order: nothing will ever be paid for it, so waiting would leave
    it pending forever."""
    if order.status != OrderStatus.PENDING:
        return Outcome.NOOP
    if not order.needs_review:
        problem = (
            f"session {checkout_session.get('id')} needs no payment (payment_status no_payment_required, "
            f"amount_total {checkout_session.get('amount_total')}) for an order of {order.total_cents}"
        )
        order_rules.flag_for_review(session, order, problem, actor=actor)
        log.error("Order %s not marked paid: %s", order.id, problem)
    return Outcome.FLAGGED


def _apply_closed(
    session: Session,
    order: Order,
    checkout_session: Mapping[str, Any],
    target: OrderStatus,
    note: str,
    actor: str,
) -> tuple[Outcome, int]:
    """A closing fact (failed, expired) from the order's current session closes a PENDING order and releases
    its stock; from an older attempt's session, or once paid, it changes nothing."""
    belongs = order.stripe_session_id in (None, checkout_session.get("id"))
    if (
        belongs
        and order.status == OrderStatus.PENDING
        and order.paid_at is None
        and order_rules.transition(session, order, target, actor=actor, note=note)
    ):
        stock.release(session, order)
        return (Outcome.FAILED if target == OrderStatus.FAILED else Outcome.EXPIRED), order.id
    return Outcome.NOOP, order.id


def _apply_processing(session: Session, order: Order, actor: str) -> Outcome:
    """Complete but unpaid: a delayed payment method is settling (async_payment_* will say how)."""
    if order.status != OrderStatus.PENDING:
        return Outcome.NOOP
    if not order.payment_processing:
        session.execute(
            update(Order)
            .where(Order.id == order.id, Order.status == OrderStatus.PENDING)
            .values(payment_processing=True, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        order_rules.record_order_event(session, order, actor=actor, note="Delayed payment processing")
    return Outcome.PROCESSING


def after_commit(outcome: EventOutcome, order_id: int | None) -> None:
    """The one place deciding what runs after a transaction that applied Stripe's word about an order commits:
    an applied change may have recorded an out-of-stock refund (a late payment whose units were gone),
    which is sent now (never inside the transaction, which must not wait for Stripe). The transaction says
    whether it recorded one: without one, nothing is read."""
    recorded = stock.take_recorded_shortfalls(db.session())
    if outcome == EventOutcome.APPLIED and order_id in recorded:
        stock.send_shortfall_refunds(order_id)


def finalize_checkout(checkout_session: Mapping[str, Any], *, actor: str, payment_failed: bool = False) -> Outcome:
    """The single place that settles an order from a Checkout Session, in its own transaction.

    Called by the webhook (with the signed event's snapshot), the success page and reconcile (with a
    fresh retrieve). Records the payment only when Stripe says paid, the session is one the shop created
    for the order, and amount, currency and order reference match; a mismatch flags the order for staff.
    Only the caller that recorded the payment does side effects.
    """
    with write_transaction() as session:
        outcome, order_id = apply_session(session, checkout_session, actor=actor, payment_failed=payment_failed)
    after_commit(outcome.event_outcome, order_id)
    return outcome


# At most one Stripe retrieve per pending order in this many seconds, whoever refreshes the success page on
# whichever worker or node: 300 refreshes made 300 calls (and drew Stripe's 429s) before. In between, the
# page shows the last known state (and the webhook usually settles the order first anyway).
SUCCESS_PAGE_STRIPE_INTERVAL_SECONDS = 5


def claim_stripe_check(order_id: int, interval_seconds: float = SUCCESS_PAGE_STRIPE_INTERVAL_SECONDS) -> bool:
    """Compare-and-set on orders.stripe_checked_at: True for the one caller allowed to ask Stripe now.

    The database is the shared clock and lock: the conditional UPDATE succeeds for exactly one request
    while the last check is older than `interval_seconds` (seconds) and the order is still pending.
    """
    now = utcnow()
    with write_transaction() as session:
        claimed = session.execute(
            update(Order)
            .where(
                Order.id == order_id,
                Order.status == OrderStatus.PENDING,
                or_(
                    Order.stripe_checked_at.is_(None),
                    Order.stripe_checked_at <= now - timedelta(seconds=interval_seconds),
                ),
            )
            .values(stripe_checked_at=now)
            .execution_options(synchronize_session=False)
        )
        return claimed.rowcount == 1  # type: ignore[attr-defined]


def settle_from_success_page(user_id: int, session_id: str) -> Order | None:
    """The success page: the shopper's own order for this session, refreshed from Stripe if not yet final.

    Returns None for a session that is not this shopper's (the caller answers 404). Makes at most one
    Stripe call, none once the order is final, and none if any request asked Stripe about this order in
    the last SUCCESS_PAGE_STRIPE_INTERVAL_SECONDS (claim_stripe_check).
    """
    order = db.session.scalar(
        select(Order)
        .join(CheckoutAttempt, CheckoutAttempt.order_id == Order.id)
        .where(CheckoutAttempt.stripe_session_id == session_id, Order.user_id == user_id)
    )
    if order is None:
        return None
    if order.status == OrderStatus.PENDING and claim_stripe_check(order.id):
        try:
            checkout_session = get_gateway().retrieve_checkout_session(session_id)
        except SessionNotFound:
            close_unknown_session(order.id, session_id, actor="success page", target=OrderStatus.EXPIRED)
            db.session.refresh(order)
            return order
        except GatewayError:
            log.warning("Success page for order %s: Stripe unreachable; showing last known state", order.id)
            return order
        finalize_checkout(checkout_session, actor="success page")
        db.session.refresh(order)
    return order
