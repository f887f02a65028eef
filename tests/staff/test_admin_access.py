"""Every admin action is refused without a CSRF token and for non-staff, with CSRF on as in production.

Each POST is tried four ways: staff without a token (400), a shopper with a valid token of their own
(403), an anonymous visitor (sent to log-in), and staff with the token (works, so the refusals are not
an accident of a broken form). Nothing changes in the first three.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shopapp.extensions import db
from shopapp.models import Order, PaymentEvent, Product, Refund, User
from stripe_emulator import Emulator
from tests.conftest import PASSWORD, fresh, order_for_session, session_id_from
from tests.staff.conftest import csrf_token, stripe_refunds


@pytest.fixture
def app(app_factory: Callable[..., Flask], emulator: Emulator) -> Flask:
    """The testing app with CSRF protection on, its webhooks delivered to its own client."""
    application = app_factory(WTF_CSRF_ENABLED=True)
    webhook_client = application.test_client()
    emulator.deliverer.sender = lambda url, body, headers: (
        webhook_client.post(urlsplit(url).path, data=body, headers=headers).status_code
    )
    return application


def _login(app: Flask, email: str) -> tuple[FlaskClient, str]:
    browser = app.test_client()
    token = csrf_token(browser.get("/account/login").get_data(as_text=True))
    response = browser.post("/account/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code in (302, 303), response.status_code
    return browser, csrf_token(browser.get("/").get_data(as_text=True))


@pytest.fixture
def world(app: Flask, make_user: Callable[..., User], products: dict[str, Product], emulator: Emulator) -> Any:
    """A staff member, a shopper with a paid order, a stored event, and the browsers of each."""
    make_user("ann@example.com", staff=True)
    make_user("shopper@example.com")
    other = make_user("other@example.com")  # the target of user edits (promoting the shopper would end the test)
    shopper, shopper_token = _login(app, "shopper@example.com")
    field = f"qty-{products['Product A'].id}"
    session_id = session_id_from(shopper.post("/checkout", data={field: "2", "csrf_token": shopper_token}))
    emulator.pay(session_id)
    emulator.deliver_pending()
    order = order_for_session(session_id)
    staff, staff_token = _login(app, "ann@example.com")
    event = fresh().scalar(db.select(PaymentEvent).where(PaymentEvent.type == "checkout.session.completed"))
    return {
        "order": order,
        "product": products["Product A"],
        "event": event,
        "other_user": other,
        "staff": (staff, staff_token),
        "shopper": (shopper, shopper_token),
        "anonymous": (app.test_client(), None),
    }


def _actions(world: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, url, form) for every POST the admin offers."""
    order, product, event, user = world["order"], world["product"], world["event"], world["other_user"]
    return [
        (
            "refund",
            f"/admin/orders/{order.id}/refund/",
            {"amount": "5.00", "reason": "x", "sequence": "1", "confirm": "yes"},
        ),
        ("reprocess event", "/admin/payment_events/action/", {"action": "reprocess", "rowid": [str(event.id)]}),
        (
            "create product",
            "/admin/products/new/",
            {"name": "Sneaky", "description": "", "price": "1.00", "currency": "usd", "display_order": "0"},
        ),
        (
            "edit product",
            f"/admin/products/edit/?id={product.id}",
            {"name": "Renamed", "description": "", "price": "0.50", "currency": "usd", "display_order": "0"},
        ),
        # (No in-list editing: its unlabelled controls were removed for accessibility; staff use the forms.)
        ("make staff", f"/admin/users/edit/?id={user.id}", {"is_staff": "y"}),
        ("edit user", f"/admin/users/edit/?id={user.id}", {}),  # the edit above made them staff; this unsets
    ]


def _snapshot(emulator: Emulator, order: Order) -> Any:
    fresh()
    return (
        [(p.id, p.name, p.price_cents, p.active) for p in fresh().scalars(db.select(Product).order_by(Product.id))],
        [(u.email, u.is_staff) for u in fresh().scalars(db.select(User).order_by(User.id))],
        fresh().scalar(db.select(db.func.count(Refund.id))),
        [(o.status, o.refunded_cents) for o in fresh().scalars(db.select(Order))],
        [(e.outcome, e.processed_at) for e in fresh().scalars(db.select(PaymentEvent).order_by(PaymentEvent.id))],
        len(stripe_refunds(emulator, order.stripe_payment_intent_id)),
    )


def test_every_admin_action_refused_without_csrf_token_and_for_non_staff(world, emulator):
    order = world["order"]
    staff, staff_token = world["staff"]
    shopper, shopper_token = world["shopper"]
    anonymous, _ = world["anonymous"]
    refused = 0
    for name, url, form in _actions(world):
        before = _snapshot(emulator, order)
        no_token = staff.post(url, data=form)
        assert no_token.status_code == 400, name
        assert "Your form expired or was not sent from this site" in no_token.get_data(as_text=True)
        foreign = staff.post(url, data={**form, "csrf_token": shopper_token})
        assert foreign.status_code == 400, name
        not_staff = shopper.post(url, data={**form, "csrf_token": shopper_token})
        assert not_staff.status_code == 403, name
        nobody = anonymous.post(url, data=form)
        assert nobody.status_code == 400, name  # no session, so no valid token either
        assert _snapshot(emulator, order) == before, name
        refused += 4
        allowed = staff.post(url, data={**form, "csrf_token": staff_token})
        assert allowed.status_code in (200, 302, 303), (name, allowed.status_code)
        assert _snapshot(emulator, order) != before, f"{name} with a valid token changed nothing"
    print(f"admin actions: {len(_actions(world))}, refused requests: {refused}")


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/orders/",
        "/admin/orders/details/?id=1",
        "/admin/orders/export/csv/",
        "/admin/payment_events/",
        "/admin/payment_events/details/?id=1",
        "/admin/products/",
        "/admin/users/",
    ],
)
def test_admin_pages_refused_for_non_staff(world, path):
    shopper, _ = world["shopper"]
    anonymous, _ = world["anonymous"]
    staff, _ = world["staff"]
    assert shopper.get(path, buffered=True).status_code == 403
    response = anonymous.get(path, buffered=True)
    assert response.status_code == 302 and "/account/login" in response.headers["Location"]
    assert staff.get(path, buffered=True).status_code == 200  # buffered: the CSV export streams
