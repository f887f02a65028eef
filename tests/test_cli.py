"""flask CLI commands through the CLI runner."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from shopapp.models import Product, User
from shopapp.services import accounts
from tests.conftest import fresh


def test_seed_creates_three_demo_products_once(runner):
    first = runner.invoke(args=["seed"])
    assert first.exit_code == 0 and "3 created" in first.output
    second = runner.invoke(args=["seed"])
    assert second.exit_code == 0 and "0 created, 3 already present" in second.output
    rows = {p.name: (p.price_cents, p.currency, p.active) for p in fresh().scalars(select(Product))}
    assert rows == {
        "Product A": (1999, "usd", True),
        "Product B": (2999, "usd", True),
        "Product C": (3999, "usd", True),
    }
    assert all(p.description for p in fresh().scalars(select(Product)))


def test_create_staff_creates_with_option_password(runner):
    result = runner.invoke(args=["create-staff", "Boss@Example.com", "--password", "a good password"])
    assert result.exit_code == 0 and "Created staff account boss@example.com" in result.output
    assert accounts.authenticate("boss@example.com", "a good password").is_staff


def test_create_staff_prompts_for_password(runner):
    result = runner.invoke(args=["create-staff", "boss@example.com"], input="a good password\na good password\n")
    assert result.exit_code == 0, result.output
    assert accounts.authenticate("boss@example.com", "a good password") is not None


def test_create_staff_promotes_existing_user(runner, make_user):
    make_user("ann@example.com")
    result = runner.invoke(args=["create-staff", "ann@example.com"])
    assert result.exit_code == 0 and "Promoted staff account ann@example.com" in result.output
    assert fresh().scalar(select(User.is_staff).where(User.email == "ann@example.com")) is True
    assert fresh().scalar(select(func.count()).select_from(User)) == 1


def test_create_staff_refuses_short_password(runner):
    result = runner.invoke(args=["create-staff", "boss@example.com", "--password", "short"])
    assert result.exit_code != 0 and "at least 8 characters" in result.output
    assert fresh().scalar(select(func.count()).select_from(User)) == 0


def test_demo_staff_is_idempotent_and_prints_the_login(runner, app):
    for _ in range(2):
        result = runner.invoke(args=["demo-staff"])
        assert result.exit_code == 0
        assert f"{app.config['DEMO_STAFF_EMAIL']} / {app.config['DEMO_STAFF_PASSWORD']}" in result.output
    assert fresh().scalar(select(func.count()).select_from(User)) == 1


def test_seed_orders_prints_the_demo_shoppers_logins(runner):
    result = runner.invoke(args=["seed", "--orders", "6", "--shoppers", "3", "--password", "demo-shopper-pass"])
    assert result.exit_code == 0, result.output
    line = result.output.strip().splitlines()[-1]
    assert re.fullmatch(
        r"Demo shopper log-ins \(3\): bulk-shopper-\d+@example\.com \.\.\. bulk-shopper-\d+@example\.com, "
        r"each with password demo-shopper-pass",
        line,
    ), line
    first = re.search(r"(bulk-shopper-\d+@example\.com)", line).group(1)
    assert accounts.authenticate(first, "demo-shopper-pass") is not None
