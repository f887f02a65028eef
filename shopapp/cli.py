"""flask CLI commands: thin wrappers over the services."""

from __future__ import annotations

import click
from flask import Flask, current_app

from shopapp.services import accounts, catalog


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


def init_cli(app: Flask) -> None:
    """Register the commands on the app."""
    app.cli.add_command(seed_command)
    app.cli.add_command(create_staff_command)
    app.cli.add_command(demo_staff_command)
