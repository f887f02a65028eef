"""Rate limits: 429 with a friendly page on log-in, sign-up, password change and checkout; Redis holds the limit
across 4 gunicorn workers, while per-process memory:// storage lets several times the limit through."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shopapp import create_app
from shopapp.extensions import db as _db
from tests.logscan import scan_lines
from tests.security.conftest import page_token, report, row_count
from tests.support import free_port, redis_server, wait_until

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 5
WORKERS = 4
REQUESTS = 60


def test_limits_answer_429_with_a_friendly_page(make_world):
    world = make_world(
        RATELIMIT_ENABLED=True,
        LOGIN_RATE_LIMIT="3 per minute",
        SIGNUP_RATE_LIMIT="2 per minute",
        CHECKOUT_RATE_LIMIT="2 per minute",
    )
    anon, bob = world.app.test_client(), world.client_for("bob")
    # Limits count per client address: give each case its own, so the set-up's log-ins do not count.
    anon.environ_base["REMOTE_ADDR"] = "203.0.113.7"
    bob.environ_base["REMOTE_ADDR"] = "203.0.113.8"
    cases = {
        "log-in": (anon, "/account/login", {"email": "nobody@example.com", "password": "wrong-password"}, 3),
        "sign-up": (anon, "/account/signup", {"email": "new@example.com", "password": "short"}, 2),
        "checkout": (bob, "/checkout", {"qty-999999": "1"}, 2),
    }
    figures = []
    for name, (client, path, data, allowed) in cases.items():
        before = row_count()
        statuses = [client.post(path, data={**data, "csrf_token": page_token(client)}).status_code for _ in range(6)]
        # A refused Buy is a 303 back to the shop page (issue 15); refused forms answer 400.
        refused = 303 if name == "checkout" else 400
        assert statuses == [refused] * allowed + [429] * (6 - allowed), (name, statuses)
        assert row_count() == before
        limited = client.post(path, data=data)
        page = limited.get_data(as_text=True)
        assert limited.status_code == 429 and "Too many attempts" in page and "Traceback" not in page
        assert int(limited.headers["Retry-After"]) > 0
        figures.append(f"{name} {statuses.count(refused)} allowed then 429")
    # GET pages are not limited.
    assert all(anon.get("/account/login").status_code == 200 for _ in range(10))
    report("in-process limits: " + ", ".join(figures) + "; friendly page and Retry-After on every 429")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Host": "shop.test"}), timeout=2):
            return True
    except (OSError, urllib.error.HTTPError):
        return False


@contextmanager
def gunicorn(db_url: str, storage: str, log: Path) -> Iterator[str]:
    """The shop under gunicorn with 4 sync workers, production Argon2 cost, and the given limiter storage."""
    port = free_port()
    spec = (
        f'shopapp:create_app("testing", SQLALCHEMY_DATABASE_URI="{db_url}", RATELIMIT_ENABLED=True, '
        f'RATELIMIT_STORAGE_URI="{storage}", LOGIN_RATE_LIMIT="{LIMIT} per minute", '
        "ARGON2_TIME_COST=1, ARGON2_MEMORY_KIB=16384)"
    )
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--preload",
                "--graceful-timeout",
                "1",
                "-w",
                str(WORKERS),
                "-k",
                "sync",
                "--keep-alive",
                "0",
                "-b",
                f"127.0.0.1:{port}",
                spec,
            ],
            cwd=ROOT,
            stdout=out,
            stderr=out,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(base + "/account/login"), "gunicorn", 30)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)  # gunicorn's quick shutdown (SIGTERM waits out the graceful timeout)
        proc.wait(timeout=20)


def hammer(base: str) -> dict[int, int]:
    """REQUESTS failed log-ins from 8 concurrent clients; the count of each status."""

    def one(_: int) -> int:
        request = urllib.request.Request(
            base + "/account/login",
            data=b"email=nobody%40example.com&password=wrong-password",
            headers={"Host": "shop.test", "Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(one, range(REQUESTS)))
    return {code: statuses.count(code) for code in sorted(set(statuses))}


def test_redis_holds_the_limit_across_four_workers_and_memory_does_not(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'shop.db'}"
    setup = create_app("testing", SQLALCHEMY_DATABASE_URI=db_url)
    with setup.app_context():
        _db.create_all()
        _db.engine.dispose()
    log = tmp_path / "gunicorn.log"
    with redis_server(tmp_path) as redis_url, gunicorn(db_url, redis_url, log) as base:
        with_redis = hammer(base)
    with gunicorn(db_url, "memory://", log) as base:
        with_memory = hammer(base)

    allowed_redis, allowed_memory = with_redis.get(400, 0), with_memory.get(400, 0)
    assert set(with_redis) <= {400, 429} and set(with_memory) <= {400, 429}
    assert allowed_redis == LIMIT, with_redis
    assert allowed_memory > LIMIT, with_memory  # each worker counts on its own
    hits = scan_lines(log.read_text(errors="replace").splitlines())
    assert not hits, hits
    report(
        f"rate limit across {WORKERS} gunicorn workers, limit {LIMIT}/min, {REQUESTS} failed log-ins: "
        f"redis:// let {allowed_redis} through ({with_redis}); memory:// let {allowed_memory} through "
        f"({with_memory}); gunicorn log scan 0 hits"
    )


def test_a_default_limit_keeps_flask_limiters_own_check(tmp_path):
    """The app drops Flask-Limiter's before_request hook only while no default or application-wide limit
    exists (every limit here is a view decorator, which checks itself). Configure one and the hook stays,
    so the limit applies to every page. In a child process: the limiter object is process-wide, and a
    default limit set here would stay on every app the rest of the test run builds."""
    script = f"""
from shopapp import create_app
from shopapp.extensions import db
app = create_app("testing", RATELIMIT_ENABLED=True, RATELIMIT_DEFAULT="3 per minute",
                 SQLALCHEMY_DATABASE_URI="sqlite:///{tmp_path / "limits.db"}")
with app.app_context():
    db.create_all()
client = app.test_client()
print([client.get("/").status_code for _ in range(5)])
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[200, 200, 200, 429, 429]"


def test_behind_one_trusted_proxy_each_client_has_its_own_budget(make_world):
    """Issue 26, finding 1: every request arrives from the proxy's address; with TRUSTED_PROXY_HOPS=1 the
    limiter keys on the address the proxy appended to X-Forwarded-For, and a client's own (forged) entries
    to the left of it change nothing."""
    world = make_world(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="3 per minute", TRUSTED_PROXY_HOPS=1)

    def through_proxy(client_ip: str, forged: str | None = None) -> Any:
        client = world.app.test_client()
        client.environ_base["REMOTE_ADDR"] = "127.0.0.1"  # the proxy
        # What HAProxy's "option forwardfor" sends: the client's header (if any), then the real peer.
        client.environ_base["HTTP_X_FORWARDED_FOR"] = f"{forged}, {client_ip}" if forged else client_ip
        return client

    def attempts(client: Any, count: int) -> list[int]:
        data = {"email": "nobody@example.com", "password": "wrong-password"}
        return [
            client.post("/account/login", data={**data, "csrf_token": page_token(client)}).status_code
            for _ in range(count)
        ]

    attacker = through_proxy("198.51.100.1")
    assert attempts(attacker, 4) == [400, 400, 400, 429]
    # Another shopper behind the same proxy still has a full budget.
    assert attempts(through_proxy("198.51.100.2"), 3) == [400, 400, 400]
    # The attacker forging a fresh address on the left of the header gains nothing.
    assert attempts(through_proxy("198.51.100.1", forged="203.0.113.99"), 1) == [429]
    report("behind one trusted proxy: attacker 3 then 429, a second client 3 of 3, forged X-Forwarded-For 429")


def test_redis_down_without_the_fallback_is_a_503_to_retry(app_factory):
    """Issue 26, finding 7: with the in-memory fallback off, Redis down answered 500 on log-in."""
    app = app_factory(
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=False,
    )
    client = app.test_client()
    response = client.post("/account/login", data={"email": "a@example.com", "password": "wrong-password"})
    assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
    assert "try again" in response.get_data(as_text=True)
