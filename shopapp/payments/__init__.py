"""Payments: the success page and the Stripe webhook."""

from flask import Blueprint

bp = Blueprint("payments", __name__)

from shopapp.payments import routes  # noqa: E402,F401  (registers the views on bp)
