"""What the framework-internals shortcuts removed in issue 17 would save: python -m bench.framework_internals

One logged-in shop page (20 orders), in-process through the test client, with the shortcuts put back one by
one (A: public APIs, as shipped; B: Flask-Limiter's before_request hook removed through its private attribute;
C: + one cached session serializer; D: + a CSRF token reused for 60 s, i.e. main before issue 17). The
variants are interleaved round by round so that load from other processes hits each alike; min and median
of 15 rounds of 200 requests. Measurement only: nothing here is used by the shop.
"""

import re
import statistics
import tempfile
import time

from flask import session
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import generate_csrf

from shopapp import create_app
from shopapp.extensions import db, limiter
from shopapp.services import accounts, bulk_seed, catalog
from shopapp.shop import page_cache

tmp = tempfile.mkdtemp()
app = create_app(
    "staging",
    SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp}/m.db",
    SECRET_KEY="9f2c4e7a1b8d3f60e5a7c2b9d4f1e8a3c6b0d5f2e9a4c7b1",
    STRIPE_SECRET_KEY="sk_test_x",
    STRIPE_WEBHOOK_SECRET="whsec_x",
    STRIPE_API_BASE="http://127.0.0.1:9",
    SESSION_COOKIE_SECURE=False,
    PREFERRED_URL_SCHEME="http",
    LOGIN_RATE_LIMIT="100000 per minute",
    SHOP_BASE_URL="http://127.0.0.1",
)
with app.app_context():
    db.create_all()
    catalog.seed_demo_products()
    u = accounts.create_user("ann@example.com", "correct horse battery")
    bulk_seed.add_orders([u.id], 20)
    db.session.commit()
c = app.test_client()
c.get("/account/login")
tok = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', c.get("/account/login").get_data(as_text=True)).group(1)
assert (
    c.post(
        "/account/login",
        data={"email": "ann@example.com", "password": "correct horse battery", "csrf_token": tok},
        headers={"Referer": "http://localhost/account/login"},
    ).status_code
    == 302
)
c.get("/")

hooks = app.before_request_funcs.get(None, [])
all_hooks = list(hooks)


class Cached(SecureCookieSessionInterface):
    def __init__(self):
        self._s = {}

    def get_signing_serializer(self, app):
        k = (app.secret_key,)
        s = self._s.get(k)
        if s is None:
            s = super().get_signing_serializer(app)
            self._s[k] = s
        return s


plain, cached = SecureCookieSessionInterface(), Cached()
tokens = {}


def reuse():
    secret = session.get("csrf_token")
    e = tokens.get(secret)
    if e is None or time.monotonic() - e[0] > 60:
        e = (time.monotonic(), generate_csrf())
        tokens[secret] = e
    return e[1]


def setup(level):
    hooks[:] = all_hooks if level < 1 else [h for h in all_hooks if h != limiter._check_request_limit]
    app.session_interface = cached if level >= 2 else plain
    page_cache.generate_csrf = reuse if level >= 3 else generate_csrf


labels = [
    "A public APIs (this branch)",
    "B + limiter hook removed",
    "C + cached session serializer",
    "D + CSRF token reuse (= before)",
]
results = {k: [] for k in range(4)}
for rnd in range(15):
    order = [0, 1, 2, 3] if rnd % 2 == 0 else [3, 2, 1, 0]
    for level in order:
        setup(level)
        c.get("/")
        t = time.perf_counter()
        for _ in range(200):
            c.get("/")
        results[level].append((time.perf_counter() - t) / 200 * 1000)
for k in range(4):
    print(f"{labels[k]:40s} min {min(results[k]):.3f} ms  median {statistics.median(results[k]):.3f} ms")
saved_min = min(results[0]) - min(results[3])
saved_median = statistics.median(results[0]) - statistics.median(results[3])
print(f"the three shortcuts together save (min) {saved_min:+.3f} ms, (median) {saved_median:+.3f} ms")
