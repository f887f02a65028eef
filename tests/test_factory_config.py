"""The application factory and the config classes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config import DEFAULT_SECRET_KEY, DevelopmentConfig, ProductionConfig, TestingConfig, get_config
from shopapp import create_app

ROOT = Path(__file__).resolve().parents[1]

SAFE = {
    "SECRET_KEY": "9f2c4e7a1b8d3f60e5a7c2b9d4f1e8a3c6b0d5f2e9a4c7b1",
    "STRIPE_SECRET_KEY": "sk_live_51AbCdEfGhIjKlMnOp",
    "STRIPE_WEBHOOK_SECRET": "whsec_123",
    "SQLALCHEMY_DATABASE_URI": "sqlite://",
    "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
    "SHOP_BASE_URL": "https://shop.example.com",
}


def test_testing_config_is_used(app):
    assert app.testing and app.config["SECRET_KEY"] == TestingConfig.SECRET_KEY


def test_factory_registers_blueprints_admin_and_cli(app):
    assert {"auth", "shop", "payments", "admin"} <= set(app.blueprints)
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert {
        "shop.index",
        "shop.buy",
        "auth.login",
        "auth.signup",
        "auth.logout",
        "payments.success",
        "payments.webhook",
    } <= endpoints
    assert {"seed", "create-staff", "demo-staff"} <= set(app.cli.commands)


def test_factory_can_build_many_apps_in_one_process():
    first = create_app("testing", SQLALCHEMY_DATABASE_URI="sqlite://")
    second = create_app("testing", SQLALCHEMY_DATABASE_URI="sqlite://")
    assert first is not second and "admin" in second.blueprints


def test_get_config_names_and_unknown():
    assert get_config("development") is DevelopmentConfig
    assert get_config("production") is ProductionConfig
    with pytest.raises(RuntimeError, match="Unknown SHOP_CONFIG"):
        get_config("preproduction")


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
        # Issue 17, finding 2: each unsafe setting is refused by name, with its fix.
        ({"STRIPE_API_BASE": "http://127.0.0.1:12111"}, "STRIPE_API_BASE points at .* unset it"),
        ({"STRIPE_API_BASE": "https://api.stripe.com.evil.example"}, "STRIPE_API_BASE"),
        ({"STRIPE_API_BASE": "http://api.stripe.com"}, "STRIPE_API_BASE"),
        ({"STRIPE_SECRET_KEY": "sk_test_emulated"}, "STRIPE_SECRET_KEY must be a live key"),
        ({"STRIPE_SECRET_KEY": "sk_test_local_emulator"}, "STRIPE_SECRET_KEY must be a live key"),
        ({"STRIPE_SECRET_KEY": "sk_test_concurrency_proofs"}, "STRIPE_SECRET_KEY"),
        ({"STRIPE_WEBHOOK_SECRET": "whsec_testing"}, "STRIPE_WEBHOOK_SECRET"),
        ({"SECRET_KEY": "a"}, "SECRET_KEY is too short"),
        ({"SECRET_KEY": "ab" * 32}, "SECRET_KEY is too short or too regular"),
        ({"SECRET_KEY": TestingConfig.SECRET_KEY}, "SECRET_KEY is unset or a key published"),
        ({"RATELIMIT_STORAGE_URI": "memory://"}, "RATELIMIT_STORAGE_URI is 'memory://'.*redis://"),
        ({"RATELIMIT_ENABLED": False}, "RATELIMIT_ENABLED"),
        # Issue 26, finding 6: links, mail credentials, the debugger, the limiter's fallback.
        ({"SHOP_BASE_URL": ""}, "SHOP_BASE_URL is unset.*SHOP_BASE_URL=https://"),
        ({"SHOP_BASE_URL": "http://shop.example.com"}, "SHOP_BASE_URL is 'http://shop.example.com'.*https"),
        ({"SHOP_BASE_URL": "https://"}, "SHOP_BASE_URL"),
        (
            {"MAIL_USERNAME": "shop", "MAIL_PASSWORD": "pw"},
            "MAIL_USERNAME/MAIL_PASSWORD are set without TLS.*MAIL_USE_TLS=1",
        ),
        ({"FLASK_DEBUG_ENV": True}, "FLASK_DEBUG must be off.*unset FLASK_DEBUG"),
        ({"RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": False}, "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED is off"),
    ],
)
def test_production_refuses_unsafe_settings(override, message):
    with pytest.raises(RuntimeError, match=message):
        create_app("production", **{**SAFE, **override})


def test_production_names_every_problem_at_once():
    with pytest.raises(RuntimeError) as refused:
        create_app(
            "production",
            SQLALCHEMY_DATABASE_URI="sqlite://",
            SECRET_KEY="a",
            STRIPE_SECRET_KEY="sk_test_x",
            STRIPE_WEBHOOK_SECRET="whsec_x",
            STRIPE_API_BASE="http://127.0.0.1:1",
        )
    message = str(refused.value)
    for setting in ("SECRET_KEY", "STRIPE_SECRET_KEY", "STRIPE_API_BASE", "RATELIMIT_STORAGE_URI"):
        assert setting in message


def test_staging_takes_test_keys_and_the_local_service_but_never_a_live_key():
    rehearsal = {
        **SAFE,
        "STRIPE_SECRET_KEY": "sk_test_x",
        "STRIPE_API_BASE": "http://127.0.0.1:1",
        "RATELIMIT_STORAGE_URI": "memory://",
    }
    assert create_app("staging", **rehearsal).config["SESSION_COOKIE_SECURE"]
    with pytest.raises(RuntimeError, match="live key"):
        create_app("staging", **{**rehearsal, "STRIPE_SECRET_KEY": "sk_live_x"})
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app("staging", **{**rehearsal, "SECRET_KEY": "a"})


def test_demo_staff_is_refused_in_production():
    app = create_app("production", **SAFE)
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["demo-staff"])
    assert result.exit_code != 0
    assert "refused in production" in result.output and "flask create-staff" in result.output


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


def test_smtp_credentials_over_tls_are_accepted_in_production():
    for tls in ({"MAIL_USE_TLS": True}, {"MAIL_USE_SSL": True}):
        create_app("production", **{**SAFE, "MAIL_USERNAME": "shop", "MAIL_PASSWORD": "pw", **tls})


def _shell(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SHOP_", "FLASK_", "SECRET_KEY", "STRIPE_"))}
    return subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def test_without_shop_config_the_app_is_production_and_refuses_unsafe_defaults():
    """Issue 26, finding 6: SHOP_CONFIG unset used to mean DevelopmentConfig (debug on, cookies not Secure)."""
    result = _shell({}, "-c", "from wsgi import app")
    assert result.returncode != 0
    assert "Refusing to start in production" in result.stderr and "SHOP_BASE_URL is unset" in result.stderr
    asked = _shell({"SHOP_CONFIG": "development"}, "-c", "from wsgi import app; print(app.debug)")
    assert asked.returncode == 0, asked.stderr


def test_flask_run_with_flask_debug_is_refused_in_production():
    """`flask run` turns the Werkzeug debugger on from FLASK_DEBUG after the app is built: refused up front."""
    env = {
        "SHOP_CONFIG": "production",
        "FLASK_DEBUG": "1",
        "SECRET_KEY": SAFE["SECRET_KEY"],
        "STRIPE_SECRET_KEY": SAFE["STRIPE_SECRET_KEY"],
        "STRIPE_WEBHOOK_SECRET": SAFE["STRIPE_WEBHOOK_SECRET"],
        "RATELIMIT_STORAGE_URI": SAFE["RATELIMIT_STORAGE_URI"],
        "SHOP_BASE_URL": SAFE["SHOP_BASE_URL"],
        "DATABASE_URL": "sqlite://",
    }
    result = _shell(env, "-m", "flask", "--app", "wsgi", "run", "--port", "1")
    assert result.returncode != 0
    assert "FLASK_DEBUG must be off" in result.stderr and "unset FLASK_DEBUG" in result.stderr
