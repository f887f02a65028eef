"""Discounts and shipping: coupons, promotion codes and shipping rates, each created at Stripe (issue 23)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from flask import flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from shopapp.admin.forms import CouponForm, PromotionCodeForm, ShippingRateForm, StaffForm
from shopapp.admin.views.base import StaffOnly
from shopapp.extensions import db
from shopapp.models import Coupon, PromotionCode, ShippingRate
from shopapp.services import discounts


def _end_of_day(day: date | None) -> datetime | None:
    # "Last day" as staff type it: the code works until the end of that day (UTC).
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC) if day else None


class DiscountsView(StaffOnly, BaseView):
    """One page: the coupons, promotion codes and shipping rates, and a form for each."""

    def _forms(self, **given: FlaskForm) -> dict[str, FlaskForm]:
        forms: dict[str, FlaskForm] = {
            "coupon_form": given.get("coupon_form") or CouponForm(formdata=None),
            "code_form": given.get("code_form") or PromotionCodeForm(formdata=None),
            "rate_form": given.get("rate_form") or ShippingRateForm(formdata=None),
        }
        coupons = list(db.session.scalars(select(Coupon).order_by(Coupon.id.desc())))
        forms["code_form"].coupon.choices = [SelectChoice(c.id, c.name) for c in coupons]  # type: ignore[attr-defined]
        return forms

    def _render(self, status: int = 200, **given: FlaskForm) -> Any:
        return (
            self.render(
                "admin/discounts.html",
                coupons=list(db.session.scalars(select(Coupon).order_by(Coupon.id.desc()))),
                codes=list(db.session.scalars(select(PromotionCode).order_by(PromotionCode.id.desc()))),
                rates=list(db.session.scalars(select(ShippingRate).order_by(ShippingRate.id.desc()))),
                describe_rate=discounts.describe_rate,
                percent_text=discounts.percent_text,
                action_form=StaffForm(formdata=None),
                **self._forms(**given),
            ),
            status,
        )

    @expose("/")
    def index(self) -> Any:
        """The lists and the three forms."""
        return self._render()

    def _refused(self, form: FlaskForm, name: str, error: discounts.DiscountError) -> Any:
        for field_name, message in error.errors.items():
            field = getattr(form, field_name, None) or getattr(form, "code", None)
            if field is not None:
                field.errors = [*field.errors, message]
        return self._render(400, **{name: form})

    def _done(self, message: str) -> Any:
        flash(message, "success")
        return redirect(url_for(".index"), code=303)

    @expose("/coupons", methods=("POST",))
    def create_coupon(self) -> Any:
        """Create a coupon here and at Stripe; refused input answers 400 with the message beside the field."""
        form = CouponForm()
        if not form.validate():
            return self._render(400, coupon_form=form)
        try:
            coupon = discounts.create_coupon(
                discounts.CouponInput(
                    name=form.name.data or "",
                    percent_off=form.percent_off.data or "",
                    amount_off=form.amount_off.data or "",
                    currency=form.currency.data or "usd",
                    max_redemptions=form.max_redemptions.data,
                    redeem_by=_end_of_day(form.redeem_by.data),
                ),
                actor=f"staff {current_user.email}",
                submission=form.submission.data or "",
            )
        except discounts.DiscountError as error:
            return self._refused(form, "coupon_form", error)
        except discounts.NotAtStripeYet as error:
            flash(str(error), "warning")
            return redirect(url_for(".index"), code=303)
        return self._done(f"Coupon {coupon.name} created at Stripe ({coupon.stripe_coupon_id}).")

    @expose("/codes", methods=("POST",))
    def create_code(self) -> Any:
        """Create a promotion code for a coupon, here and at Stripe."""
        form = PromotionCodeForm()
        form.coupon.choices = [SelectChoice(c.id, c.name) for c in db.session.scalars(select(Coupon))]
        if not form.validate():
            return self._render(400, code_form=form)
        try:
            code = discounts.create_promotion_code(
                form.coupon.data,
                form.code.data or "",
                actor=f"staff {current_user.email}",
                max_redemptions=form.max_redemptions.data,
                expires_at=_end_of_day(form.expires_at.data),
                minimum_amount=form.minimum_amount.data or "",
                submission=form.submission.data or "",
            )
        except discounts.DiscountError as error:
            return self._refused(form, "code_form", error)
        except discounts.NotAtStripeYet as error:
            flash(str(error), "warning")
            return redirect(url_for(".index"), code=303)
        return self._done(f"Promotion code {code.code} created: shoppers can enter it on the payment page.")

    @expose("/codes/<int:code_id>/active", methods=("POST",))
    def code_active(self, code_id: int) -> Any:
        """Switch a promotion code on or off (at Stripe first)."""
        if not StaffForm().validate():
            return self._render(400)
        active = request.form.get("active") == "1"
        try:
            discounts.set_promotion_code_active(code_id, active)
        except LookupError:
            return self._render(404)
        except discounts.NotAtStripeYet as error:
            flash(str(error), "warning")
            return redirect(url_for(".index"), code=303)
        return self._done("Promotion code switched " + ("on." if active else "off."))

    @expose("/rates", methods=("POST",))
    def create_rate(self) -> Any:
        """Create a shipping rate here and at Stripe."""
        form = ShippingRateForm()
        if not form.validate():
            return self._render(400, rate_form=form)
        try:
            rate = discounts.create_shipping_rate(
                form.display_name.data or "",
                form.amounts.data or "",
                form.countries.data or "",
                actor=f"staff {current_user.email}",
                min_days=form.min_days.data,
                max_days=form.max_days.data,
                submission=form.submission.data or "",
            )
        except discounts.DiscountError as error:
            return self._refused(form, "rate_form", error)
        except discounts.NotAtStripeYet as error:
            flash(str(error), "warning")
            return redirect(url_for(".index"), code=303)
        return self._done(f"Shipping rate {rate.display_name} created: new checkouts offer it.")

    @expose("/rates/<int:rate_id>/active", methods=("POST",))
    def rate_active(self, rate_id: int) -> Any:
        """Offer a shipping rate on new checkouts, or stop offering it."""
        if not StaffForm().validate():
            return self._render(400)
        active = request.form.get("active") == "1"
        try:
            discounts.set_shipping_rate_active(rate_id, active)
        except LookupError:
            return self._render(404)
        return self._done("Shipping rate " + ("offered." if active else "no longer offered."))

    @expose("/<any(coupons, codes, rates):section>/<int:row_id>/delete", methods=("POST",))
    def delete_row(self, section: str, row_id: int) -> Any:
        """Delete a row that is not at Stripe yet (its creation failed), e.g. one Stripe keeps refusing."""
        if not StaffForm().validate():
            return self._render(400)
        try:
            name = discounts.delete_not_at_stripe(discounts.SECTIONS[section], row_id)
        except LookupError:
            return self._render(404)
        except discounts.CannotDelete as error:
            flash(str(error), "error")
            return self._render(409)
        return self._done(f"{name} deleted (it was never at Stripe).")

    @expose("/send", methods=("POST",))
    def send_pending(self) -> Any:
        """Send what Stripe has not confirmed yet, each with its stored key."""
        if not StaffForm().validate():
            return self._render(400)
        try:
            sent = discounts.send_pending()
        except discounts.NotAtStripeYet as error:
            flash(str(error), "warning")
            return redirect(url_for(".index"), code=303)
        return self._done(f"{sent} sent to Stripe.")
