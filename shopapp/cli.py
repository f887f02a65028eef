"""flask CLI commands: thin wrappers over the services."""

from __future__ import annotations

import signal
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from shopapp import devmail
from shopapp.gateway import GatewayError
from shopapp.services import (
    accounts,
    audit,
    backups,
    bulk_seed,
    catalog,
    demo_art,
    disputes,
    outbox,
    reconcile,
    staff,
    stall,
    stock,
    webhook_endpoints,
    webhooks,
)


@click.command("seed")
@click.option("--orders", type=click.IntRange(min=0), default=0, help="Also bulk-insert this many orders.")
@click.option(
    "--shoppers",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="New shoppers the bulk orders are spread over.",
)
@click.option("--items-per-order", type=click.IntRange(min=1, max=20), default=3, show_default=True)
@click.option(
    "--password",
    default="bulk-shopper-password",
    show_default=True,
    help="Password of every bulk shopper (demo data only).",
)
def seed_command(orders: int, shoppers: int, items_per_order: int, password: str) -> None:
    """Create the three demo products (running it again changes nothing); --orders N adds bulk demo orders."""
    created = catalog.seed_demo_products()
    click.echo(f"Seeded demo products: {created} created, {len(catalog.DEMO_PRODUCTS) - created} already present.")
    config = current_app.config
    drawn = demo_art.add_missing_pictures(
        folder=Path(config["UPLOAD_FOLDER"]),
        max_bytes=config["PICTURE_MAX_BYTES"],
        max_pixels=config["PICTURE_MAX_PIXELS"],
    )
    if drawn:
        click.echo(f"Drew pictures for {drawn} demo product(s).")
    if orders:
        try:
            result = bulk_seed.seed_bulk(orders, shoppers=shoppers, password=password, items_per_order=items_per_order)
        except accounts.AccountError as error:
            raise click.ClickException(str(error)) from error
        click.echo(f"Bulk-seeded {result.orders} orders with {result.items} items for {result.shoppers} new shoppers.")
        shoppers_range = bulk_seed.bulk_shopper_range()
        if shoppers_range is not None:
            first, last, count = shoppers_range
            click.echo(f"Demo shopper log-ins ({count}): {first} ... {last}, each with password {password}")


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
    if not current_app.config.get("DEMO_STAFF_ALLOWED"):
        raise click.ClickException(
            "demo-staff is refused in production (its log-in is published in this repository); "
            "create a real staff account with: flask create-staff EMAIL"
        )
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


payments_cli = AppGroup(
    "payments", help="Reconcile and audit against Stripe, replay stored events (safe to run from cron)."
)


class AgeType(click.ParamType):
    """An age like 90s, 15m, 2h or 1d."""

    name = "age"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return reconcile.parse_age(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


@payments_cli.command("reconcile")
@click.option(
    "--older-than",
    type=AgeType(),
    default="15m",
    show_default=True,
    help="Only PENDING orders created at least this long ago (90s, 15m, 2h, 1d).",
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=500, show_default=True, help="At most this many.")
def reconcile_command(older_than: timedelta, limit: int) -> None:
    """Ask Stripe about stale PENDING orders and finalize or expire them; exit 1 if Stripe could not answer."""
    summary = reconcile.reconcile_pending(older_than, limit=limit)
    click.echo(summary.line())
    _check_stall()
    click.echo(outbox.send_pending().line())  # receipts of the orders just finalized, and any earlier backlog
    if summary.errors:
        sys.exit(1)


def _check_stall() -> None:
    """Print the stall, if any (its alert is queued once per stall; see services/stall.py)."""
    found = stall.check_stall(int(current_app.config["STALL_ALERT_HOURS"]))
    if found is not None:
        click.echo(found.line())


@payments_cli.command("audit")
@click.option(
    "--days",
    type=click.IntRange(0, 90),
    default=1,
    show_default=True,
    help="Audit today so far and this many whole UTC days before it.",
)
def audit_command(days: int) -> None:
    """Compare the shop's books with Stripe's balance transactions per UTC day and currency, process the events
    Stripe failed to deliver (last 30 days), check for a checkout stall. Exit 0: the books match; 1: they did
    not (each difference is listed); 2: Stripe could not be reached."""
    report = audit.run_audit(days)
    start, end = report.window_start, report.window_end
    click.echo(f"Audit of {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC ({report.list_calls} list call(s)).")
    _check_stall()
    click.echo(outbox.send_pending().line())
    if report.unreachable is not None:
        click.echo(f"Stripe could not be reached: {report.unreachable}", err=True)
        sys.exit(2)
    for line in report.totals:
        click.echo(line.text())
    for event in report.events:
        done = f"already {event['outcome']}" if event["already"] else f"processed: {event['outcome']}"
        click.echo(f"Undelivered event {event['id']} ({event['type']}) {done}")
    for difference in report.found:
        click.echo(difference.text())
    if report.found and not report.remaining:
        click.echo("Every difference was healed by the undelivered events; the books match Stripe now.")
    elif not report.found:
        click.echo("Books match Stripe.")
    sys.exit(report.exit_code)


@payments_cli.command("dispute-reminders")
def dispute_reminders_command() -> None:
    """Tell staff (once per dispute) of open disputes whose evidence is due within 3 days and not submitted."""
    queued = disputes.send_due_reminders()
    click.echo(f"dispute reminders queued: {queued}")


@payments_cli.command("replay")
@click.argument("event_ids", nargs=-1)
@click.option("--failed", is_flag=True, help="Replay every stored event whose processing failed.")
def replay_command(event_ids: tuple[str, ...], failed: bool) -> None:
    """Re-run stored Stripe events by id (or --failed); exit 1 if any still fails or is unknown."""
    if not event_ids and not failed:
        raise click.UsageError("Give event ids (evt_...) or --failed.")
    ids = list(event_ids) + (webhooks.failed_event_ids() if failed else [])
    summary = staff.replay(ids)
    click.echo(summary.line())
    if summary.problems:
        sys.exit(1)


stripe_cli = AppGroup("stripe", help="Set up the shop's side of the Stripe account.")


@stripe_cli.command("webhook-endpoint")
@click.argument("url")
@click.option(
    "--new-secret", is_flag=True, help="Replace the endpoint (Stripe shows a signing secret only when one is created)."
)
def webhook_endpoint_command(url: str, new_secret: bool) -> None:
    """Create or update the webhook endpoint for URL with the events the shop handles, at the SDK's API version.

    Prints the signing secret when the endpoint is created, as a STRIPE_WEBHOOK_SECRET=... line.
    """
    try:
        setup = webhook_endpoints.register_webhook_endpoint(url, new_secret=new_secret)
    except GatewayError as error:
        raise click.ClickException(f"Stripe did not register the endpoint: {error}") from error
    click.echo(f"Webhook endpoint {setup.endpoint_id} for {setup.url}: {setup.action.value}.")
    click.echo(f"API version: {setup.api_version}")
    click.echo(f"Events ({len(setup.event_types)}): {', '.join(setup.event_types)}")
    if setup.secret is not None:
        click.echo("Signing secret (shown once by Stripe; configure it as the shop's webhook secret):")
        click.echo(f"STRIPE_WEBHOOK_SECRET={setup.secret}")
    else:
        click.echo("Signing secret unchanged (Stripe shows it only on creation; --new-secret replaces the endpoint).")


mail_cli = AppGroup("mail", help="The mail outbox, and the development mailbox (instance/mail/).")


@mail_cli.command("send-pending")
@click.option("--limit", type=click.IntRange(1, 100_000), default=500, show_default=True)
def send_pending_command(limit: int) -> None:
    """Send queued emails whose time has come (safe to run from cron, beside the worker and the web workers).

    Exits 0 when the pass ran, counting messages refused for good (shown to staff, and printed here): one bad
    row is the row's problem, not the job's, so cron does not alarm for ever on one address. Exits non-zero
    only when the pass itself could not run (e.g. the database is down)."""
    summary = outbox.send_pending(limit=limit)
    click.echo(summary.line())
    for error in summary.errors:
        click.echo(f"  failed: {error}")


@mail_cli.command("worker")
@click.option("--poll", type=click.FloatRange(0.05, 600), default=None, help="Seconds between looks when idle.")
@click.option("--max-passes", type=click.IntRange(1), default=None, help="Stop after this many passes (tests).")
def mail_worker_command(poll: float | None, max_passes: int | None) -> None:
    """The sender process: send due mail, then look again every --poll seconds (MAIL_WORKER_POLL_SECONDS) while
    the outbox is empty; stops cleanly on SIGTERM or SIGINT. Run one or more beside gunicorn (each row is
    claimed before it is sent); `flask mail send-pending` from cron is the fallback."""
    interval = poll if poll is not None else float(current_app.config["MAIL_WORKER_POLL_SECONDS"])
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    click.echo(f"Mail worker: sending due mail, looking every {interval:g} s when idle.")
    outbox.run_sender(stop, interval, max_passes=max_passes, report=click.echo)


def _mailbox() -> list[devmail.StoredMail]:
    return devmail.read_folder(current_app.config["MAIL_DEV_DIR"])


@mail_cli.command("list")
def mail_list_command() -> None:
    """Messages the development SMTP server received, oldest first: ID, recipient, subject."""
    mails = _mailbox()
    if not mails:
        click.echo(f"No mail in {current_app.config['MAIL_DEV_DIR']}.")
    for stored in mails:
        click.echo(f"{stored.id}  {stored.to}  {stored.subject}")


@mail_cli.command("show")
@click.argument("mail_id")
def mail_show_command(mail_id: str) -> None:
    """Print one received message's headers and plain text (MAIL_ID from `flask mail list`, or "last")."""
    mails = _mailbox()
    chosen = mails[-1:] if mail_id == "last" else [m for m in mails if m.id == mail_id]
    if not chosen:
        raise click.ClickException(f"No message {mail_id!r} in {current_app.config['MAIL_DEV_DIR']}.")
    stored = chosen[0]
    for header in ("Message-ID", "Date", "From", "To", "Subject"):
        click.echo(f"{header}: {stored.message[header]}")
    click.echo("")
    click.echo(stored.text())


def init_cli(app: Flask) -> None:
    """Register the commands on the app."""
    app.cli.add_command(seed_command)
    app.cli.add_command(create_staff_command)
    app.cli.add_command(demo_staff_command)
    app.cli.add_command(stock_group)
    app.cli.add_command(payments_cli)
    app.cli.add_command(stripe_cli)
    app.cli.add_command(mail_cli)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def backup_command(path: Path) -> None:
    """Write one archive: the database (SQLite backup API / pg_dump custom format), pictures, Stripe service state."""
    started = time.perf_counter()
    try:
        manifest = backups.create_backup(
            path,
            current_app.config["SQLALCHEMY_DATABASE_URI"],
            Path(current_app.config["UPLOAD_FOLDER"]),
            _emulator_state(),
        )
    except backups.BackupError as error:
        raise click.ClickException(str(error)) from error
    rows = sum(manifest["rows"].values())
    click.echo(
        f"Backup written to {path} in {time.perf_counter() - started:.2f} s: {manifest['database']}, {rows} rows, "
        f"{len(manifest['files'])} files."
    )


@click.command("restore")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Restore into a scratch database and verify it; change nothing.")
def restore_command(path: Path, check: bool) -> None:
    """Restore a `flask backup` archive: --check proves it restores; without it, into an empty database."""
    config = current_app.config
    try:
        if check:
            report = backups.check_backup(path, config["SQLALCHEMY_DATABASE_URI"], config["SHOP_MIGRATIONS_DIR"])
            click.echo(backups.describe(report), nl=False)
            if report.problems:
                sys.exit(1)
            return
        manifest = backups.restore_backup(
            path, config["SQLALCHEMY_DATABASE_URI"], Path(config["UPLOAD_FOLDER"]), _emulator_state()
        )
    except backups.BackupError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Restored {path} ({manifest['created_at']}); now run: flask db upgrade")


def _emulator_state() -> Path | None:
    state = current_app.config.get("STRIPE_EMULATOR_STATE")
    return Path(state) if state else None
