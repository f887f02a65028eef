"""Security headers on every response: every route and method, as anonymous, shopper and staff, errors included."""

from __future__ import annotations

import re

import pytest

from config import DEFAULT_SECRET_KEY, ProductionConfig, StagingConfig
from shopapp import create_app
from shopapp.extensions import db as _db
from shopapp.services import accounts
from stripe_emulator import EmulatorHTTPClient
from tests.conftest import PASSWORD, WEBHOOK_SECRET
from tests.security.conftest import csrf_token_from, fill_rule, report, routes

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)


def check_headers(response, *, hsts: bool) -> None:
    """Assert the policy headers on one response."""
    headers = response.headers
    csp = headers.get("Content-Security-Policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives.get("frame-ancestors") == ["'none'"], csp
    script_src = directives.get("script-src", directives.get("default-src"))
    assert script_src == ["'self'"], csp  # no 'unsafe-inline', no 'unsafe-eval', no wildcard
    assert directives.get("object-src") == ["'none'"], csp
    assert headers.get("X-Content-Type-Options") == "nosniff"
    assert headers.get("Referrer-Policy") == "strict-origin-when-cross-origin"
    assert headers.get("X-Frame-Options") == "DENY"
    if hsts:
        assert headers.get("Strict-Transport-Security", "").startswith("max-age=31536000")
    else:
        assert "Strict-Transport-Security" not in headers


def test_every_route_carries_the_headers(make_world):
    world = make_world()
    checked, statuses, shop_pages = 0, set(), 0
    for who in ("anon", "alice", "staff"):
        client = world.client_for(who)
        for method in ("GET", "POST"):
            for rule in routes(world.app, method):
                response = client.open(fill_rule(rule, world), method=method)
                check_headers(response, hsts=False)
                checked += 1
                statuses.add(response.status_code)
                html = response.get_data(as_text=True) if response.mimetype == "text/html" else ""
                if html and not rule.rule.startswith("/admin"):
                    # The shop's own pages need no inline script, so the strict policy costs nothing.
                    assert not INLINE_SCRIPT.search(html), rule.rule
                    assert not EVENT_HANDLER.search(html), rule.rule
                    shop_pages += 1
        # Error responses go through the same hook.
        for method, path in (("GET", "/no/such/page"), ("GET", "/checkout"), ("PUT", "/"), ("POST", "/webhook/")):
            response = client.open(path, method=method)
            assert response.status_code in (400, 404, 405)
            check_headers(response, hsts=False)
            checked += 1
            statuses.add(response.status_code)
    report(
        f"headers: {checked} responses over every route x GET/POST x 3 identities plus error pages "
        f"(statuses {sorted(statuses)}) all carry CSP/frame-ancestors/nosniff/Referrer-Policy; "
        f"{shop_pages} shop pages have no inline script"
    )


@pytest.fixture
def production_app(emulator):
    """An app on StagingConfig (ProductionConfig's cookies and headers, test-mode Stripe), in-memory database."""
    app = create_app(
        StagingConfig,
        SECRET_KEY="a-long-random-production-secret-for-this-test",
        STRIPE_SECRET_KEY="sk_test_emulated",
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_HTTP_CLIENT=EmulatorHTTPClient(emulator),
        SQLALCHEMY_DATABASE_URI="sqlite://",
        RATELIMIT_ENABLED=False,
        ARGON2_TIME_COST=1,
        ARGON2_MEMORY_KIB=1024,
        SHOP_BASE_URL="http://127.0.0.1",
    )
    with app.app_context():
        _db.create_all()
        yield app
        _db.session.remove()


def test_production_adds_hsts_and_secure_cookies(production_app):
    user = accounts.create_user("prod@example.com", PASSWORD)
    client = production_app.test_client()
    base = "https://shop.example"
    for path in ("/", "/account/login", "/no/such/page"):
        check_headers(client.get(path, base_url=base), hsts=True)
    page = client.get("/account/login", base_url=base).get_data(as_text=True)
    response = client.post(
        "/account/login",
        base_url=base,
        data={"email": user.email, "password": PASSWORD, "remember": "y", "csrf_token": csrf_token_from(page)},
        headers={"Referer": f"{base}/account/login"},
    )
    assert response.status_code == 302
    check_headers(response, hsts=True)
    cookies = {c.split("=", 1)[0]: c for c in response.headers.getlist("Set-Cookie")}
    for name in ("session", "remember_token"):
        flags = [f.strip().lower() for f in cookies[name].split(";")]
        assert "secure" in flags and "httponly" in flags and "samesite=lax" in flags, cookies[name]
    report("production config: HSTS on every response; session and remember-me cookies Secure, HttpOnly, SameSite=Lax")


def test_production_refuses_default_secret():
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(
            ProductionConfig,
            SECRET_KEY=DEFAULT_SECRET_KEY,
            STRIPE_SECRET_KEY="sk_test_x",
            STRIPE_WEBHOOK_SECRET="whsec_x",
            SQLALCHEMY_DATABASE_URI="sqlite://",
        )
