"""Forms for the staff pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DecimalField, IntegerField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange
from wtforms.widgets import HiddenInput

from shopapp.services.refunds import MAX_REASON_LENGTH


class StaffForm(FlaskForm):
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
        places=2,
        validators=[InputRequired(message="Enter an amount.")],
        description="In the order's currency, e.g. 12.50; at most what remains refundable.",
    )
    reason = TextAreaField(
        "Reason",
        validators=[InputRequired(message="Give a reason."), Length(max=MAX_REASON_LENGTH)],
    )
    sequence = IntegerField(widget=HiddenInput(), validators=[InputRequired(), NumberRange(min=1, max=10_000)])
