"""Flask extensions, created unbound; the application factory initialises them."""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
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


def init_limiter(app: Flask) -> None:
    """Bind the limiter, keeping only the checks this app uses: the per-view `@limiter.limit` decorators.

    Every limit here is such a decorator (login, signup, password, checkout), and a decorated view checks
    its own limits when it runs. Flask-Limiter's before_request hook adds only default, application-wide
    and blueprint limits, of which this app has none, yet resolving that empty set cost about 20 us on
    every request (a tenth of a duplicate webhook delivery). So the hook is removed, unless such a limit
    is configured (RATELIMIT_DEFAULT, RATELIMIT_APPLICATION, a limited blueprint), which keeps it.
    """
    limiter.init_app(app)
    manager = limiter.limit_manager
    if manager.default_limits or manager.application_limits or manager._blueprint_limits:
        return
    hooks = app.before_request_funcs.get(None, [])
    hooks[:] = [hook for hook in hooks if hook != limiter._check_request_limit]
