"""Submitting the same coupon, promotion code or shipping rate form more than once (a double click, a resent
POST) makes one object here and at Stripe (fault 6): the form's one-time `submission` token names it."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from shopapp.extensions import db
from shopapp.models import Coupon, PromotionCode, ShippingRate
from stripe_emulator import Emulator
from tests.conftest import fresh


def _submission(staff_client: FlaskClient, form: str) -> str:
    """The one-time token the discounts page rendered in one form ("coupon", "code" or "rate")."""
    page = staff_client.get("/admin/discounts/").get_data(as_text=True)
    found = re.search(rf'<input id="{form}_submission" name="submission" type="hidden" value="([a-z]+)">', page)
    assert found is not None
    return found.group(1)


def _count(model: Any) -> int:
    return int(fresh().scalar(db.select(db.func.count(model.id))))


def test_the_same_forms_submitted_three_times_make_one_of_each(
    staff_post: Callable[..., Any], staff_client: FlaskClient, emulator: Emulator
) -> None:
    coupon_form = {"name": "Spring", "percent_off": "15", "submission": _submission(staff_client, "coupon")}
    for _ in range(3):
        assert staff_post("/admin/discounts/coupons", coupon_form).status_code == 303
    assert _count(Coupon) == 1
    coupon = fresh().scalar(db.select(Coupon))
    code_form = {"coupon": str(coupon.id), "code": "SPRING", "submission": _submission(staff_client, "code")}
    for _ in range(3):
        assert staff_post("/admin/discounts/codes", code_form).status_code == 303
    rate_form = {
        "display_name": "Standard",
        "amounts": "usd 4.95",
        "countries": "US",
        "submission": _submission(staff_client, "rate"),
    }
    for _ in range(2):
        assert staff_post("/admin/discounts/rates", rate_form).status_code == 303
    assert (_count(Coupon), _count(PromotionCode), _count(ShippingRate)) == (1, 1, 1)
    with emulator.store.lock:
        assert len(emulator.store.coupons) == 1
        assert len(emulator.store.promotion_codes) == 1
        assert len(emulator.store.shipping_rates) == 1


def test_each_new_form_makes_a_new_object(staff_post: Callable[..., Any], staff_client: FlaskClient) -> None:
    for name in ("One", "Two"):
        form = {"name": name, "percent_off": "15", "submission": _submission(staff_client, "coupon")}
        assert staff_post("/admin/discounts/coupons", form).status_code == 303
    assert _count(Coupon) == 2
    refused = staff_post("/admin/discounts/coupons", {"name": "Bad", "percent_off": "15", "submission": "1"})
    assert refused.status_code == 400 and "Reload the page" in refused.get_data(as_text=True)
