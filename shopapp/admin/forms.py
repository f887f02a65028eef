"""Forms for the staff pages."""

from __future__ import annotations

from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    IntegerField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional, Regexp
from wtforms.widgets import HiddenInput

from shopapp import currencies
from shopapp.forms import ShopForm
from shopapp.services.ids import KEY_PART_LENGTH, random_key_part
from shopapp.services.refunds import MAX_REASON_LENGTH


class StaffForm(ShopForm):
    """Base of every admin form: Flask-WTF's CSRF token, the same one CSRFProtect checks on every POST.

    Flask-Admin's SecureForm signs a token of its own, which CSRFProtect refuses: with CSRF on (production)
    every admin POST failed. Like SecureForm, the check is always on, even where WTF_CSRF_ENABLED is off.
    """

    class Meta:
        csrf = True


class RefundForm(StaffForm):
    """Full or partial refund of a paid order; `sequence` makes a repeated submit the same refund."""

    amount = DecimalField(
        "Amount",
        places=None,  # shown as typed: JPY has no decimals (the order's currency decides, shopapp.currencies)
        validators=[InputRequired(message="Enter an amount.")],
        description="In the order's currency (12.50 for $12.50, 1500 for ¥1,500); at most what remains refundable.",
    )
    reason = TextAreaField(
        "Reason",
        validators=[InputRequired(message="Give a reason."), Length(max=MAX_REASON_LENGTH)],
    )
    sequence = IntegerField(widget=HiddenInput(), validators=[InputRequired(), NumberRange(min=1, max=10_000)])


# --- Catalogue (staff helper "staff") ------------------------------------------------------------------------


class ProductForm(StaffForm):
    """A product as staff edit it; the rules (Stripe's minimum, currency list, ...) are checked by
    shopapp.services.products.validate, whose messages are attached to these fields."""

    name = StringField("Name", validators=[InputRequired(message="Give the product a name."), Length(max=120)])
    description = TextAreaField("Description", validators=[Optional()])
    price = StringField(
        "Price",
        validators=[InputRequired(message="Enter a price.")],
        description="In the product's currency: 19.99 for USD, 500 for JPY (no decimals).",
    )
    currency = SelectField(
        "Currency", choices=[SelectChoice(code, label) for code, label in currencies.choices()], default="usd"
    )
    active = BooleanField("Active (shown in the shop)", default=True)
    display_order = IntegerField("Order", default=0, validators=[Optional(), NumberRange(min=0, max=1_000_000)])
    stock = IntegerField(
        "Stock",
        validators=[Optional(), NumberRange(min=0, max=100_000)],
        description="Units available; leave empty for unlimited.",
    )
    low_stock_threshold = IntegerField(
        "Low-stock alert at",
        validators=[Optional(), NumberRange(min=0, max=100_000)],
        description="The dashboard lists the product once its stock is at or below this; empty for no alert.",
    )
    image_alt = StringField(
        "Picture description (alt text)",
        validators=[Optional(), Length(max=200)],
        description="Read aloud to shoppers who cannot see the picture; the product name if empty.",
    )
    tax_code = StringField(
        "Stripe tax code",
        validators=[Optional(), Length(max=40)],
        description="Used when Stripe Tax is on, e.g. txcd_99999999 (tangible goods); empty: the account's default.",
    )


class UserStaffForm(StaffForm):
    """The one thing staff change on an account: whether it is staff."""

    is_staff = BooleanField("Staff (may use this admin)")


class PictureForm(StaffForm):
    """Upload (or remove) a product's picture; shopapp.services.pictures decides what is accepted."""

    picture = FileField("Picture (JPEG, PNG or WebP)")
    alt = StringField(
        "Picture description (alt text)",
        validators=[Optional(), Length(max=200)],
        description="Leave empty to use the product name.",
    )
    upload = SubmitField("Upload picture")
    remove = SubmitField("Remove picture")


class ShipForm(StaffForm):
    """Mark a paid order shipped; carrier and tracking number are optional."""

    carrier = StringField("Carrier", validators=[Optional(), Length(max=80)])
    tracking_number = StringField("Tracking number", validators=[Optional(), Length(max=120)])


class BrandForm(StaffForm):
    """The shop's brand, contact details and footer pages (rules in services.brand)."""

    shop_name = StringField("Shop name", validators=[InputRequired(), Length(max=80)])
    accent_color = StringField(
        "Accent colour",
        validators=[InputRequired()],
        description="#rrggbb; buttons and links. White text on it must be readable (4.5:1).",
    )
    contact_email = StringField("Contact email", validators=[InputRequired(), Length(max=254)])
    order_email = StringField(
        "New order notices to", validators=[Length(max=254)], description="One email per paid order; empty for none."
    )
    postal_address = TextAreaField("Postal address", description="One line each; shown in the footer and on receipts.")
    footer_line = StringField("Footer line", validators=[Length(max=200)])
    contact_page = TextAreaField("Contact page", description="Markdown. Empty restores the default text.")
    terms_page = TextAreaField("Terms page", description="Markdown. Empty restores the default text.")
    privacy_page = TextAreaField("Privacy page", description="Markdown. Empty restores the default text.")
    returns_page = TextAreaField("Returns page", description="Markdown. Empty restores the default text.")
    save = SubmitField("Save brand and pages")


class LogoForm(StaffForm):
    """Upload or remove the shop's logo."""

    logo = FileField("Logo (JPEG, PNG or WebP)")
    upload = SubmitField("Upload logo")
    remove = SubmitField("Remove logo")


class DisputeEvidenceForm(StaffForm):
    """Stripe's evidence fields for a dispute (pre-filled from the order); `version` makes a repeat one send."""

    product_description = TextAreaField("Product description", validators=[Length(max=20_000)])
    customer_name = StringField("Customer name", validators=[Length(max=5_000)])
    customer_email_address = StringField("Customer email address", validators=[Length(max=5_000)])
    billing_address = TextAreaField("Billing address", validators=[Length(max=5_000)])
    shipping_address = TextAreaField("Shipping address", validators=[Length(max=5_000)])
    shipping_carrier = StringField("Shipping carrier", validators=[Length(max=5_000)])
    shipping_tracking_number = StringField("Tracking number", validators=[Length(max=5_000)])
    shipping_date = StringField("Shipping date", validators=[Length(max=5_000)])
    service_date = StringField("Service date", validators=[Length(max=5_000)])
    customer_communication_text = TextAreaField(
        "Emails sent to the customer",
        validators=[Length(max=20_000)],
        description="Dates and Message-IDs of the emails the shop sent; sent to Stripe with the additional "
        "information.",
    )
    uncategorized_text = TextAreaField(
        "Additional information",
        validators=[Length(max=20_000)],
        description="The receipt and the order's timeline. In test mode, winning_evidence or losing_evidence here "
        "decides the dispute.",
    )
    version = IntegerField(widget=HiddenInput(), validators=[InputRequired()])
    save_draft = SubmitField("Save draft")
    submit_evidence = SubmitField("Submit evidence")


# Bounds on staff's whole numbers: beyond them a number overflows the database's integer (a 500) or means nothing.
MAX_COUNT = 1_000_000_000  # redemptions: within PostgreSQL's integer and Stripe's max_redemptions
MAX_DAYS = 365  # a delivery estimate in business days


class OnceForm(StaffForm):
    """A create form whose `submission` (random, rendered with the form, kept when a refused form is shown again)
    names what it creates: a repeated submit of the same form finds the first one instead of making another."""

    submission = StringField(
        widget=HiddenInput(),
        default=random_key_part,
        # Posted without one (a script, not the page): a fresh token, so nothing to find and one object made.
        validators=[Regexp(f"[a-z]{{{KEY_PART_LENGTH}}}", message="Reload the page and submit again.")],
    )


class CouponForm(OnceForm):
    """A coupon: percent or amount off (duration once), optional limits (issue 23)."""

    name = StringField("Name", validators=[InputRequired(), Length(max=40)], description="Shown on the payment page.")
    percent_off = StringField("Percent off", validators=[Optional()], description="e.g. 15; leave empty for an amount.")
    amount_off = StringField("Amount off", validators=[Optional()], description="e.g. 5.00, in the currency below.")
    currency = SelectField(
        "Currency", choices=[SelectChoice(code, label) for code, label in currencies.choices()], default="usd"
    )
    max_redemptions = IntegerField("Max redemptions", validators=[Optional(), NumberRange(min=1, max=MAX_COUNT)])
    redeem_by = DateField("Redeem by", validators=[Optional()], description="Last day (UTC); empty: no expiry.")
    create_coupon = SubmitField("Create coupon")


class PromotionCodeForm(OnceForm):
    """A code shoppers type on Stripe's payment page, for one coupon."""

    coupon = SelectField("Coupon", coerce=int, validators=[InputRequired()])
    code = StringField("Code", validators=[InputRequired(), Length(max=40)], description="e.g. SPRING15")
    max_redemptions = IntegerField("Max redemptions", validators=[Optional(), NumberRange(min=1, max=MAX_COUNT)])
    expires_at = DateField("Expires", validators=[Optional()], description="Last day (UTC); empty: never.")
    minimum_amount = StringField("Minimum order", validators=[Optional()], description="e.g. 30.00; empty: none.")
    create_code = SubmitField("Create promotion code")


class ShippingRateForm(OnceForm):
    """A shipping charge: name, amount per currency, countries, delivery estimate in business days."""

    display_name = StringField("Name", validators=[InputRequired(), Length(max=100)], description="e.g. Standard")
    amounts = StringField("Amounts", validators=[InputRequired()], description="Per currency: usd 4.95, eur 4.50")
    countries = StringField("Countries", validators=[InputRequired()], description="Two-letter codes: US, CA")
    min_days = IntegerField("Delivery from (business days)", validators=[Optional(), NumberRange(min=0, max=MAX_DAYS)])
    max_days = IntegerField("Delivery to (business days)", validators=[Optional(), NumberRange(min=1, max=MAX_DAYS)])
    create_rate = SubmitField("Create shipping rate")
