"""Sign-up, log-in and log-out."""

from flask import Blueprint

bp = Blueprint("auth", __name__, url_prefix="/account")

from shopapp.auth import account, routes, two_factor  # noqa: E402,F401  (registers the views on bp)
