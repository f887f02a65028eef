"""Staff's numbers and ids beyond what Stripe or the database takes: a 400 beside the field or a 404, never a
500, and nothing saved (faults 2 and 4)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shopapp.extensions import db
from shopapp.models import Coupon, PromotionCode, ShippingRate
from tests.conftest import fresh

HUGE = "99999999999999999999999"


def _count(model: Any) -> int:
    return int(fresh().scalar(db.select(db.func.count(model.id))))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"percent_off": "NaN"}, "Enter a number"),
        ({"percent_off": "Infinity"}, "Enter a number"),
        ({"percent_off": "1e30"}, "at most 100"),
        ({"amount_off": "1e30"}, "maximum charge in USD is 999999.99"),
        ({"amount_off": "99999999999999"}, "maximum charge in USD is 999999.99"),
        ({"amount_off": "NaN"}, "Enter a number"),
        ({"percent_off": "10", "max_redemptions": HUGE}, "Number must be between 1 and"),
    ],
)
def test_coupon_numbers_out_of_range_answer_400(
    staff_post: Callable[..., Any], fields: dict[str, str], message: str
) -> None:
    response = staff_post("/admin/discounts/coupons", {"name": "Big", "currency": "usd", **fields})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert _count(Coupon) == 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"minimum_amount": "1e30"}, "maximum charge in USD is 999999.99"),
        ({"minimum_amount": "NaN"}, "Enter a number"),
        ({"minimum_amount": "-Infinity"}, "Enter a number"),
        ({"max_redemptions": HUGE}, "Number must be between 1 and"),
    ],
)
def test_promotion_code_numbers_out_of_range_answer_400(
    staff_post: Callable[..., Any], fields: dict[str, str], message: str
) -> None:
    assert staff_post("/admin/discounts/coupons", {"name": "Ten", "percent_off": "10"}).status_code == 303
    coupon = fresh().scalar(db.select(Coupon))
    response = staff_post("/admin/discounts/codes", {"coupon": str(coupon.id), "code": "TEN", **fields})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert _count(PromotionCode) == 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"amounts": "usd NaN"}, "Enter a number"),
        ({"amounts": "usd 1e30"}, "maximum charge in USD is 999999.99"),
        ({"amounts": "usd 99999999999999"}, "maximum charge in USD is 999999.99"),
        ({"amounts": "usd 4.95, eur Infinity"}, "Enter a number"),
        ({"min_days": "99999999999999999999"}, "Number must be between 0 and"),
        ({"max_days": HUGE}, "Number must be between 1 and"),
        # A code Stripe's allowed_countries does not know made Stripe refuse every later checkout (newcomer, fault 1).
        ({"countries": "XX"}, "Stripe does not ship to XX"),
        ({"countries": "US, QQ"}, "Stripe does not ship to QQ"),
    ],
)
def test_shipping_rate_numbers_out_of_range_answer_400(
    staff_post: Callable[..., Any], fields: dict[str, str], message: str
) -> None:
    form = {"display_name": "Standard", "amounts": "usd 4.95", "countries": "US", **fields}
    response = staff_post("/admin/discounts/rates", form)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert _count(ShippingRate) == 0


@pytest.mark.parametrize("countries", ["DE", "US, DE", "us, fr"])
def test_a_rate_for_a_country_the_shop_does_not_ship_to_answers_400(
    app: Flask, staff_post: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, countries: str
) -> None:
    """Newcomer's fault 6: a rate could name countries beyond config SHIPPING_COUNTRIES (the shop ships to)."""
    monkeypatch.setitem(app.config, "SHIPPING_COUNTRIES", ["US", "CA"])
    form = {"display_name": "Standard", "amounts": "usd 4.95", "countries": countries}
    response = staff_post("/admin/discounts/rates", form)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    beyond = ", ".join(c.strip().upper() for c in countries.split(",") if c.strip().upper() not in ("US", "CA"))
    assert f"The shop does not ship to {beyond}: it ships to US, CA" in page
    assert _count(ShippingRate) == 0
    assert staff_post("/admin/discounts/rates", {**form, "countries": "us, CA"}).status_code == 303


@pytest.mark.parametrize(
    "url",
    [
        f"/admin/disputes/{HUGE}/",
        f"/admin/disputes/?order_id={HUGE}",
        f"/admin/orders/details/?id={HUGE}",
        "/admin/orders/details/?id=2147483648",
        f"/admin/products/stock/{HUGE}",
        f"/admin/products/picture/{HUGE}",
        f"/admin/users/details/?id={HUGE}",
        f"/admin/products/edit/?id={HUGE}",
        f"/orders/{HUGE}",
    ],
)
def test_huge_ids_in_urls_are_not_found(staff_client: FlaskClient, url: str) -> None:
    # 404, or Flask-Admin's answer for a record that does not exist: back to its list.
    assert staff_client.get(url).status_code in (302, 303, 404)


@pytest.mark.parametrize(
    "url",
    [
        f"/admin/orders/{HUGE}/refund/",
        f"/admin/orders/{HUGE}/ship/",
        f"/admin/discounts/codes/{HUGE}/active",
        f"/admin/discounts/rates/{HUGE}/active",
    ],
)
def test_huge_ids_in_posted_urls_are_not_found(staff_post: Callable[..., Any], url: str) -> None:
    assert staff_post(url, {"amount": "1.00", "reason": "x", "active": "1"}).status_code == 404
