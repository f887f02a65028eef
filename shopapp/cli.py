"""flask CLI commands: thin wrappers over the services."""

from __future__ import annotations

import click
from flask import Flask, current_app

from shopapp.services import accounts, bulk_seed, catalog


@click.command("seed")
@click.option("--orders", type=click.IntRange(min=0), default=0, help="Also bulk-insert this many orders.")
@click.option("--shoppers", type=click.IntRange(min=1), default=1000, show_default=True,
              help="New shoppers the bulk orders are spread over.")
@click.option("--items-per-order", type=click.IntRange(min=1, max=20), default=3, show_default=True)
@click.option("--password", default="bulk-shopper-password", show_default=True,
              help="Password of every bulk shopper (demo data only).")
def seed_command(orders: int, shoppers: int, items_per_order: int, password: str) -> None:
    """Create the three demo products (running it again changes nothing); --orders N adds bulk demo orders."""
    created = catalog.seed_demo_products()
    click.echo(f"Seeded demo products: {created} created, {len(catalog.DEMO_PRODUCTS) - created} already present.")
    if orders:
        try:
            result = bulk_seed.seed_bulk(orders, shoppers=shoppers, password=password, items_per_order=items_per_order)
        except accounts.AccountError as error:
            raise click.ClickException(str(error)) from error
        click.echo(f"Bulk-seeded {result.orders} orders with {result.items} items for {result.shoppers} new shoppers.")


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


def init_cli(app: Flask) -> None:
    """Register the commands on the app."""
    app.cli.add_command(seed_command)
    app.cli.add_command(create_staff_command)
    app.cli.add_command(demo_staff_command)
