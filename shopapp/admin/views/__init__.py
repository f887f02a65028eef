"""Staff-only admin views, one module per area (as in Flask-Admin's examples). Presentation only: rules live in
the services."""

from shopapp.admin.views.brand import BrandView
from shopapp.admin.views.dashboard import StaffIndexView
from shopapp.admin.views.discounts import DiscountsView
from shopapp.admin.views.disputes import DisputeView
from shopapp.admin.views.events import PaymentEventView
from shopapp.admin.views.exports import ExportView
from shopapp.admin.views.orders import OrderView
from shopapp.admin.views.products import ProductView
from shopapp.admin.views.users import UserView

__all__ = [
    "BrandView",
    "DiscountsView",
    "DisputeView",
    "ExportView",
    "OrderView",
    "PaymentEventView",
    "ProductView",
    "StaffIndexView",
    "UserView",
]
