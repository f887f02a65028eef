"""The application factory and the config classes."""

from __future__ import annotations

import pytest

from config import DEFAULT_SECRET_KEY, DevelopmentConfig, ProductionConfig, TestingConfig, get_config
from shopapp import create_app

SAFE = {
    "SECRET_KEY": "a-long-random-production-secret-value",
    "STRIPE_SECRET_KEY": "sk_test_123",
    "STRIPE_WEBHOOK_SECRET": "whsec_123",
    "SQLALCHEMY_DATABASE_URI": "sqlite://",
}


def test_testing_config_is_used(app):
    assert app.testing and app.config["SECRET_KEY"] == TestingConfig.SECRET_KEY


def test_factory_registers_blueprints_admin_and_cli(app):
    assert {"auth", "shop", "payments", "admin"} <= set(app.blueprints)
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert {"shop.index", "shop.buy", "auth.login", "auth.signup", "auth.logout", "payments.success",
            "payments.webhook"} <= endpoints
    assert {"seed", "create-staff", "demo-staff"} <= set(app.cli.commands)


def test_factory_can_build_many_apps_in_one_process():
    first = create_app("testing", SQLALCHEMY_DATABASE_URI="sqlite://")
    second = create_app("testing", SQLALCHEMY_DATABASE_URI="sqlite://")
    assert first is not second and "admin" in second.blueprints


def test_get_config_names_and_unknown():
    assert get_config("development") is DevelopmentConfig
    assert get_config("production") is ProductionConfig
    with pytest.raises(RuntimeError, match="Unknown SHOP_CONFIG"):
        get_config("staging")


def test_production_starts_with_safe_settings():
    app = create_app("production", **SAFE)
    assert app.config["SESSION_COOKIE_SECURE"] and not app.debug


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"SECRET_KEY": DEFAULT_SECRET_KEY}, "SECRET_KEY"),
        ({"SECRET_KEY": ""}, "SECRET_KEY"),
        ({"DEBUG": True}, "DEBUG"),
        ({"STRIPE_WEBHOOK_SECRET": None}, "STRIPE_WEBHOOK_SECRET"),
        ({"STRIPE_SECRET_KEY": None}, "STRIPE_SECRET_KEY"),
    ],
)
def test_production_refuses_unsafe_settings(override, message):
    with pytest.raises(RuntimeError, match=message):
        create_app("production", **{**SAFE, **override})


def test_error_pages_use_the_layout_and_never_a_traceback(client, app):
    for path, method, status in [("/nope", "get", 404), ("/checkout", "get", 405), ("/account/logout", "get", 405)]:
        response = getattr(client, method)(path)
        assert response.status_code == status
        text = response.get_data(as_text=True)
        assert "Back to the shop" in text and "Traceback" not in text and app.config["SHOP_NAME"] in text


def test_unexpected_error_renders_500_page(app_factory):
    app = app_factory()

    @app.get("/boom")
    def boom():
        raise RuntimeError("kaboom")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    text = response.get_data(as_text=True)
    assert "Something went wrong" in text and "kaboom" not in text
