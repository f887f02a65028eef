"""A stateful property-based test of the money (issue 20): hypothesis generates schedules of shoppers, staff,
Stripe's Dashboard, strangers and Stripe's at-least-once, any-order deliveries, and checks the invariants
after every step.

It drives the real services, the real webhook route (Flask test client) and the local Stripe service in
process (through the SDK and the emulator's transport, as the other payment tests do). Every event the
service makes is held back; the `deliver` rule sends any one of them, any number of times, in any order,
or never. The budget comes from the caller (tests/facts/test_schedules.py for CI, scripts/explore_payments.sh
for a long random run), which also reads the counters below.
"""

from __future__ import annotations

import contextlib
import copy
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import stripe
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import func, select, text
from werkzeug.test import Client

from shopapp.extensions import db
from shopapp.models import (
    CheckoutAttempt,
    Dispute,
    Order,
    OrderEvent,
    OrderItem,
    OrderStatus,
    OutboxMessage,
    Product,
    Refund,
    RefundStatus,
    ShippingRate,
    derive_status,
)
from shopapp.models.base import utcnow
from shopapp.services import accounts, audit, catalog, discounts, reconcile, refunds, webhooks
from shopapp.services import orders as order_rules
from stripe_emulator import Emulator, EmulatorHTTPClient
from stripe_emulator.errors import EmulatorStateError
from stripe_emulator.taxes import Registration, TaxSettings
from tests.conftest import PASSWORD, WEBHOOK_SECRET
from tests.payments.stripe_shapes import post_event
from tests.support import deliver_webhooks_to

LIMITED_UNITS = 4  # Product A's stock at the start of every schedule; Product B is unlimited
PAYMENT_METHODS = ("card", "card", "decline", "refund fails later", "refund stays pending", "bank debit succeeds",
                   "bank debit fails", "disputed", "disputed", "inquiry", "fraud warning")  # fmt: skip
CARDS = {
    "card": "4242424242424242",
    # Issue 21: paid, then disputed (a chargeback; an inquiry) or warned of fraud (docs.stripe.com/testing).
    "disputed": "4000000000000259",
    "inquiry": "4000000000001976",
    "fraud warning": "4000000000005423",
    "decline": "4000000000000002",
    "refund fails later": "4000000000005126",
    "refund stays pending": "4000000000007726",
}
SESSION_IN_URL = re.compile(r"cs_test_[A-Za-z0-9]+")
# Tables emptied between schedules (users, products and the schema stay: the shoppers stay logged in).
ORDER_TABLES = (
    "disputes",
    "early_fraud_warnings",
    "refunds",
    "order_events",
    "order_items",
    "checkout_attempts",
    "payment_events",
    "outbox_messages",
)
# Issue 23: what staff add to prices (made again at Stripe for every schedule, as the account is reset).
PRICING_TABLES = ("promotion_codes", "coupons", "shipping_rates")
# Codes a shopper may type on the payment page (SAVE10: 10 % off; FREE: 100 % off, no_payment_required unless
# shipping is charged); Stripe Tax is on, registered in California only, so where the shopper lives decides tax.
CODES = (None, None, "SAVE10", "FREE")
# How the amount check's problems begin (shopapp/services/amounts.py): none may come from the shop's own sessions.
AMOUNT_CHECK_REASONS = (
    "subtotal ",
    "discount ",
    "a discount",
    "shipping",
    "no shipping",
    "rate ",
    "Stripe added tax",
    "automatic tax",
    "amount ",
    "session ",
)
TAX = TaxSettings((Registration("US", "CA", Decimal("7.25")),))
ADDRESSES = {
    "CA": {
        "name": "Ann Lee",
        "line1": "1 Main St",
        "city": "Fresno",
        "state": "CA",
        "postal_code": "93650",
        "country": "US",
    },
    "NY": {
        "name": "Bo Li",
        "line1": "2 Main St",
        "city": "Albany",
        "state": "NY",
        "postal_code": "12207",
        "country": "US",
    },
}


@dataclass
class Counters:
    """What the exploration did, for the report: schedules (examples) and steps (rules run)."""

    schedules: int = 0
    steps: int = 0
    rules: Counter[str] = field(default_factory=Counter)
    # Issue 23: paid orders seen with a discount, tax, shipping or nothing to pay, as (schedule, order id, kind).
    charged: set[tuple[int, int, str]] = field(default_factory=set)


@dataclass
class World:
    """What lives across schedules of one test: the app, the local Stripe service, logged-in shoppers."""

    app: Flask
    transport: EmulatorHTTPClient
    state_path: Path
    api_version: str | None
    shoppers: list[tuple[int, FlaskClient]]
    product_ids: dict[str, int]
    counters: Counters = field(default_factory=Counters)

    @property
    def emulator(self) -> Emulator:
        """The local Stripe service the shop's transport talks to now (replaced by a restart)."""
        return self.transport.emulator

    def dashboard(self) -> stripe.StripeClient:
        """The account seen from Stripe's Dashboard (another user of the same account), via the real SDK."""
        return stripe.StripeClient(
            "sk_test_dashboard",
            http_client=EmulatorHTTPClient(self.emulator),
            base_addresses={"api": "http://127.0.0.1:12111"},
            max_network_retries=0,
        )


def new_emulator(state_path: Path, api_version: str | None) -> Emulator:
    """The local service, keeping its state in `state_path` (so a restart loses nothing, as at Stripe)."""
    emulator = Emulator(
        webhook_url="http://shop.test/webhook/",
        webhook_secret=WEBHOOK_SECRET,
        async_delay=None,
        api_version=api_version,
        state_path=str(state_path),
        tax=TAX,
    )
    emulator.hold_deliveries()  # every event waits for the `deliver` rule
    return emulator


def reset_world(world: World) -> None:
    """An empty shop (orders, events, mail) and an empty Stripe account before each schedule."""
    world.emulator.reset()
    world.emulator.hold_deliveries()
    db.session.rollback()
    with db.engine.begin() as conn:
        for table in ORDER_TABLES:
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(text("DELETE FROM orders"))
        for table in PRICING_TABLES:
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(
            text("UPDATE products SET stock = :units, reserved = 0 WHERE id = :id"),
            {"units": LIMITED_UNITS, "id": world.product_ids["A"]},
        )
    db.session.remove()
    make_pricing()


def make_pricing() -> None:
    """Staff's coupons, promotion codes and shipping rate, created at the (reset) local Stripe service."""
    ten = discounts.create_coupon(discounts.CouponInput(name="Ten", percent_off="10"), actor="schedule")
    discounts.create_promotion_code(ten.id, "SAVE10", actor="schedule")
    free = discounts.create_coupon(discounts.CouponInput(name="Free", percent_off="100"), actor="schedule")
    discounts.create_promotion_code(free.id, "FREE", actor="schedule")
    discounts.create_shipping_rate("Standard", "usd 4.95", "US", actor="schedule")
    db.session.remove()


class PaymentSchedules(RuleBasedStateMachine):
    """Rules: what anyone can do to the shop's money; invariants: what must hold after every step."""

    world: World  # set by schedules_for()

    def __init__(self) -> None:
        super().__init__()
        reset_world(self.world)
        self.world.counters.schedules += 1
        self.sessions: dict[str, int] = {}  # every session the shop sent a shopper to -> shopper index
        self.foreign: set[str] = set()  # sessions made by another integration naming one of our orders
        self.pending: list[str] = []  # event ids not delivered yet (a delivered one may come again: `twice`)
        self.delivered: list[str] = []
        # Lists in the order things happened (never sorted by Stripe's random ids): a schedule replays the same.
        self.delayed: list[str] = []  # sessions paid by a delayed method, not settled at Stripe yet
        self.scheduled_refunds: list[str] = []  # refunds whose later status change Stripe has not made yet
        self.refunds_at_stripe: list[str] = []
        self.closed_disputes: dict[str, str] = {}  # dispute id -> the closed status the shop recorded

    # ------------------------------------------------------------------ helpers

    @property
    def emulator(self) -> Emulator:
        return self.world.emulator

    def _step(self, name: str) -> None:
        self.world.counters.steps += 1
        self.world.counters.rules[name] += 1

    def _collect_events(self) -> None:
        known = set(self.pending) | set(self.delivered)
        for event_id in list(self.emulator.store.events):
            if event_id not in known:
                self.pending.append(event_id)

    def _orders(self) -> list[Order]:
        db.session.rollback()
        return list(db.session.scalars(select(Order).order_by(Order.id)))

    def _paid_orders(self) -> list[Order]:
        return [o for o in self._orders() if o.paid_at is not None and o.stripe_payment_intent_id]

    def _stripe_session(self, session_id: str) -> dict[str, Any] | None:
        return self.emulator.store.sessions.get(session_id)

    # ------------------------------------------------------------------ shoppers

    @initialize(
        limited=st.booleans(),
        quantity=st.integers(1, 2),
        method=st.sampled_from(PAYMENT_METHODS),
        code=st.sampled_from(CODES),
        where=st.sampled_from(sorted(ADDRESSES)),
        shipping=st.booleans(),
    )
    def first_purchase(
        self, limited: bool, quantity: int, method: str, code: str | None, where: str, shipping: bool
    ) -> None:
        """Every schedule starts with one Buy and its payment, so that the other rules have something to act on."""
        self.staff_switch_shipping(shipping)
        self.buy(0, limited, quantity)
        open_sessions = self._open_sessions()
        if open_sessions:
            self._pay(open_sessions[-1], method, code, where)

    @rule(offered=st.booleans())
    def staff_switch_shipping(self, offered: bool) -> None:
        """Staff offer the shipping rate on new checkouts, or stop (then a FREE code makes a session free)."""
        self._step("staff switch shipping")
        db.session.rollback()
        rate_id = db.session.scalar(select(func.min(ShippingRate.id)))
        db.session.rollback()
        if rate_id is not None:
            discounts.set_shipping_rate_active(rate_id, offered)

    @rule(shopper=st.integers(0, 1), limited=st.booleans(), quantity=st.integers(1, 2))
    def buy(self, shopper: int, limited: bool, quantity: int) -> None:
        """Press Buy (Product A: limited stock; Product B: unlimited)."""
        self._step("buy")
        _user_id, client = self.world.shoppers[shopper]
        product_id = self.world.product_ids["A" if limited else "B"]
        response = client.post("/checkout", data={f"qty-{product_id}": str(quantity)})
        assert response.status_code == 303, response.status_code
        found = SESSION_IN_URL.search(response.headers["Location"])
        if found:  # else refused (sold out, Stripe unreachable): back to the shop page
            self.sessions[found.group(0)] = shopper
        self._collect_events()

    def _open_sessions(self) -> list[str]:
        return [s for s in self.sessions if (self._stripe_session(s) or {}).get("status") == "open"]

    @precondition(lambda self: bool(self._open_sessions()))
    @rule(
        data=st.data(),
        method=st.sampled_from(PAYMENT_METHODS),
        code=st.sampled_from(CODES),
        where=st.sampled_from(sorted(ADDRESSES)),
    )
    def pay(self, data: st.DataObject, method: str, code: str | None, where: str) -> None:
        """Pay an open session of the shop's at the hosted page: a card (declined, or whose refunds later fail
        or stay pending), or a bank debit that later succeeds or fails (settle_bank_debit); maybe after typing a
        promotion code, from an address Stripe Tax taxes (California) or not (New York)."""
        self._pay(data.draw(st.sampled_from(self._open_sessions())), method, code, where)

    def _pay(self, session_id: str, method: str, code: str | None = None, where: str = "CA") -> None:
        self._step(f"pay: {method}" + (f" with {code}" if code else ""))
        if code is not None:
            Client(self.emulator.wsgi_app).post(f"/pay/{session_id}/discount", data={"code": code})
        address = ADDRESSES[where]
        session = self._stripe_session(session_id) or {}
        shipping = address if session.get("shipping_address_collection") else None
        with contextlib.suppress(EmulatorStateError):
            if session.get("payment_status") == "no_payment_required" or session.get("amount_total") == 0:
                self.emulator.pay(session_id, shipping=shipping, billing=address)
            elif method in CARDS:
                self.emulator.pay(session_id, card=CARDS[method], shipping=shipping, billing=address)
            else:
                delayed = "succeed" if method.endswith("succeeds") else "fail"
                self.emulator.pay(session_id, delayed=delayed, shipping=shipping, billing=address)
                self.delayed.append(session_id)
        self._collect_events()

    @precondition(lambda self: bool(self.delayed))
    @rule(data=st.data())
    def settle_bank_debit(self, data: st.DataObject) -> None:
        """Stripe learns how a delayed payment ended."""
        self._step("bank debit settles")
        session_id = data.draw(st.sampled_from(self.delayed))
        self.delayed.remove(session_id)
        with contextlib.suppress(EmulatorStateError):
            self.emulator.complete_async(session_id)
        self._collect_events()

    @precondition(lambda self: bool(self.sessions))
    @rule(data=st.data())
    def visit_success_page(self, data: st.DataObject) -> None:
        """The shopper lands on (or reloads) the success page of one of their sessions."""
        self._step("success page")
        session_id = data.draw(st.sampled_from(list(self.sessions)))
        _user_id, client = self.world.shoppers[self.sessions[session_id]]
        # As if the last look at Stripe was long ago (the page asks at most every 5 s): the schedule, not the
        # wall clock, decides what the page does.
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE orders SET stripe_checked_at = NULL"))
        response = client.get(f"/success/?session_id={session_id}")
        assert response.status_code in (200, 404), response.status_code
        self._collect_events()

    @precondition(lambda self: bool(self.sessions))
    @rule(data=st.data(), how=st.sampled_from(["shopper cancels", "session expires"]))
    def give_up(self, data: st.DataObject, how: str) -> None:
        """The shopper cancels their newest order, or Stripe expires an open session (its time ran out)."""
        self._step(how)
        if how == "session expires":
            open_sessions = self._open_sessions()
            if open_sessions:
                self.emulator.expire(data.draw(st.sampled_from(open_sessions)))
            self._collect_events()
            return
        user_id, client = self.world.shoppers[data.draw(st.integers(0, 1))]
        db.session.rollback()
        order_id = db.session.scalar(select(func.max(Order.id)).where(Order.user_id == user_id))
        db.session.rollback()
        if order_id is not None:
            response = client.post(f"/orders/{order_id}/cancel")
            assert response.status_code in (302, 303, 404, 503), response.status_code
        self._collect_events()

    # ------------------------------------------------------------------ staff and the Dashboard

    @precondition(lambda self: bool(self._paid_orders()))
    @rule(data=st.data(), full=st.booleans())
    def staff_refund(self, data: st.DataObject, full: bool) -> None:
        """Staff refund part or all of what remains refundable."""
        self._step("staff refund")
        order = data.draw(st.sampled_from(self._paid_orders()))
        remaining = refunds.remaining_refundable_cents(db.session, order)
        amount = remaining if full else max(1, remaining // 3)
        sequence = refunds.next_refund_sequence(db.session, order.id)
        db.session.rollback()
        if remaining <= 0:
            return
        try:
            made = refunds.request_refund(
                order.id, f"{amount / 100:.2f}", "schedule", requested_by="staff ann@example.com", sequence=sequence
            )
            self._note_refund(made.stripe_refund_id)
        except refunds.RefundError:
            pass
        self._collect_events()

    @precondition(lambda self: bool(self._paid_orders()))
    @rule(data=st.data(), full=st.booleans())
    def dashboard_refund(self, data: st.DataObject, full: bool) -> None:
        """Someone refunds at Stripe's Dashboard, outside the shop."""
        self._step("dashboard refund")
        order = data.draw(st.sampled_from(self._paid_orders()))
        payment_intent = str(order.stripe_payment_intent_id)
        db.session.rollback()
        charge = next((c for c in self.emulator.store.charges.values() if c["payment_intent"] == payment_intent), None)
        if charge is None:
            return
        left = charge["amount"] - charge["amount_refunded"]
        if left <= 0:
            return
        try:
            made = self.world.dashboard().v1.refunds.create(
                params={"payment_intent": payment_intent, "amount": left if full else max(1, left // 4)}
            )
            self._note_refund(made.id)
        except stripe.StripeError:
            pass
        self._collect_events()

    def _note_refund(self, refund_id: str) -> None:
        self.refunds_at_stripe.append(refund_id)
        if refund_id in self.emulator.store.refund_transitions:  # the test cards 5126 and 7726
            self.scheduled_refunds.append(refund_id)

    @precondition(lambda self: bool(self.scheduled_refunds))
    @rule(data=st.data())
    def refund_changes_at_stripe(self, data: st.DataObject) -> None:
        """A refund's later change happens at Stripe (pending -> succeeded, or succeeded -> failed for 5126)."""
        self._step("refund changes at Stripe")
        refund_id = data.draw(st.sampled_from(self.scheduled_refunds))
        self.scheduled_refunds.remove(refund_id)
        with contextlib.suppress(EmulatorStateError):
            self.emulator.settle_refund(refund_id)
        self._collect_events()

    # ------------------------------------------------------------------ disputes (issue 21)

    def _open_disputes(self) -> list[str]:
        return [d["id"] for d in self.emulator.store.disputes.values() if d["status"].endswith("needs_response")]

    @precondition(lambda self: bool(self._open_disputes()))
    @rule(data=st.data(), how=st.sampled_from(["winning_evidence", "losing_evidence", "draft", "accept", "past due"]))
    def dispute_goes_on(self, data: st.DataObject, how: str) -> None:
        """A dispute moves at Stripe: evidence staged or submitted (winning or losing), accepted, or past due."""
        self._step(f"dispute: {how}")
        dispute_id = data.draw(st.sampled_from(self._open_disputes()))
        dashboard = self.world.dashboard().v1.disputes
        with contextlib.suppress(stripe.StripeError, EmulatorStateError):
            if how == "accept":
                dashboard.close(dispute_id)
            elif how == "past due":
                self.emulator.advance_dispute(dispute_id)
            else:
                text = "draft" if how == "draft" else how
                dashboard.update(
                    dispute_id, params={"evidence": {"uncategorized_text": text}, "submit": how != "draft"}
                )
        self._collect_events()

    # ------------------------------------------------------------------ Stripe's deliveries, replay, reconcile

    @precondition(lambda self: bool(self.pending) or bool(self.delivered))
    @rule(data=st.data(), again=st.booleans())
    def deliver(self, data: st.DataObject, again: bool) -> None:
        """Deliver any pending event now (any order); `again`: a delivered one comes once more."""
        self._step("deliver")
        pool = self.delivered if (again and self.delivered) or not self.pending else self.pending
        event_id = data.draw(st.sampled_from(pool))
        status = self.emulator.redeliver(event_id)
        assert status is None or status in (200, 409, 500, 503), status
        if pool is self.pending and status is not None and 200 <= status < 300:
            self.pending.remove(event_id)
            self.delivered.append(event_id)
        self._collect_events()

    @precondition(lambda self: bool(self.sessions))
    @rule(kind=st.sampled_from(["reconcile", "replay failed", "restart the local service", "drain", "audit"]))
    def housekeeping(self, kind: str) -> None:
        """Cron and operations: reconcile, replay failed events, restart the local Stripe service, or let
        Stripe deliver everything it still owes (then the shop must agree with Stripe)."""
        self._step(kind)
        if kind == "reconcile":
            self._reconcile_and_check()
        elif kind == "replay failed":
            webhooks.replay_events(webhooks.failed_event_ids())
        elif kind == "restart the local service":
            self._restart()
        elif kind == "audit":
            self._audit_and_check()
        else:
            self._drain_and_compare()
        self._collect_events()

    def _reconcile_and_check(self) -> None:
        """`flask payments reconcile`; then no order stays PENDING once Stripe has decided its session."""
        reconcile.reconcile_pending(timedelta(0), now=utcnow() + timedelta(seconds=1))
        self._collect_events()
        for order in self._orders():
            if order.status != OrderStatus.PENDING or order.needs_review:
                continue
            assert order.stripe_session_id is not None, f"order {order.id} pending without a session"
            at_stripe = self._stripe_session(order.stripe_session_id)
            assert at_stripe is not None
            intent = self.emulator.store.payment_intents.get(str(at_stripe.get("payment_intent")))
            async_failed = intent is not None and intent["status"] in ("requires_payment_method", "canceled")
            decided = at_stripe["status"] == "expired" or at_stripe["payment_status"] == "paid"
            decided = decided or (at_stripe["status"] == "complete" and async_failed)
            assert not decided, f"order {order.id} still PENDING after reconcile; Stripe: {at_stripe['status']}"

    def _audit_and_check(self) -> None:
        """`flask payments audit` (issue 21): it applies every event Stripe has not had acknowledged, so afterwards
        the only differences left are payments or refunds of no order of the shop (another integration on the
        account) or of an order flagged for staff."""
        report = audit.run_audit(3, now=utcnow() + timedelta(days=2))  # the service clock may run ahead
        assert report.unreachable is None, report.unreachable
        self._collect_events()
        orders = {order.stripe_payment_intent_id: order for order in self._orders() if order.stripe_payment_intent_id}
        store = self.emulator.store
        for difference in report.remaining:
            if difference.kind == "payment":
                intent = difference.stripe_id
            else:
                intent = str((store.refunds.get(difference.stripe_id) or {}).get("payment_intent"))
            order = orders.get(intent)
            assert order is None or order.needs_review, f"audit left {difference.text()} ({order})"

    def _restart(self) -> None:
        """The local Stripe service restarts from its state file (nothing is lost, as at Stripe)."""
        old = self.world.emulator
        old.store.save()
        old.close()
        self.world.transport.emulator = new_emulator(self.world.state_path, self.world.api_version)
        self.world.emulator.deliverer.sender = old.deliverer.sender

    def _drain_and_compare(self) -> None:
        """Every owed event delivered (Stripe retries until 2xx), failed ones replayed, reconcile: then each
        paid order's refunded amount is what Stripe says succeeded, and each order paid at Stripe by its own
        session is paid in the shop (or flagged for staff)."""
        for _round in range(3):
            self._collect_events()
            for event_id in list(self.pending):
                status = self.emulator.redeliver(event_id)
                if status is not None and 200 <= status < 300:
                    self.pending.remove(event_id)
                    self.delivered.append(event_id)
            webhooks.replay_events(webhooks.failed_event_ids())
            reconcile.reconcile_pending(timedelta(0), now=utcnow() + timedelta(seconds=1))
        store = self.emulator.store
        for order in self._orders():
            if order.paid_at is not None:
                at_stripe = sum(
                    r["amount"]
                    for r in store.refunds.values()
                    if r["payment_intent"] == order.stripe_payment_intent_id and r["status"] == "succeeded"
                )
                assert order.refunded_cents == min(at_stripe, order.total_cents), (
                    f"order {order.id}: shop says {order.refunded_cents} refunded, Stripe {at_stripe}"
                )
            paid_sessions = [
                sid
                for sid in self.sessions
                if (store.sessions.get(sid) or {}).get("status") == "complete"
                and (store.sessions.get(sid) or {}).get("payment_status") in ("paid", "no_payment_required")
                and store.sessions[sid]["metadata"].get("order_id") == str(order.id)
            ]
            if paid_sessions:
                assert order.paid_at is not None or order.needs_review, f"order {order.id} paid at Stripe, not here"
        # Every dispute Stripe made on a paid order of ours is recorded as Stripe has it now.
        for at_stripe in store.disputes.values():
            row = db.session.scalar(select(Dispute).where(Dispute.stripe_dispute_id == at_stripe["id"]))
            if row is not None:
                assert row.status.value == at_stripe["status"], (row.status, at_stripe["status"])
                assert row.withdrawn_cents == (at_stripe["amount"] if at_stripe["balance_transactions"] else 0)
        db.session.rollback()

    # ------------------------------------------------------------------ strangers

    @rule(data=st.data(), who=st.sampled_from(["foreign session", "connected account", "other mode"]))
    def stranger(self, data: st.DataObject, who: str) -> None:
        """Someone else on the account: another integration makes and pays a session naming a pending order of
        ours; or an event of a connected account, or of the other mode, carries one of our objects."""
        if who == "foreign session":
            pending = [o for o in self._orders() if o.status == OrderStatus.PENDING]
            if pending:
                self._foreign_session_paid(data.draw(st.sampled_from(pending)))
        elif self.pending or self.delivered:
            self._stranger_event(data.draw(st.sampled_from(self.pending + self.delivered)), who == "connected account")

    def _foreign_session_paid(self, order: Order) -> None:
        self._step("foreign session")
        order_id, total, currency = order.id, order.total_cents, order.currency
        db.session.rollback()
        created = self.world.dashboard().v1.checkout.sessions.create(
            params={
                "mode": "payment",
                "line_items": [
                    {
                        "price_data": {"currency": currency, "unit_amount": total, "product_data": {"name": "other"}},
                        "quantity": 1,
                    }
                ],
                "success_url": "https://elsewhere.example/ok?session_id={CHECKOUT_SESSION_ID}",
                "cancel_url": "https://elsewhere.example/cancel",
                "client_reference_id": str(order_id),
                "metadata": {"order_id": str(order_id), "attempt": "1"},
            }
        )
        self.foreign.add(created.id)
        self.emulator.pay(created.id)
        self._collect_events()

    def _stranger_event(self, event_id: str, connect: bool) -> None:
        self._step("connect or other-mode event")
        [event] = [e for e in self.emulator.events() if e["id"] == event_id]
        stranger = copy.deepcopy(event)
        stranger["id"] = f"{event_id}_stranger"
        if connect:
            stranger["account"] = "acct_1Connected"
        else:
            stranger["livemode"] = True
        _user_id, client = self.world.shoppers[0]
        response = post_event(client, stranger, WEBHOOK_SECRET)
        assert response.status_code == 200 and response.get_data(as_text=True).strip() in ("ignored", "duplicate")

    # ------------------------------------------------------------------ invariants

    @invariant()
    def money_is_right(self) -> None:
        """After every step: the invariants of issue 20."""
        orders = self._orders()
        consumed_a = 0
        reserved_a = 0
        for order in orders:
            transitions = db.session.scalars(select(OrderEvent).where(OrderEvent.order_id == order.id)).all()
            paid_moves = [
                e
                for e in transitions
                if e.to_status == OrderStatus.PAID.value
                and e.from_status in ("pending", "expired", "canceled", "failed")
            ]
            assert len(paid_moves) <= 1, f"order {order.id}: {len(paid_moves)} paid transitions"
            ours = set(
                db.session.scalars(
                    select(CheckoutAttempt.stripe_session_id).where(CheckoutAttempt.order_id == order.id)
                )
            )
            if order.paid_at is not None:
                assert order.stripe_session_id in ours and order.stripe_session_id not in self.foreign, (
                    f"order {order.id} paid by {order.stripe_session_id}, not one of its own sessions {ours}"
                )
                # Paid, or made free by a 100%-off code (issue 23: no_payment_required, no PaymentIntent).
                assert (self._stripe_session(str(order.stripe_session_id)) or {}).get("payment_status") in (
                    "paid",
                    "no_payment_required",
                )
                assert self.sessions.get(str(order.stripe_session_id)) is not None
            succeeded = db.session.scalar(
                select(func.coalesce(func.sum(Refund.amount_cents), 0)).where(
                    Refund.order_id == order.id, Refund.status == RefundStatus.SUCCEEDED
                )
            )
            assert order.refunded_cents == min(int(succeeded or 0), order.total_cents), (
                f"order {order.id}: refunded {order.refunded_cents}, succeeded refunds {succeeded}"
            )
            assert int(succeeded or 0) <= order.total_cents, f"order {order.id}: refunded more than paid"
            if order.paid_at is None:
                assert order.refunded_cents == 0 and not order.stock_consumed
            assert order.status == derive_status(
                order.status, order.paid_at is not None, order.total_cents, order.refunded_cents
            ), f"order {order.id}: shows {order.status.value}, its facts say otherwise"
            if order.refunded_cents >= order.total_cents > 0:
                assert order.status != OrderStatus.PAID and not order.is_shippable, f"order {order.id}"
            if order.paid_at is not None:
                for kind, amount in (
                    ("discounted", order.amount_discount_cents),
                    ("taxed", order.amount_tax_cents),
                    ("shipped", order.amount_shipping_cents),
                    ("free", int(order.total_cents == 0)),
                ):
                    if amount:
                        self.world.counters.charged.add((self.world.counters.schedules, order.id, kind))
            # Issue 23: the amount check never refuses what the shop itself allowed (codes, the rate, tax).
            reason = order.review_reason or ""
            assert not reason.startswith(AMOUNT_CHECK_REASONS), f"order {order.id} flagged: {reason}"
            receipts = db.session.scalar(
                select(func.count(OutboxMessage.id)).where(OutboxMessage.dedupe_key == f"order-{order.id}-receipt")
            )
            assert receipts == (1 if order.paid_at is not None else 0), f"order {order.id}: {receipts} receipts"
            for item in db.session.scalars(select(OrderItem).where(OrderItem.order_id == order.id)):
                if item.product_id != self.world.product_ids["A"]:
                    continue
                if order.stock_consumed:
                    consumed_a += item.quantity
                if order.stock_reserved:
                    reserved_a += item.reserved_quantity
            self._disputes_are_right(order)
        product = db.session.get(Product, self.world.product_ids["A"], populate_existing=True)
        assert product is not None and product.stock is not None
        assert product.stock >= 0 and product.reserved >= 0
        assert product.reserved == reserved_a, (product.reserved, reserved_a)
        # Units are conserved: on the shelf + held + taken by paid orders = what was stocked; never taken twice.
        assert product.stock + product.reserved + consumed_a == LIMITED_UNITS, (
            product.stock,
            product.reserved,
            consumed_a,
        )
        db.session.rollback()

    def _disputes_are_right(self, order: Order) -> None:
        """Issue 21: a closed dispute stays closed with its outcome, whatever arrives later; nothing is refunded
        or shipped while one is open; withdrawn and reinstated money is counted once; the order shows what its
        dispute facts derive."""
        rows = list(db.session.scalars(select(Dispute).where(Dispute.order_id == order.id)))
        for row in rows:
            if row.stripe_dispute_id in self.closed_disputes:
                was = self.closed_disputes[row.stripe_dispute_id]
                assert row.status.value == was, f"dispute {row.stripe_dispute_id} was {was}, now {row.status}"
            elif row.status.is_closed:
                self.closed_disputes[row.stripe_dispute_id] = row.status.value
            assert row.withdrawn_cents in (0, row.amount_cents), (row.withdrawn_cents, row.amount_cents)
            assert row.reinstated_cents in (0, row.withdrawn_cents), (row.reinstated_cents, row.withdrawn_cents)
        standing, _due_by, lost = order_rules.derive_dispute_standing(rows)
        assert (order.dispute_standing, order.dispute_lost_cents) == (standing.value, lost), f"order {order.id}"
        if order.dispute_open:
            assert refunds.remaining_refundable_cents(db.session, order) == 0 and not order.is_shippable
            refused = refunds.dispute_blocks_refund(order)
            assert refused is not None and "disputed" in refused


def schedules_for(world: World) -> type[PaymentSchedules]:
    """The machine class bound to one test's world (hypothesis builds a fresh instance per schedule)."""
    return type("PaymentSchedulesFor", (PaymentSchedules,), {"world": world})


def make_world(app_factory: Callable[..., Flask], tmp_path: Path, api_version: str | None) -> World:
    """The shop, the local service (state in tmp_path) and two logged-in shoppers."""

    state_path = tmp_path / "stripe-state.db"
    emulator = new_emulator(state_path, api_version)
    transport = EmulatorHTTPClient(emulator)
    # Issue 23: Stripe Tax on (exclusive prices): every session asks for tax, Stripe decides by the address.
    app = app_factory(STRIPE_HTTP_CLIENT=transport, STRIPE_AUTOMATIC_TAX=True, TAX_BEHAVIOR="exclusive")
    deliver_webhooks_to(app, emulator)
    catalog.seed_demo_products()
    products = {p.name[-1]: p.id for p in catalog.list_active_products()}
    shoppers = []
    for n in range(2):
        user = accounts.create_user(f"schedule{n}@example.com", PASSWORD)
        client = app.test_client()
        client.post("/account/login", data={"email": user.email, "password": PASSWORD})
        shoppers.append((user.id, client))
    return World(app, transport, state_path, api_version, shoppers, products)
