"""Backups that restore: the database, the product pictures and the local Stripe service's state in one file.

`flask backup PATH` writes one tar archive:
- `database.sqlite3` (SQLite's online backup API: a consistent copy while the shop keeps writing), or
  `database.pgdump` (`pg_dump --format=custom`, taken in an exported snapshot so the row counts in the
  manifest are exactly those of the dump);
- `uploads/<sha256>.<ext>`: the picture folder;
- `stripe-emulator.sqlite3`: the local Stripe service's state file, when there is one (development);
- `manifest.json`: when, which database kind, the migration head, the row count of every table, the latest
  paid order (id, total, item count), and the SHA-256 of every other member.

`flask restore PATH --check` proves an archive restores: the members match their hashes, the database is
restored into a scratch database (a temporary file, or a new PostgreSQL database on the same server,
dropped afterwards), its migrations are at head, every table has the manifest's row count, and the latest
paid order reads back with its items. `flask restore PATH` restores for real, into an empty database only.
"""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import URL, Connection, Engine, make_url

from shopapp.services.operations import migration_heads

FORMAT = 1
SQLITE_MEMBER = "database.sqlite3"
PGDUMP_MEMBER = "database.pgdump"
EMULATOR_MEMBER = "stripe-emulator.sqlite3"
MANIFEST = "manifest.json"


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


@dataclass
class CheckReport:
    """What `restore --check` verified."""

    seconds: float
    rows: dict[str, int]
    migration: str
    latest_paid_order: dict[str, Any] | None
    pictures: int
    emulator_state: bool
    problems: list[str] = field(default_factory=list)

    @property
    def total_rows(self) -> int:
        """Rows in every table together."""
        return sum(self.rows.values())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _libpq_env(url: URL) -> dict[str, str]:
    """libpq's variables for url: the password travels in the environment, never on a command line."""
    env = {"PGDATABASE": url.database or "", "PGHOST": url.host or "127.0.0.1", "PGPORT": str(url.port or 5432)}
    if url.username:
        env["PGUSER"] = url.username
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return env


def _run(argv: list[str], env: dict[str, str]) -> None:
    """Run a PostgreSQL client tool (found on PATH) with exactly the given libpq variables."""
    program = shutil.which(argv[0])
    if program is None:
        raise BackupError(f"{argv[0]} is not installed (Debian: apt-get install postgresql-client)")
    result = subprocess.run(
        [program, *argv[1:]], env={**env, "LC_ALL": "C.UTF-8"}, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BackupError(f"{argv[0]} failed ({result.returncode}): {result.stderr.strip()[:500]}")


def _pg_restore_argv(url: URL, dump: Path) -> list[str]:
    """pg_restore into url's database (host, user and password come from the environment)."""
    return ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", f"--dbname={url.database}", str(dump)]


def _counts(conn: Connection) -> dict[str, int]:
    tables = sorted(inspect(conn).get_table_names())
    return {table: int(conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one()) for table in tables}


def _latest_paid_order(conn: Connection) -> dict[str, Any] | None:
    row = conn.execute(
        text(
            "SELECT o.id, o.total_cents, o.currency, o.status, "
            "(SELECT count(*) FROM order_items i WHERE i.order_id = o.id) AS item_count "
            "FROM orders o WHERE o.paid_at IS NOT NULL ORDER BY o.id DESC LIMIT 1"
        )
    ).first()
    if row is None:
        return None
    return {"id": row.id, "total_cents": row.total_cents, "currency": row.currency, "items": int(row.item_count)}


def _migration(conn: Connection) -> str:
    return ",".join(sorted(r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))))


def _sqlite_copy(source: Path, target: Path) -> None:
    """SQLite's online backup API: a consistent copy even while other processes write."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def create_backup(
    path: Path, database_url: str, upload_folder: Path, emulator_state: Path | None, now: datetime | None = None
) -> dict[str, Any]:
    """Write the archive at path (refused if it exists); returns its manifest."""
    if path.exists():
        raise BackupError(f"{path} exists; give a new file name (e.g. one with the date)")
    url = make_url(database_url)
    with tempfile.TemporaryDirectory(prefix="shop-backup-") as scratch:
        work = Path(scratch)
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "created_at": (now or datetime.now(UTC)).isoformat(),
            "database": url.get_backend_name(),
        }
        if url.get_backend_name() == "sqlite":
            if not url.database:
                raise BackupError("DATABASE_URL names an in-memory SQLite database: nothing to back up")
            _sqlite_copy(Path(url.database), work / SQLITE_MEMBER)
            engine = create_engine(f"sqlite:///{work / SQLITE_MEMBER}")
            with engine.connect() as conn:
                manifest.update(
                    rows=_counts(conn), migration=_migration(conn), latest_paid_order=_latest_paid_order(conn)
                )
            engine.dispose()
        elif url.get_backend_name() == "postgresql":
            engine = create_engine(url, isolation_level="REPEATABLE READ")
            with engine.connect() as conn:
                # The dump and the counts see one snapshot: pg_dump --snapshot joins this transaction's.
                snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                _run(
                    ["pg_dump", "--format=custom", f"--snapshot={snapshot}", "--file", str(work / PGDUMP_MEMBER)],
                    _libpq_env(url),
                )
                manifest.update(
                    rows=_counts(conn), migration=_migration(conn), latest_paid_order=_latest_paid_order(conn)
                )
                conn.rollback()
            engine.dispose()
        else:
            raise BackupError(f"cannot back up a {url.get_backend_name()} database")
        members = [SQLITE_MEMBER if (work / SQLITE_MEMBER).exists() else PGDUMP_MEMBER]
        if upload_folder.is_dir():
            (work / "uploads").mkdir()
            for picture in sorted(upload_folder.iterdir()):
                if picture.is_file():
                    shutil.copy2(picture, work / "uploads" / picture.name)
                    members.append(f"uploads/{picture.name}")
        if emulator_state is not None and emulator_state.is_file():
            _sqlite_copy(emulator_state, work / EMULATOR_MEMBER)
            members.append(EMULATOR_MEMBER)
        manifest["files"] = {name: _sha256(work / name) for name in members}
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        with tarfile.open(partial, "w") as archive:
            archive.add(work / MANIFEST, arcname=MANIFEST)
            for name in members:
                archive.add(work / name, arcname=name)
        partial.rename(path)  # a crash mid-write never leaves a file that looks like a backup
    return manifest


def _extract(path: Path, into: Path) -> dict[str, Any]:
    """Unpack the archive (regular files only, no path outside into) and check every hash."""
    if not path.is_file():
        raise BackupError(f"{path}: no such backup file")
    with tarfile.open(path, "r") as archive:
        archive.extractall(into, filter="data")
    manifest: dict[str, Any] = json.loads((into / MANIFEST).read_text())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path}: unknown backup format {manifest.get('format')!r}")
    for name, digest in manifest["files"].items():
        member = into / name
        if not member.is_file() or _sha256(member) != digest:
            raise BackupError(f"{path}: {name} is missing or damaged (its SHA-256 does not match the manifest)")
    return manifest


@contextmanager
def _scratch_database(manifest: dict[str, Any], work: Path, database_url: str) -> Iterator[Engine]:
    """The backup restored into a throwaway database; dropped on the way out."""
    if manifest["database"] == "sqlite":
        engine = create_engine(f"sqlite:///{work / SQLITE_MEMBER}")
        try:
            yield engine
        finally:
            engine.dispose()
        return
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise BackupError("a PostgreSQL backup is checked on a PostgreSQL server: set DATABASE_URL to one")
    scratch_name = f"restore_check_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{scratch_name}"'))
    scratch_url = url.set(database=scratch_name)
    engine = create_engine(scratch_url)
    try:
        _run(
            _pg_restore_argv(scratch_url, work / PGDUMP_MEMBER),
            _libpq_env(scratch_url),
        )
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch_name}" WITH (FORCE)'))
        admin.dispose()


def check_backup(path: Path, database_url: str, migrations_dir: Path) -> CheckReport:
    """Restore the archive into a scratch database and verify it; problems listed in the report."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="shop-restore-") as scratch:
        work = Path(scratch)
        manifest = _extract(path, work)
        problems: list[str] = []
        with _scratch_database(manifest, work, database_url) as engine, engine.connect() as conn:
            rows = _counts(conn)
            migration = _migration(conn)
            paid = _latest_paid_order(conn)
        heads = ",".join(sorted(migration_heads(migrations_dir)))
        if migration != heads:
            problems.append(
                f"migrations at {migration or 'none'}, not at head {heads}: run flask db upgrade after restoring"
            )
        if rows != manifest["rows"]:
            differing = sorted(t for t in set(rows) | set(manifest["rows"]) if rows.get(t) != manifest["rows"].get(t))
            problems.append(f"row counts differ from the manifest in {', '.join(differing)}")
        if paid != manifest["latest_paid_order"]:
            problems.append(f"latest paid order reads {paid}, the manifest says {manifest['latest_paid_order']}")
        if paid is not None and paid["items"] < 1:
            problems.append(f"paid order {paid['id']} has no items")
        emulator = work / EMULATOR_MEMBER
        if emulator.is_file():
            state = sqlite3.connect(emulator)
            try:
                if state.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                    problems.append("the local Stripe service's state file fails SQLite's integrity check")
            finally:
                state.close()
        pictures = sum(1 for name in manifest["files"] if name.startswith("uploads/"))
    return CheckReport(
        seconds=time.perf_counter() - started,
        rows=rows,
        migration=migration,
        latest_paid_order=paid,
        pictures=pictures,
        emulator_state=emulator.name in manifest["files"],
        problems=problems,
    )


def restore_backup(path: Path, database_url: str, upload_folder: Path, emulator_state: Path | None) -> dict[str, Any]:
    """Restore the archive into the configured database, which must be empty (no tables); pictures are
    copied into the upload folder, and the Stripe service's state only where none exists yet."""
    url = make_url(database_url)
    engine = create_engine(url)
    with engine.connect() as conn:
        existing = inspect(conn).get_table_names()
    engine.dispose()
    if existing:
        raise BackupError(
            "the configured database is not empty; restore into a new database (create it, point "
            "DATABASE_URL at it) and switch over once restore --check passes"
        )
    with tempfile.TemporaryDirectory(prefix="shop-restore-") as scratch:
        work = Path(scratch)
        manifest = _extract(path, work)
        if manifest["database"] != url.get_backend_name():
            raise BackupError(f"a {manifest['database']} backup cannot be restored into {url.get_backend_name()}")
        if manifest["database"] == "sqlite":
            _sqlite_copy(work / SQLITE_MEMBER, Path(str(url.database)))
        else:
            _run(_pg_restore_argv(url, work / PGDUMP_MEMBER), _libpq_env(url))
        if (work / "uploads").is_dir():
            upload_folder.mkdir(parents=True, exist_ok=True)
            for picture in (work / "uploads").iterdir():
                shutil.copy2(picture, upload_folder / picture.name)
        if emulator_state is not None and (work / EMULATOR_MEMBER).is_file() and not emulator_state.exists():
            shutil.copy2(work / EMULATOR_MEMBER, emulator_state)
    return manifest


def describe(report: CheckReport) -> str:
    """The check's result as the lines the command prints."""
    out = io.StringIO()
    verdict = "OK" if not report.problems else "FAILED"
    out.write(
        f"restore check {verdict} in {report.seconds:.2f} s: {report.total_rows} rows in {len(report.rows)} tables, "
    )
    out.write(f"migrations at {report.migration}, {report.pictures} pictures, ")
    out.write(f"Stripe service state {'included' if report.emulator_state else 'not included'}\n")
    for table, count in sorted(report.rows.items()):
        out.write(f"  {table}: {count}\n")
    if report.latest_paid_order:
        o = report.latest_paid_order
        out.write(f"  latest paid order #{o['id']}: {o['total_cents']} {o['currency']} in {o['items']} items\n")
    for problem in report.problems:
        out.write(f"  problem: {problem}\n")
    return out.getvalue()
