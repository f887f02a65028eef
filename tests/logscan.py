"""Whole-run log scan: every log record of the test session goes to a file, checked for secrets at the end.

tests/conftest.py imports the session fixture and the summary hook from here, so the scan covers every
test in the run (and each xdist worker's share). Any hit fails the run.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from config import DEFAULT_SECRET_KEY, Config, TestingConfig

# Values that must never reach a log line; tests add the passwords and cookies they use (remember_secret).
_SECRETS: set[str] = {
    "correct horse battery",  # tests/conftest.py PASSWORD
    str(TestingConfig.SECRET_KEY),
    str(TestingConfig.STRIPE_SECRET_KEY),
    str(TestingConfig.STRIPE_WEBHOOK_SECRET),
    DEFAULT_SECRET_KEY,
    str(Config.DEMO_STAFF_PASSWORD),
}
PATTERNS = {
    # 13-19 digits, optionally grouped by single spaces or dashes: anything that could be a card number.
    "card-like digit run": re.compile(r"(?<![\d.])(?:\d[ -]?){12,18}\d(?![\d.])"),
    "stripe secret key": re.compile(r"\b[sr]k_(?:test|live)_[A-Za-z0-9]{3,}"),
    "webhook secret": re.compile(r"\bwhsec_[A-Za-z0-9]{3,}"),
    # itsdangerous-signed Flask session cookie (".eJ..." when compressed) and Flask-Login's remember cookie.
    "session cookie": re.compile(r"\.?e[yJ][A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{16,}"),
    "remember cookie": re.compile(r"[A-Za-z0-9_-]{16,}\|[0-9a-f]{64,}"),
    "cookie header value": re.compile(r"\b(?:session|remember_token)=(?!\*\*\*)[^\s;]{8,}"),
    # A password reset link's signed token (shopapp/logs.py masks it as /reset/***).
    "reset token": re.compile(r"/reset/(?!\*\*\*)[A-Za-z0-9_.-]{20,}"),
    "password field": re.compile(r"\b(?:password|new_password|current_password)=(?!\*\*\*)[^\s&]+", re.I),
}

_state: dict[str, object] = {"records": 0, "hits": []}


def remember_secret(value: str) -> None:
    """Add a secret (a password, a cookie value) the final scan must not find; short values are ignored."""
    if value and len(value) >= 8:
        _SECRETS.add(value)


def scan_lines(lines: Iterable[str]) -> list[str]:
    """The lines (with the reason) that contain a known secret or a secret-looking pattern."""
    hits = []
    for line in lines:
        reasons = [name for name, pattern in PATTERNS.items() if pattern.search(line)]
        reasons += ["known secret" for secret in _SECRETS if secret in line]
        if reasons:
            hits.append(f"{', '.join(sorted(set(reasons)))}: {line[:300]}")
    return hits


class _FileHandler(logging.Handler):
    """Writes each record, traceback included, as one escaped line."""

    def __init__(self, path: Path) -> None:
        super().__init__(logging.DEBUG)
        self._file = path.open("a", encoding="utf-8")
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self._file.write(self.format(record).replace("\n", "\\n") + "\n")
        self._file.flush()
        _state["records"] = int(_state["records"]) + 1  # type: ignore[call-overload]

    def close(self) -> None:
        self._file.close()
        super().close()


@pytest.fixture(scope="session", autouse=True)
def log_scan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Capture every log record of the run; at the end, fail the run if any contains a secret."""
    path = tmp_path_factory.mktemp("logscan") / "all-records.log"
    handler = _FileHandler(path)
    root = logging.getLogger()
    root.addHandler(handler)
    yield path
    root.removeHandler(handler)
    handler.close()
    hits = scan_lines(path.read_text(encoding="utf-8").splitlines())
    _state["hits"] = hits
    if hits:
        pytest.fail(f"log scan: {len(hits)} log lines contain secrets or card-like numbers:\n" + "\n".join(hits[:20]))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the scan's counts at the end of the run."""
    records = int(_state["records"])  # type: ignore[call-overload]
    if records:
        hits = _state["hits"]
        terminalreporter.write_line(
            f"[security] log scan: {records} log records captured over the run, "
            f"{len(hits)} hits (secrets, cookies, card-like digit runs)"  # type: ignore[arg-type]
        )
