"""The restore drill of the README, on the database under test (SQLite, or PostgreSQL in the second pass)."""

from __future__ import annotations

import sqlite3
import tarfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from shopapp import create_app
from shopapp.extensions import db
from shopapp.services import backups
from tests.concurrency.harness import fresh_database

PICTURE = b"\x89PNG\r\n\x1a\n not really a picture, but bytes to carry"


def _state_file(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE objects (id TEXT PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO objects VALUES ('cs_test_1', '{}')")
    conn.commit()
    conn.close()


def test_restore_drill(app, runner, paid_order, stamped_at_head, tmp_path, capsys):
    order = paid_order()
    uploads = Path(app.config["UPLOAD_FOLDER"])
    uploads.mkdir(parents=True, exist_ok=True)
    (uploads / "ab12.png").write_bytes(PICTURE)
    _state_file(Path(app.config["STRIPE_EMULATOR_STATE"]))
    db.session.remove()
    archive = tmp_path / "backups" / "shop-2026-12-07.tar"

    started = time.perf_counter()
    made = runner.invoke(args=["backup", str(archive)])
    backup_seconds = time.perf_counter() - started
    assert made.exit_code == 0, made.output
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    kind = db.engine.dialect.name
    assert {"manifest.json", "uploads/ab12.png", "stripe-emulator.sqlite3"} <= names
    assert ("database.sqlite3" if kind == "sqlite" else "database.pgdump") in names
    assert runner.invoke(args=["backup", str(archive)]).exit_code != 0  # never overwrites a backup

    checked = runner.invoke(args=["restore", str(archive), "--check"])
    assert checked.exit_code == 0, checked.output
    assert checked.output.startswith("restore check OK")
    assert f"latest paid order #{order.id}: {order.total_cents} usd in 2 items" in checked.output

    # Real restore into a new, empty database, then read the paid order back.
    with fresh_database(tmp_path, "restored") as url:
        restored_uploads = tmp_path / "restored-uploads"
        target = create_app(
            "testing", SQLALCHEMY_DATABASE_URI=url, UPLOAD_FOLDER=str(restored_uploads), STRIPE_EMULATOR_STATE=None
        )
        with target.app_context():  # the CLI runs in the current app context: make it the target's
            result = target.test_cli_runner().invoke(args=["restore", str(archive)])
            again = target.test_cli_runner().invoke(args=["restore", str(archive)])
            db.engine.dispose()
        assert result.exit_code == 0, result.output
        engine = create_engine(url)
        with engine.connect() as conn:
            status, total = conn.execute(
                text("SELECT status, total_cents FROM orders WHERE id = :id"), {"id": order.id}
            ).one()
        engine.dispose()
        assert (status, total) == ("paid", order.total_cents)
        assert (restored_uploads / "ab12.png").read_bytes() == PICTURE
        assert again.exit_code != 0 and "not empty" in again.output
    with capsys.disabled():
        print(f"\nrestore drill on {kind}: backup {backup_seconds:.2f} s; {checked.output.splitlines()[0]}")


def test_a_damaged_backup_fails_the_check(app, runner, paid_order, stamped_at_head, tmp_path):
    paid_order()
    db.session.remove()
    archive = tmp_path / "shop.tar"
    assert runner.invoke(args=["backup", str(archive)]).exit_code == 0
    damaged = tmp_path / "damaged.tar"
    with tarfile.open(archive) as source, tarfile.open(damaged, "w") as target:
        for member in source.getmembers():
            data = source.extractfile(member).read()
            if member.name.startswith("database."):
                data = data[:-16] + b"\0" * 16
            target.addfile(member, __import__("io").BytesIO(data))
    result = runner.invoke(args=["restore", str(damaged), "--check"])
    assert result.exit_code != 0 and "is missing or damaged" in result.output


def test_a_backup_behind_the_migrations_fails_the_check(app, runner, paid_order, stamped_at_head, tmp_path):
    paid_order()
    stamped_at_head("0008_hardening")
    db.session.remove()
    archive = tmp_path / "old.tar"
    assert runner.invoke(args=["backup", str(archive)]).exit_code == 0
    result = runner.invoke(args=["restore", str(archive), "--check"])
    assert result.exit_code == 1 and "not at head" in result.output


def test_describe_names_each_table():
    report = backups.CheckReport(1.5, {"orders": 2, "users": 1}, "0012_operations", None, 0, False)
    assert "3 rows in 2 tables" in backups.describe(report)
