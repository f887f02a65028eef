"""Dates Stripe refuses on a coupon or promotion code answer 400 beside the field with nothing saved, and a code
cannot be made on a coupon Stripe does not have (fault 5); percentages read "10 %", not "1E+1 %" (fault 7)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from shopapp.extensions import db
from shopapp.models import Coupon, PromotionCode
from shopapp.services import discounts
from tests.conftest import fresh


def _count(model: Any) -> int:
    return int(fresh().scalar(db.select(db.func.count(model.id))))


def _day(days: int) -> str:
    return (date.today() + timedelta(days=days)).isoformat()


@pytest.mark.parametrize("day", ["2020-01-01", _day(-1), "9999-12-31", _day(6 * 366)])
def test_coupon_redeem_by_stripe_refuses_answers_400(staff_post: Callable[..., Any], day: str) -> None:
    response = staff_post("/admin/discounts/coupons", {"name": "Old", "percent_off": "10", "redeem_by": day})
    assert response.status_code == 400
    assert "Stripe refuses" in response.get_data(as_text=True)
    assert _count(Coupon) == 0


def test_coupon_redeem_by_ahead_is_created(staff_post: Callable[..., Any]) -> None:
    response = staff_post("/admin/discounts/coupons", {"name": "Soon", "percent_off": "10", "redeem_by": _day(30)})
    assert response.status_code == 303
    assert fresh().scalar(db.select(Coupon)).stripe_coupon_id


@pytest.mark.parametrize(("day", "message"), [("2020-01-01", "Stripe refuses"), (_day(60), "Redeem by")])
def test_promotion_code_expiry_stripe_refuses_answers_400(
    staff_post: Callable[..., Any], day: str, message: str
) -> None:
    form = {"name": "Ten", "percent_off": "10", "redeem_by": _day(30)}
    assert staff_post("/admin/discounts/coupons", form).status_code == 303
    coupon = fresh().scalar(db.select(Coupon))
    response = staff_post("/admin/discounts/codes", {"coupon": str(coupon.id), "code": "TEN", "expires_at": day})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert _count(PromotionCode) == 0


def test_no_code_on_a_coupon_stripe_does_not_have(app: Flask, staff_post: Callable[..., Any]) -> None:
    with app.app_context():
        coupon = Coupon(
            name="Stuck",
            percent_off=10,
            duration="once",
            redeem_by=datetime(2020, 1, 1, tzinfo=UTC),
            idempotency_key="coupon-stuck",
            created_by="test",
        )
        db.session.add(coupon)
        db.session.commit()
        coupon_id = coupon.id
    response = staff_post("/admin/discounts/codes", {"coupon": str(coupon_id), "code": "STUCK"})
    assert response.status_code == 400
    assert "not at Stripe yet" in response.get_data(as_text=True)
    assert _count(PromotionCode) == 0


def test_coupon_percentages_are_shown_and_sent_as_written(
    staff_post: Callable[..., Any], staff_client: Any, emulator: Any
) -> None:
    for name, percent in (("Ten", "10"), ("All", "100"), ("Half", "12.50")):
        assert staff_post("/admin/discounts/coupons", {"name": name, "percent_off": percent}).status_code == 303
    page = staff_client.get("/admin/discounts/").get_data(as_text=True)
    assert "10 %" in page and "100 %" in page and "12.5 %" in page and "E+" not in page
    sent = discounts.percent_text(fresh().scalar(db.select(Coupon).where(Coupon.name == "Ten")).percent_off)
    assert sent == "10"
