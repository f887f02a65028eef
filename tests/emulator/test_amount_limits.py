"""Amounts above Stripe's eight digits are refused with a 400 `amount_too_large` wherever the local service takes
one (coupons, promotion code minimums, shipping rates, inline shipping_rate_data), never kept to fail later with a
500 on the payment page (fault 2)."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

TOO_LARGE = 10**32  # "usd 1e30" in cents


def _refused(call: Any) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        call()
    assert caught.value.http_status == 400
    return caught.value


@pytest.mark.parametrize("amount", [100_000_000, TOO_LARGE])
def test_amounts_above_eight_digits_are_refused(client: stripe.StripeClient, make_session: Any, amount: int) -> None:
    coupon = _refused(
        lambda: client.v1.coupons.create(params={"duration": "once", "amount_off": amount, "currency": "usd"})
    )
    assert (coupon.code, coupon.param) == ("amount_too_large", "amount_off")

    ten = client.v1.coupons.create(params={"duration": "once", "percent_off": 10})
    code = _refused(
        lambda: client.v1.promotion_codes.create(
            params={
                "promotion": {"type": "coupon", "coupon": ten.id},
                "restrictions": {"minimum_amount": amount, "minimum_amount_currency": "usd"},
            }
        )
    )
    assert (code.code, code.param) == ("amount_too_large", "restrictions[minimum_amount]")

    fixed = {"amount": amount, "currency": "usd"}
    rate = _refused(
        lambda: client.v1.shipping_rates.create(
            params={"display_name": "Big", "type": "fixed_amount", "fixed_amount": fixed}
        )
    )
    assert (rate.code, rate.param) == ("amount_too_large", "fixed_amount[amount]")
    other = {"amount": 500, "currency": "usd", "currency_options": {"eur": {"amount": amount}}}
    option = _refused(
        lambda: client.v1.shipping_rates.create(
            params={"display_name": "Big", "type": "fixed_amount", "fixed_amount": other}
        )
    )
    assert option.code == "amount_too_large"
    inline = _refused(
        lambda: make_session(
            shipping_address_collection={"allowed_countries": ["US"]},
            shipping_options=[
                {"shipping_rate_data": {"display_name": "Big", "type": "fixed_amount", "fixed_amount": fixed}}
            ],
        )
    )
    assert inline.code == "amount_too_large"


def test_eight_digits_are_taken(client: stripe.StripeClient) -> None:
    rate = client.v1.shipping_rates.create(
        params={
            "display_name": "Most",
            "type": "fixed_amount",
            "fixed_amount": {"amount": 99_999_999, "currency": "usd"},
        }
    )
    assert rate.fixed_amount.amount == 99_999_999
