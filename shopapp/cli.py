"""flask CLI commands: thin wrappers over the services."""

from __future__ import annotations

import click
from flask import Flask, current_app

from shopapp.services import accounts, catalog, stock


@click.command("seed")
def seed_command() -> None:
    """Create the three demo products (running it again changes nothing)."""
    created = catalog.seed_demo_products()
    click.echo(f"Seeded demo products: {created} created, {len(catalog.DEMO_PRODUCTS) - created} already present.")


@click.command("create-staff")
@click.argument("email")
@click.option("--password", help="Password (prompted for when omitted and the account is new).")
def create_staff_command(email: str, password: str | None) -> None:
    """Create a staff account, or promote an existing one."""
    if password is None and accounts.find_user_by_email(email) is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user, created = accounts.create_or_promote_staff(email, password)
    except accounts.AccountError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"{'Created' if created else 'Promoted'} staff account {user.email}.")


@click.command("demo-staff")
def demo_staff_command() -> None:
    """Development only: make sure the demo staff account exists and print its log-in."""
    email = current_app.config["DEMO_STAFF_EMAIL"]
    password = current_app.config["DEMO_STAFF_PASSWORD"]
    if accounts.authenticate(email, password) is None:
        accounts.create_or_promote_staff(email, password)
    click.echo(f"Demo staff log-in: {email} / {password}")


@click.group("stock")
def stock_group() -> None:
    """Limited stock: restock, count, and refunds for late payments whose stock was gone."""


@stock_group.command("restock")
@click.argument("product_id", type=int)
@click.argument("units", type=int)
def restock_command(product_id: int, units: int) -> None:
    """Add UNITS to a limited product's available stock."""
    try:
        level = stock.restock(product_id, units)
    except stock.StockError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"{level.name}: {level.stock} available, {level.reserved} held by open checkouts.")


@stock_group.command("send-refunds")
def send_refunds_command() -> None:
    """Send queued out-of-stock refunds that could not reach Stripe yet (safe to repeat, e.g. from cron)."""
    sent = stock.send_shortfall_refunds()
    click.echo(f"Out-of-stock refunds sent: {sent}.")


def init_cli(app: Flask) -> None:
    """Register the commands on the app."""
    app.cli.add_command(seed_command)
    app.cli.add_command(create_staff_command)
    app.cli.add_command(demo_staff_command)
    app.cli.add_command(stock_group)
