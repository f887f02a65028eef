"""The shopper's Cancel racing Stripe's own checkout.session.expired event for the same session.

Stripe sends checkout.session.expired as soon as it expires a session, including one expired at the shop's
request, so the webhook can close the order before the cancel's own transaction runs. The order must still
read CANCELED (what happened), release its held stock once, and never be payable.
"""

from __future__ import annotations

from shopapp.extensions import db
from shopapp.models import OrderStatus, Product
from shopapp.services import stock
from tests.conftest import order_for_session, session_id_from


def _stock_and_held(product_id: int) -> tuple[int | None, int]:
    db.session.rollback()  # end the snapshot: see what requests committed
    product = db.session.get(Product, product_id)
    assert product is not None
    return product.stock, product.reserved


def test_cancel_is_labelled_canceled_when_the_expired_event_arrives_first(
    client, shopper, buy, products, emulator, stripe_calls
):
    product = products["Product A"]
    stock.set_on_hand(product.id, 1)
    session_id = session_id_from(buy(A=1))
    order = order_for_session(session_id)
    assert _stock_and_held(product.id) == (0, 1)  # (available, held)

    delivered = []

    def expired_event_reaches_the_shop_first() -> None:
        stripe_calls.after_session_expire = None
        delivered.append(emulator.deliver_pending())

    stripe_calls.after_session_expire = expired_event_reaches_the_shop_first
    response = client.post(f"/orders/{order.id}/cancel")

    assert response.status_code == 302  # back to the shop page
    assert delivered, "the expired event was delivered while the cancel was in flight"
    closed = order_for_session(session_id)
    assert closed.status == OrderStatus.CANCELED
    moves = [(e.from_status, e.to_status) for e in closed.events]
    assert moves[-2:] == [("pending", "expired"), ("expired", "canceled")]
    assert _stock_and_held(product.id) == (1, 0)  # released once, not twice
    assert emulator.sessions[session_id]["status"] == "expired"
