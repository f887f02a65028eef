"""Orders: creation from a cart, the status state machine, and the shopper's order list."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from shopapp.database import newest_first
from shopapp.extensions import db
from shopapp.models import (
    ALLOWED_TRANSITIONS,
    DERIVED_STATUSES,
    Dispute,
    DisputeStanding,
    Order,
    OrderEvent,
    OrderItem,
    OrderStatus,
    Refund,
    RefundStatus,
    derive_status,
)
from shopapp.models.base import utcnow
from shopapp.services.catalog import Cart


class InvalidTransition(ValueError):
    """A status change the state machine does not allow."""


class ConcurrentChange(RuntimeError):
    """Another transaction changed the order between this one's read and its compare-and-set: retry."""


def can_transition(current: OrderStatus, target: OrderStatus) -> bool:
    """Whether the state machine allows current -> target."""
    return target in ALLOWED_TRANSITIONS[current]


def transition(
    session: Session,
    order: Order,
    target: OrderStatus,
    *,
    actor: str,
    note: str = "",
    values: Mapping[str, Any] | None = None,
    expected: Mapping[str, Any] | None = None,
) -> bool:
    """Move `order` from the status it was read with to `target` with a compare-and-set.

    Returns True for the one caller whose UPDATE matched (it alone may do side effects) and False when
    another process changed the status first. `expected` adds columns that must still hold the given
    values (e.g. refunded_cents, for PARTIALLY_REFUNDED -> PARTIALLY_REFUNDED). Raises InvalidTransition
    for a move the map forbids. The caller owns the transaction.
    """
    observed = order.status
    if target in DERIVED_STATUSES:
        raise InvalidTransition(f"{target.value} is derived from the order's facts: record the fact, then settle()")
    if not can_transition(observed, target):
        raise InvalidTransition(f"{observed.value} -> {target.value} is not allowed")
    now = utcnow()
    result = session.execute(
        update(Order)
        .where(Order.id == order.id, Order.status == observed)
        .where(*(getattr(Order, name) == value for name, value in (expected or {}).items()))
        .values(status=target, updated_at=now, **dict(values or {}))
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(order)
        return False
    session.add(
        OrderEvent(order_id=order.id, from_status=observed.value, to_status=target.value, actor=actor, note=note)
    )
    session.flush()
    session.refresh(order)
    return True


# The columns that hold an order's facts and what is derived from them: re-read (one SELECT, not the items)
# before deriving, as another transaction may have changed them since the caller loaded the order.
_FACT_COLUMNS = [
    "status",
    "refunded_cents",
    "paid_at",
    "stripe_session_id",
    "stripe_payment_intent_id",
    "shipping_address",
    "payment_processing",
    "needs_review",
    "stock_reserved",
    "stock_consumed",
    "dispute_standing",
    "dispute_due_by",
    "dispute_lost_cents",
]

# Built once, with bound parameters (building a statement per request cost about as much as running it).
# Table columns: plain statements that skip the ORM's execution layer. The SET clause of _RECORD_PAYMENT is
# the keys of the parameters it is executed with.
_order_table = cast(Table, Order.__table__)
_order_columns = _order_table.c
_RECORD_PAYMENT = (
    update(_order_table)
    .where(_order_columns.id == bindparam("b_order_id"), _order_columns.paid_at.is_(None))
    .returning(*(_order_columns[name] for name in _FACT_COLUMNS))
)
_SETTLE = (
    update(_order_table)
    .where(
        _order_columns.id == bindparam("b_order_id"),
        _order_columns.status == bindparam("b_status"),
        _order_columns.refunded_cents == bindparam("b_refunded_cents"),
    )
    .values(status=bindparam("status"), refunded_cents=bindparam("refunded_cents"), updated_at=bindparam("updated_at"))
)
# A timeline entry of settle(), written at once (not through the unit of work, which cost more than the row).
_ADD_ORDER_EVENT = insert(cast(Table, OrderEvent.__table__))
_refund_columns = Refund.__table__.c
_SUCCEEDED_REFUND_CENTS = select(func.coalesce(func.sum(_refund_columns.amount_cents), 0)).where(
    _refund_columns.order_id == bindparam("order_id"), _refund_columns.status == RefundStatus.SUCCEEDED
)


def record_payment(
    session: Session,
    order: Order,
    *,
    session_id: str,
    payment_intent: str | None,
    shipping_address: str | None,
    charged: Mapping[str, Any] | None = None,
) -> bool:
    """Record the fact "this session of ours paid this order, by this PaymentIntent, now", once.

    A compare-and-set on `paid_at IS NULL`: True for the one caller that recorded it (it alone does the
    side effects: receipt, stock), False when the order was already paid (a duplicate, a late or replayed
    event, the success page racing the webhook): then nothing changes. The caller checked that the session
    is one the shop created for this order (services/checkout.py) and owns the transaction; call settle()
    after it to derive the status.

    `charged` (issue 23): what Stripe charged, as Order columns (services/amounts.py Charged.order_columns:
    total paid, discount, shipping, tax, code, rate, invoice), written in the same compare-and-set, so the
    refundable amount and the derived status follow what was actually paid.
    """
    now = utcnow()
    written = {
        "paid_at": now,
        "stripe_session_id": session_id,
        "stripe_payment_intent_id": payment_intent,
        "shipping_address": shipping_address,
        "payment_processing": False,
        "updated_at": now,
        **dict(charged or {}),
    }
    # The fact columns come back with the compare-and-set (RETURNING), so the winner does not read the row again.
    facts = session.execute(_RECORD_PAYMENT, {"b_order_id": order.id, **written}).first()
    if facts is None:
        session.refresh(order, _FACT_COLUMNS)
        return False
    for name, value in zip(_FACT_COLUMNS, facts, strict=True):
        set_committed_value(order, name, value)
    # What this compare-and-set wrote (the total paid and what Stripe added or took off), without reading it.
    for name, value in (charged or {}).items():
        set_committed_value(order, name, value)
    return True


def succeeded_refund_cents(session: Session, order_id: int) -> int:
    """The sum of the order's refunds Stripe reports succeeded, in cents (what refunded_cents settles to)."""
    return int(session.scalar(_SUCCEEDED_REFUND_CENTS, {"order_id": order_id}) or 0)


def settle(
    session: Session, order: Order, *, actor: str, note: str = "", reread: bool = True, disputes: bool = False
) -> bool:
    """The one place an order's shown state is written: status and refunded_cents derived from its facts.

    Facts: the payment (paid_at, recorded once by record_payment), the closing facts (a PENDING order
    moved by transition() to FAILED, EXPIRED or CANCELED), and its Refund rows (succeeded ones count,
    capped at the total). Writes with a compare-and-set on the values read, adds a timeline entry when
    the status or the refunded amount changes, and returns whether it did; the dispute standing, due date and
    money lost are derived here too (derive_dispute_standing). Raises ConcurrentChange when
    another transaction changed the order meanwhile (the caller's transaction rolls back and is retried).
    """
    if reread:  # False only right after record_payment, which has just re-read them
        session.refresh(order, _FACT_COLUMNS)
    # Dispute facts are read only when they may matter: a dispute handler recorded one (`disputes=True`), or the
    # order already shows one; an order never disputed costs no extra query.
    disputed = (
        _settle_disputes(session, order, actor=actor)
        if disputes or order.dispute_standing != DisputeStanding.NONE
        else False
    )
    succeeded = succeeded_refund_cents(session, order.id) if order.paid_at is not None else 0
    refunded = min(succeeded, order.total_cents)
    target = derive_status(order.status, order.paid_at is not None, order.total_cents, refunded)
    observed, observed_refunded = order.status, order.refunded_cents
    if target == observed and refunded == observed_refunded:
        return disputed
    if target != observed and not can_transition(observed, target):
        raise InvalidTransition(f"{observed.value} -> {target.value} is not allowed")
    result = session.execute(
        _SETTLE,
        {
            "b_order_id": order.id,
            "b_status": observed,
            "b_refunded_cents": observed_refunded,
            "status": target,
            "refunded_cents": refunded,
            "updated_at": utcnow(),
        },
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ConcurrentChange(f"order {order.id} changed concurrently; retry")
    session.flush()  # timeline entries added before this one (a flag) keep their place
    session.execute(
        _ADD_ORDER_EVENT,
        {"order_id": order.id, "from_status": observed.value, "to_status": target.value, "actor": actor, "note": note},
    )
    # What was written, without reading the row again (the compare-and-set matched exactly these values).
    set_committed_value(order, "status", target)
    set_committed_value(order, "refunded_cents", refunded)
    if target == OrderStatus.REFUNDED:
        _clear_fraud_warning_review(session, order, actor=actor)
    return True


# The review reason an early fraud warning sets (services/disputes.py) starts with this. A refund of everything
# answers the warning (Stripe then marks it not actionable): nothing is left to review for that reason.
FRAUD_WARNING_REVIEW = "Early fraud warning"


def _clear_fraud_warning_review(session: Session, order: Order, *, actor: str) -> None:
    """Lift the review flag of a wholly refunded order when an early fraud warning set it (no other reason)."""
    result = session.execute(
        update(Order)
        .where(
            Order.id == order.id,
            Order.needs_review.is_(True),
            Order.review_reason.startswith(FRAUD_WARNING_REVIEW, autoescape=True),
        )
        .values(needs_review=False, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        record_order_event(
            session, order, actor=actor, note="Review flag lifted: wholly refunded, the early fraud warning is answered"
        )
        set_committed_value(order, "needs_review", False)


def derive_dispute_standing(disputes: list[Dispute]) -> tuple[DisputeStanding, datetime | None, int]:
    """What an order shows of its disputes: open while any is open (with the soonest due date of those still
    awaiting evidence: None once every open one was answered), else lost if any was lost, else won; and the
    money lost disputes took back for good (cents, amount plus fee)."""
    open_ones = [d for d in disputes if d.outcome == DisputeStanding.OPEN]
    lost = sum(d.taken_back_cents for d in disputes if d.outcome == DisputeStanding.LOST)
    if open_ones:
        dues = [d.due_by for d in open_ones if d.due_by is not None and d.awaits_evidence]
        return DisputeStanding.OPEN, min(dues) if dues else None, lost
    if any(d.outcome == DisputeStanding.LOST for d in disputes):
        return DisputeStanding.LOST, None, lost
    return (DisputeStanding.WON if disputes else DisputeStanding.NONE), None, lost


def _settle_disputes(session: Session, order: Order, *, actor: str) -> bool:
    """Write the order's dispute standing, due date and money lost from its Dispute facts; True if changed."""
    disputes = list(session.scalars(select(Dispute).where(Dispute.order_id == order.id)))
    if not disputes and order.dispute_standing == DisputeStanding.NONE:
        return False
    standing, due_by, lost = derive_dispute_standing(disputes)
    if (standing.value, due_by, lost) == (order.dispute_standing, order.dispute_due_by, order.dispute_lost_cents):
        return False
    session.execute(
        update(Order)
        .where(Order.id == order.id)
        .values(dispute_standing=standing.value, dispute_due_by=due_by, dispute_lost_cents=lost, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if standing.value != order.dispute_standing:
        record_order_event(session, order, actor=actor, note=f"Dispute standing: {standing.value}")
    set_committed_value(order, "dispute_standing", standing.value)
    set_committed_value(order, "dispute_due_by", due_by)
    set_committed_value(order, "dispute_lost_cents", lost)
    return True


def record_order_event(session: Session, order: Order, *, actor: str, note: str) -> None:
    """Add a timeline entry that is not a status change (a flag, a refund request, a no-op worth knowing)."""
    session.add(OrderEvent(order_id=order.id, from_status=None, to_status=None, actor=actor, note=note))


def flag_for_review(session: Session, order: Order, reason: str, *, actor: str) -> None:
    """Mark the order for staff attention without touching its status."""
    session.execute(
        update(Order)
        .where(Order.id == order.id)
        .values(needs_review=True, review_reason=reason, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    record_order_event(session, order, actor=actor, note=f"Flagged for review: {reason}")


def build_order(session: Session, user_id: int, cart: Cart) -> Order:
    """Add a PENDING order for `cart` with names and unit prices copied from the database."""
    order = Order(
        user_id=user_id,
        status=OrderStatus.PENDING,
        total_cents=cart.total_cents,
        currency=cart.currency,
        cart_key=cart.key,
        items=[
            OrderItem(
                product_id=line.product.id,
                product_name=line.product.name,
                unit_price_cents=line.product.price_cents,
                quantity=line.quantity,
            )
            for line in cart.lines
        ],
    )
    session.add(order)
    session.flush()
    record_order_event(session, order, actor="shopper", note="Order placed")
    return order


@dataclass(frozen=True, slots=True)
class ItemLine:
    """One line of an order as the shopper's order list shows it."""

    quantity: int
    product_name: str
    unit_price_cents: int


@dataclass(frozen=True, slots=True)
class OrderSummary:
    """What the shopper's order list shows of one order (plain values, not a tracked ORM object)."""

    id: int
    status: OrderStatus
    payment_processing: bool
    stock_shortfall: bool
    created_at: datetime
    total_cents: int
    currency: str
    checkout_url: str | None
    items: list[ItemLine]
    shipped_at: datetime | None = None
    shipping_carrier: str = ""
    tracking_number: str = ""
    dispute_standing: str = "none"


@dataclass(frozen=True)
class OrderPage:
    """One page of a shopper's orders."""

    orders: list[OrderSummary]
    page: int
    has_next: bool
    # What order_page_state() returns for this page, built from the same rows (see there).
    state: tuple[Any, ...] = ()

    @property
    def has_prev(self) -> bool:
        """Whether an earlier page exists."""
        return self.page > 1


# The columns of an order that change after it is placed, and that "My orders" shows. The rest of what
# it shows (the items, the creation time) is written once, with the order, and never changed: no code
# path updates them and staff cannot edit orders. So these values of a page's orders (plus one more
# order, for the "Older orders" link) identify the page's content exactly.
_orders = Order.__table__.c
_STATE_COLUMNS = (
    _orders.id,
    _orders.status,
    _orders.payment_processing,
    _orders.stock_shortfall,
    _orders.checkout_url,
    _orders.total_cents,
    _orders.currency,
    # Staff marking it shipped changes what the shopper sees.
    _orders.shipped_at,
    _orders.shipping_carrier,
    _orders.tracking_number,
    # A dispute opened or closed changes what the shopper sees.
    _orders.dispute_standing,
)


# Built once: constructing a statement on every page view cost as much as running it. Table columns, not
# ORM attributes: the rows are read as plain values, and a statement without ORM entities skips the ORM's
# execution layer (half the cost of these queries).
# newest_first: from the (user_id, id) index whatever the shopper's order count (not a walk down the primary
# key over everyone's newer orders).
_users_orders, _newest_first = newest_first(_orders.user_id, bindparam("user_id"), _orders.id)
_ORDERS_STATE = (
    select(*_STATE_COLUMNS)
    .where(_users_orders)
    .order_by(*_newest_first)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)
_page_ids = (
    select(_orders.id)
    .where(_users_orders)
    .order_by(*_newest_first)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
    .subquery()
)
_items = OrderItem.__table__.c
_ORDERS_PAGE = (
    select(*_STATE_COLUMNS, _orders.created_at, _items.quantity, _items.product_name, _items.unit_price_cents)
    .join(_page_ids, _page_ids.c.id == _orders.id)
    .outerjoin(OrderItem.__table__, _items.order_id == _orders.id)
    .order_by(_orders.id.desc(), _items.id)
)


# Pages beyond this are empty anyway; the bound keeps a huge ?page= from overflowing the database's OFFSET.
MAX_PAGE = 1_000_000


def _page_params(user_id: int, page: int, per_page: int) -> dict[str, int]:
    page = min(max(1, page), MAX_PAGE)
    return {"user_id": user_id, "limit": per_page + 1, "offset": (page - 1) * per_page}


def order_page_state(user_id: int, page: int, per_page: int) -> tuple[Any, ...]:
    """The changeable values of one page of the user's orders, from the (user_id, id) index without the
    items: equal states mean an identical page, so a view may reuse HTML it rendered for an OrderPage
    whose .state is equal (shopapp/shop/page_cache.py)."""
    return tuple(map(tuple, db.session.execute(_ORDERS_STATE, _page_params(user_id, page, per_page)).all()))


def orders_for_user(user_id: int, page: int, per_page: int) -> OrderPage:
    """The user's orders, newest first, with their items: one query whatever the order count.

    The page of order ids comes from the (user_id, id) index, and the rows are read as plain values:
    building tracked ORM objects for 20 orders and their items cost more than the rest of the page.
    """
    rows = db.session.execute(_ORDERS_PAGE, _page_params(user_id, page, per_page)).all()
    summaries: list[OrderSummary] = []
    state: list[tuple[Any, ...]] = []
    width = len(_STATE_COLUMNS)
    for row in rows:
        oid, status, processing, shortfall, url, total, currency, shipped, carrier, tracking, disputed = row[:width]
        created, qty, name, price = row[width:]
        if not summaries or summaries[-1].id != oid:
            summaries.append(
                OrderSummary(
                    oid,
                    status,
                    processing,
                    shortfall,
                    created,
                    total,
                    currency,
                    url,
                    [],
                    shipped,
                    carrier,
                    tracking,
                    disputed,
                )
            )
            state.append(tuple(row[:width]))
        if qty is not None:
            summaries[-1].items.append(ItemLine(qty, name, price))
    return OrderPage(
        orders=summaries[:per_page],
        page=min(max(1, page), MAX_PAGE),
        has_next=len(summaries) > per_page,
        state=tuple(state),
    )


# Checkouts that never became a purchase because the shopper left or replaced them (a failed payment is not
# here: the shopper did try to pay). My orders collapses these as "not completed" instead of listing them.
NOT_COMPLETED = frozenset({OrderStatus.CANCELED, OrderStatus.EXPIRED})


def get_order_for_user(order_id: int, user_id: int) -> Order | None:
    """The order if it belongs to the user; None otherwise (callers answer 404 either way)."""
    return db.session.scalar(select(Order).where(Order.id == order_id, Order.user_id == user_id))


def status_history(order: Order) -> list[OrderEvent]:
    """The order's status changes, oldest first (the shopper's view: no internal notes or actors)."""
    return [event for event in order.events if event.to_status and event.to_status != event.from_status]
