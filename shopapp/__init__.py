"""The shop: create_app() wires extensions, blueprints, admin and CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter

from config import Config, get_config
from shopapp.extensions import csrf, db, init_limiter, login_manager, migrate

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


class RowIdConverter(IntegerConverter):
    """Flask's `<int:...>` bounded by the database's integer range: a larger id matches no route (404) instead of
    overflowing the query (a 500)."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        from shopapp.services.ids import DB_INT_MAX

        kwargs.setdefault("max", DB_INT_MAX)
        super().__init__(map, *args, **kwargs)


def create_app(config: str | type[Config] | None = None, **overrides: Any) -> Flask:
    """Build a shop application from a config name or class, with optional setting overrides."""
    app = Flask(__name__, instance_relative_config=True)
    app.url_map.converters["int"] = RowIdConverter  # before any route is added
    config_class = config if isinstance(config, type) else get_config(config)
    app.config.from_object(config_class)
    app.config.update(overrides)
    config_class.validate(app.config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    from shopapp import (
        admin,
        cli,
        database,
        error_reports,
        errors,
        gateway,
        i18n,
        logs,
        mailer,
        security,
        telemetry,
        templating,
    )
    from shopapp.auth import bp as auth_bp
    from shopapp.auth import two_factor
    from shopapp.ops import bp as ops_bp
    from shopapp.payments import bp as payments_bp
    from shopapp.shop import bp as shop_bp

    app.config.setdefault("SHOP_MIGRATIONS_DIR", MIGRATIONS_DIR)
    logs.init_logging(app)
    error_reports.init_error_reports(app)
    database.init_database(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    init_limiter(app)
    gateway.init_gateway(app)
    mailer.init_mailer(app)
    security.init_security(app)
    telemetry.init_telemetry(app)
    templating.init_templating(app)
    i18n.init_i18n(app)

    app.register_blueprint(auth_bp)
    app.register_blueprint(shop_bp)
    app.register_blueprint(payments_bp)
    app.register_blueprint(ops_bp)
    admin.init_admin(app)
    two_factor.guard_staff_pages(app)
    errors.init_error_handlers(app)
    cli.init_cli(app)
    return app
