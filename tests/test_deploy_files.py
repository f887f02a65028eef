"""The repository's deployment files (deploy/) pass their own tools' checks, and keep the settings issue 26 relies
on. tests/concurrency/test_two_nodes.py serves these very files (HAProxy reads its addresses from the environment)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
HAPROXY_ENV = {"SHOP_FRONTEND_BIND": "127.0.0.1:8080", "SHOP_NODE1": "127.0.0.1:8001", "SHOP_NODE2": "127.0.0.1:8002"}


def _haproxy() -> str:
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
    assert found, "haproxy is not installed (scripts/test.sh installs it)"
    return found


def test_haproxy_config_is_valid_with_the_documented_variables():
    result = subprocess.run(
        [_haproxy(), "-c", "-f", str(DEPLOY / "haproxy.cfg")],
        env={**os.environ, **HAPROXY_ENV},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configuration file is valid" in result.stdout + result.stderr


def test_haproxy_config_refuses_to_start_without_its_node_addresses():
    result = subprocess.run(
        [_haproxy(), "-c", "-f", str(DEPLOY / "haproxy.cfg")],
        env={k: v for k, v in os.environ.items() if not k.startswith("SHOP_")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0


@pytest.mark.parametrize(
    "directive",
    [
        r"^\s+option http-buffer-request$",  # whole bodies before a sync worker sees them
        r"^\s+timeout http-request \d+s$",  # slow headers and bodies are cut off
        r"^\s+http-request del-header X-Forwarded-For$",  # a client's own header is dropped ...
        r"^\s+option forwardfor$",  # ... and the real peer named: one trusted hop
        r"^\s+http-request set-header X-Forwarded-Proto https if \{ ssl_fc \}$",
        r"^\s+option httpchk$",
        r'^\s+http-check send meth GET uri "\$\{SHOP_HEALTH_PATH-/readyz\}"',  # nodes that are not ready get no traffic
        r"^\s+http-request set-header X-Request-ID %\[unique-id\]$",  # the proxy's id is the node's request id
        r"^\s+http-request deny deny_status 404 if \{ path_beg /metrics \}$",  # metrics not at the public entrance
        r"^\s+default-server check ",
    ],
)
def test_haproxy_config_keeps_what_the_deployment_relies_on(directive):
    assert re.search(directive, (DEPLOY / "haproxy.cfg").read_text(), re.M), directive


def test_gunicorn_config_is_valid_and_refuses_unsafe_production_settings():
    gunicorn = [sys.executable, "-m", "gunicorn", "--check-config", "-c", str(DEPLOY / "gunicorn.conf.py"), "wsgi:app"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SHOP_", "FLASK_", "SECRET_KEY", "STRIPE_"))}
    ok = subprocess.run(
        gunicorn, cwd=ROOT, env={**clean, "SHOP_CONFIG": "development"}, capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # preload_app: a production node with unsafe settings fails at start, naming them.
    refused = subprocess.run(gunicorn, cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "Refusing to start in production" in refused.stderr
