"""Shop forms. Quantities are read as raw fields and validated by the catalog service."""

from flask_wtf import FlaskForm
from wtforms import SubmitField


class BuyForm(FlaskForm):
    """The Buy button; carries the CSRF token for the whole selection."""

    submit = SubmitField("Buy")

