"""The one-page shop: products, the Buy form, and the shopper's orders."""

from flask import Blueprint

bp = Blueprint("shop", __name__)

from shopapp.shop import routes  # noqa: E402,F401  (registers the views on bp)
