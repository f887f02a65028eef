"""Flask extensions, created unbound; the application factory initialises them."""

from __future__ import annotations

from flask import Flask, current_app, request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.constants import ConfigVars
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base for every model (typed, so mypy understands the columns)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)
mail = Mail()
babel = Babel()


# The busiest views, which carry no rate limit of their own: while no default or application-wide limit is
# configured either, Flask-Limiter would still resolve and filter the (empty) limits of every request to them
# (about 150 Python calls, a tenth of the anonymous shop page, issue 25). Its public request filter skips
# that. tests/perf/test_limiter_exemptions.py fails if one of them is given a limit.
UNLIMITED_ENDPOINTS = frozenset(
    {
        "shop.index",
        "shop.my_orders",
        "shop.order_page",
        "shop.product_page",
        "payments.webhook",
        "payments.webhook_no_slash",
    }
)
_SKIPPED = "limiter_skipped_endpoints"


@limiter.request_filter
def _skip_unlimited_endpoint() -> bool:
    return request.endpoint in current_app.extensions[_SKIPPED]


def init_limiter(app: Flask) -> None:
    """Bind the limiter (its limits are the per-view `@limiter.limit` decorators)."""
    limiter.init_app(app)
    # A default or application limit (RATELIMIT_DEFAULT, RATELIMIT_APPLICATION) applies to every view: then
    # none is skipped.
    site_wide = app.config.get(ConfigVars.DEFAULT_LIMITS) or app.config.get(ConfigVars.APPLICATION_LIMITS)
    app.extensions[_SKIPPED] = frozenset() if site_wide else UNLIMITED_ENDPOINTS
