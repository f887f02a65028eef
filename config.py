"""Application settings: the only module that reads the process environment."""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent
load_dotenv(BASE_DIR / ".env")

# A value that is obviously not a secret; production refuses to start with it.
DEFAULT_SECRET_KEY = "dev-insecure-change-me"


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _env_bool(name: str, default: bool) -> bool:
    value = _env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = _env(name)
    return int(value) if value is not None else default


class Config:
    """Settings shared by every environment; each reads one variable documented in .env.example."""

    SECRET_KEY: str = _env("SECRET_KEY", DEFAULT_SECRET_KEY) or DEFAULT_SECRET_KEY
    DEBUG = False
    TESTING = False

    SQLALCHEMY_DATABASE_URI = _env("DATABASE_URL", f"sqlite:///{BASE_DIR / 'instance' / 'shop.db'}")
    # No pool_pre_ping: shopapp/database.py pings only connections that sat idle (see there).
    SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {}
    # SQLite waits this long for a competing writer before "database is locked".
    SQLITE_BUSY_TIMEOUT_MS = _env_int("SQLITE_BUSY_TIMEOUT_MS", 15000)

    # Request bodies above this are refused with 413 (the webhook has its own, smaller cap).
    MAX_CONTENT_LENGTH = _env_int("MAX_CONTENT_LENGTH", 64 * 1024)
    WEBHOOK_MAX_BYTES = _env_int("WEBHOOK_MAX_BYTES", 256 * 1024)

    # Product pictures: stored under UPLOAD_FOLDER as "<sha256>.<ext>"; refused above these sizes.
    UPLOAD_FOLDER = _env("UPLOAD_FOLDER", str(BASE_DIR / "instance" / "uploads"))
    PICTURE_MAX_BYTES = _env_int("PICTURE_MAX_BYTES", 5 * 1024 * 1024)
    PICTURE_MAX_PIXELS = _env_int("PICTURE_MAX_PIXELS", 25_000_000)
    # The upload request's body cap: the picture plus the form's other fields.
    PICTURE_UPLOAD_MAX_BYTES = PICTURE_MAX_BYTES + 64 * 1024
    # Checkout collects a shipping address for these ISO 3166-1 alpha-2 countries ("US,CA"); empty: off.
    SHIPPING_COUNTRIES = [c.strip().upper() for c in (_env("SHIPPING_COUNTRIES", "") or "").split(",") if c.strip()]
    # Issue 23. Stripe Tax computes tax on every Checkout Session (`automatic_tax[enabled]`); off, the shop sends
    # `enabled=false` explicitly so an account default cannot add tax behind its back. TAX_BEHAVIOR says whether
    # the catalogue's prices include tax ("inclusive") or tax is added on top ("exclusive"): each price's
    # `tax_behavior`. STRIPE_INVOICE_CREATION makes Stripe issue a paid invoice (hosted page and PDF) per order.
    STRIPE_AUTOMATIC_TAX = _env_bool("STRIPE_AUTOMATIC_TAX", False)
    TAX_BEHAVIOR = (_env("TAX_BEHAVIOR", "exclusive") or "exclusive").lower()
    STRIPE_INVOICE_CREATION = _env_bool("STRIPE_INVOICE_CREATION", False)

    # Shop rules.
    SHOP_NAME = _env("SHOP_NAME", "Tidy Shop")
    # Sent with every payment as payment_intent_data[statement_descriptor_suffix]: what the shopper reads on the
    # card statement after the account's prefix ("PREFIX* SUFFIX"), since an unrecognised charge is the first
    # cause of disputes. Checked against Stripe's rules (statement_descriptor_problem); "" sends none.
    STATEMENT_DESCRIPTOR_SUFFIX = _env("STATEMENT_DESCRIPTOR_SUFFIX", "TIDY SHOP")
    # The account's shortened descriptor (Dashboard, Settings, Public details), only to check the combined length.
    STATEMENT_DESCRIPTOR_PREFIX = _env("STATEMENT_DESCRIPTOR_PREFIX", "")
    MAX_QUANTITY_PER_LINE = _env_int("MAX_QUANTITY_PER_LINE", 10)
    ORDERS_PER_PAGE = _env_int("ORDERS_PER_PAGE", 20)
    DEFAULT_CURRENCY = (_env("DEFAULT_CURRENCY", "usd") or "usd").lower()
    DISPLAY_LOCALE = _env("DISPLAY_LOCALE", "en_US")
    # Shopper-facing languages (Flask-Babel catalogs under shopapp/translations; the first is the default).
    # Chosen from the footer's switch (a cookie, and the account's language for emails), else Accept-Language.
    LANGUAGES: tuple[str, ...] = ("en", "de")
    BABEL_DEFAULT_LOCALE = "en"
    BABEL_TRANSLATION_DIRECTORIES = str(Path(__file__).resolve().parent / "shopapp" / "translations")
    # Staff pages, shopper pages and emails show times in this IANA zone (e.g. Europe/Paris); stored times stay UTC.
    SHOP_TIMEZONE = _env("SHOP_TIMEZONE", "UTC")
    # Every page shows the brand staff edit in the admin; each process re-reads it at most this often.
    BRAND_CACHE_SECONDS = float(_env("BRAND_CACHE_SECONDS", "10") or 10)
    # Tracking links shown to shoppers: carrier name (matched case-insensitively, as staff type it when marking
    # an order shipped) -> URL with {number} for the tracking number. A carrier not listed shows the number only.
    CARRIER_TRACKING_URLS = {
        "ups": "https://www.ups.com/track?tracknum={number}",
        "usps": "https://tools.usps.com/go/TrackConfirmAction?tLabels={number}",
        "fedex": "https://www.fedex.com/fedextrack/?trknbr={number}",
        "dhl": "https://www.dhl.com/global-en/home/tracking/tracking-express.html?tracking-id={number}",
        "royal mail": "https://www.royalmail.com/track-your-item#/tracking-results/{number}",
        "dpd": "https://track.dpd.co.uk/parcels/{number}",
        "canada post": "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor={number}",
    }

    # Stripe. With no secret key the run script starts the local Stripe service and points us at it.
    STRIPE_SECRET_KEY = _env("STRIPE_SECRET_KEY")
    STRIPE_WEBHOOK_SECRET = _env("STRIPE_WEBHOOK_SECRET")
    # Empty means Stripe itself; set to the local service's URL (e.g. http://127.0.0.1:12111) otherwise.
    STRIPE_API_BASE = _env("STRIPE_API_BASE")
    STRIPE_TIMEOUT_SECONDS = _env_int("STRIPE_TIMEOUT_SECONDS", 10)
    STRIPE_MAX_NETWORK_RETRIES = _env_int("STRIPE_MAX_NETWORK_RETRIES", 2)
    # Set only by tests: a stripe.HTTPClient that routes the SDK in-process.
    STRIPE_HTTP_CLIENT: Any = None
    CHECKOUT_SESSION_TTL_MINUTES = _env_int("CHECKOUT_SESSION_TTL_MINUTES", 30)
    # While a checkout holds units of a limited product nobody else can buy them: keep that session short.
    # Stripe's minimum is 30 minutes (shorter values are raised to it).
    CHECKOUT_SESSION_TTL_MINUTES_WITH_STOCK = _env_int("CHECKOUT_SESSION_TTL_MINUTES_WITH_STOCK", 30)
    # Backoff after Stripe answers 429, before the shopper is told to try again.
    STRIPE_RATE_LIMIT_BACKOFF_SECONDS = float(_env("STRIPE_RATE_LIMIT_BACKOFF_SECONDS", "0.5") or 0.5)

    # Stall alert (flask payments audit / reconcile): checkout sessions were created but no order was paid for
    # this many hours -> one email to staff (the brand's order address, else its contact address). 0: off.
    STALL_ALERT_HOURS = _env_int("STALL_ALERT_HOURS", 6)

    # Proxies in front of the shop that set X-Forwarded-For/-Proto/-Host (Werkzeug's ProxyFix): the client
    # address is taken that many hops from the right of X-Forwarded-For, so one forged by a client is ignored.
    # 0 (default): no proxy is trusted and remote_addr is the TCP peer. The documented deployment
    # (deploy/haproxy.cfg in front of gunicorn) sets 1. More than the real number of proxies lets a client
    # choose its own address, and with it its own rate-limit budget.
    TRUSTED_PROXY_HOPS = _env_int("TRUSTED_PROXY_HOPS", 0)

    # Rate limits (Flask-Limiter). memory:// is per process; use redis://... with several workers.
    RATELIMIT_ENABLED = _env_bool("RATELIMIT_ENABLED", True)
    RATELIMIT_STORAGE_URI = _env("RATELIMIT_STORAGE_URI", "memory://")
    RATELIMIT_HEADERS_ENABLED = True
    # A moving window has no boundary at which a burst of twice the limit gets through.
    RATELIMIT_STRATEGY = _env("RATELIMIT_STRATEGY", "moving-window")
    # If Redis is unreachable, each worker limits in memory meanwhile instead of failing every request.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = _env_bool("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    LOGIN_RATE_LIMIT = _env("LOGIN_RATE_LIMIT", "10 per minute")
    # Failed log-ins per account from any address; browsers that logged in to it before are exempt
    # (shopapp/auth/known_devices.py, docs/SECURITY.md).
    LOGIN_ACCOUNT_RATE_LIMIT = _env("LOGIN_ACCOUNT_RATE_LIMIT", "20 per hour")
    SIGNUP_RATE_LIMIT = _env("SIGNUP_RATE_LIMIT", "5 per minute")
    CHECKOUT_RATE_LIMIT = _env("CHECKOUT_RATE_LIMIT", "20 per minute")
    # Success-page views per shopper (each may ask Stripe about a pending order; see services/checkout.py).
    SUCCESS_PAGE_RATE_LIMIT = _env("SUCCESS_PAGE_RATE_LIMIT", "60 per minute")

    # Cookies.
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", False)
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    WTF_CSRF_TIME_LIMIT = 3600 * 8

    # Development conveniences: the run script creates this staff account and prints it.
    DEMO_STAFF_EMAIL = _env("DEMO_STAFF_EMAIL", "staff@example.com")
    DEMO_STAFF_PASSWORD = _env("DEMO_STAFF_PASSWORD", "staff-demo-password")
    # `flask demo-staff` creates that publicly known log-in: never where real orders live.
    DEMO_STAFF_ALLOWED = True

    LOG_LEVEL = _env("LOG_LEVEL", "INFO")
    # "text" (development) or "json": one JSON object per line (production's default), python-json-logger.
    LOG_FORMAT = (_env("LOG_FORMAT", "text") or "text").lower()
    # One line per request (method, path, status, ms, endpoint, request id); probes are logged at DEBUG.
    # Off by default: the proxy logs every request with the same X-Request-ID (deploy/haproxy.cfg), and a
    # line per request written by the app cost about a third of a shop page (bench.profile, issue 24).
    ACCESS_LOG = _env_bool("ACCESS_LOG", False)

    # ---- Operations (issue 24): health, metrics, errors.
    # /metrics answers only with "Authorization: Bearer <this>"; empty: /metrics is off (404).
    METRICS_TOKEN = _env("METRICS_TOKEN")
    # prometheus_client's multiprocess mode: every gunicorn worker writes its counters under this folder
    # (the library reads the same variable itself; deploy/gunicorn.conf.py sets and empties it).
    PROMETHEUS_MULTIPROC_DIR = _env("PROMETHEUS_MULTIPROC_DIR")
    # /readyz warns when the oldest pending email has been due this long (mail is not leaving).
    READYZ_OUTBOX_STUCK_MINUTES = _env_int("READYZ_OUTBOX_STUCK_MINUTES", 15)
    # Sentry: errors are reported when a DSN is set, scrubbed like the logs (shopapp/error_reports.py).
    SENTRY_DSN = _env("SENTRY_DSN")
    SENTRY_ENVIRONMENT = _env("SENTRY_ENVIRONMENT", "development")
    # Two-factor log-in (TOTP): staff must enrol before using the admin when this is on (production's default).
    TWO_FACTOR_REQUIRED_FOR_STAFF = _env_bool("TWO_FACTOR_REQUIRED_FOR_STAFF", False)
    # A refund or a staff change asks for a code again when the last one is older than this.
    TWO_FACTOR_FRESH_MINUTES = _env_int("TWO_FACTOR_FRESH_MINUTES", 15)
    # Code attempts per account (Flask-Limiter syntax): six digits must not be guessable by brute force.
    TWO_FACTOR_RATE_LIMIT = _env("TWO_FACTOR_RATE_LIMIT", "5 per minute")
    # Where `flask backup` keeps nothing by default; the command takes the path. Pictures and the local
    # Stripe service's state are read from UPLOAD_FOLDER and this file.
    STRIPE_EMULATOR_STATE = _env("STRIPE_EMULATOR_STATE", str(BASE_DIR / "instance" / "stripe-emulator.db"))
    # FLASK_DEBUG as the environment has it: `flask run` turns the Werkzeug debugger on from it after the
    # app is built, whatever DEBUG says, so production checks the variable itself.
    FLASK_DEBUG_ENV = _env_bool("FLASK_DEBUG", False)

    # ---- Email (issue 15): Flask-Mail over SMTP. scripts/run.sh starts a local SMTP server (shopapp.devmail)
    # that keeps every message as a .eml file under instance/mail/ and points these at it.
    MAIL_SERVER = _env("MAIL_SERVER", "127.0.0.1")
    MAIL_PORT = _env_int("MAIL_PORT", 8025)
    MAIL_USE_TLS = _env_bool("MAIL_USE_TLS", False)
    MAIL_USE_SSL = _env_bool("MAIL_USE_SSL", False)
    MAIL_USERNAME = _env("MAIL_USERNAME")
    MAIL_PASSWORD = _env("MAIL_PASSWORD")
    MAIL_DEFAULT_SENDER = _env("MAIL_DEFAULT_SENDER", "Tidy Shop <shop@tidy-shop.local>")
    # Flask-Mail suppresses sending whenever TESTING is on; the tests talk to a real SMTP server instead.
    MAIL_SUPPRESS_SEND = _env_bool("MAIL_SUPPRESS_SEND", False)
    # Seconds an SMTP connection attempt or reply may take before the message is retried later.
    MAIL_TIMEOUT_SECONDS = float(_env("MAIL_TIMEOUT_SECONDS", "10") or 10)
    # Retry backoff for undelivered messages: first retry after this many seconds, doubling up to the cap.
    MAIL_RETRY_BASE_SECONDS = _env_int("MAIL_RETRY_BASE_SECONDS", 60)
    MAIL_RETRY_MAX_SECONDS = _env_int("MAIL_RETRY_MAX_SECONDS", 3600)
    # `flask mail worker` (the sender process): seconds between looks at the outbox when it is empty.
    MAIL_WORKER_POLL_SECONDS = float(_env("MAIL_WORKER_POLL_SECONDS", "2") or 2)
    # A message claimed by a sender that died is offered again after this many seconds.
    MAIL_CLAIM_TIMEOUT_SECONDS = _env_int("MAIL_CLAIM_TIMEOUT_SECONDS", 300)
    # Where the development SMTP server stores messages (read by `flask mail list/show`).
    MAIL_DEV_DIR = _env("MAIL_DEV_DIR", str(BASE_DIR / "instance" / "mail"))
    # The shop's public address (no trailing slash): every emailed link and Stripe's return URLs are built
    # from it, never from the request's Host (behind a proxy that is the proxy's address, and http://).
    # Production refuses it unset or http:// (production_problems).
    # Empty when unset: development falls back to the local server's address, production refuses to start.
    SHOP_BASE_URL = (_env("SHOP_BASE_URL", "") or "").rstrip("/")
    # Password reset links work this long (seconds) and only once.
    PASSWORD_RESET_MAX_AGE_SECONDS = _env_int("PASSWORD_RESET_MAX_AGE_SECONDS", 3600)
    # Reset requests and reset-link submissions: per client IP address, and per email address asked about
    # (known or not, so a 429 reveals nothing; one account is one normalised address, so this is per account).
    RESET_RATE_LIMIT = _env("RESET_RATE_LIMIT", "10 per hour")
    RESET_PER_EMAIL_RATE_LIMIT = _env("RESET_PER_EMAIL_RATE_LIMIT", "3 per hour")

    # The shop page's rendered-HTML cache (shopapp/shop/page_cache.py). Off: every view renders the template.
    PAGE_CACHE_ENABLED = _env_bool("PAGE_CACHE_ENABLED", True)
    # On PostgreSQL, reuse the shop page's product rows until PostgreSQL announces a change to `products`
    # (LISTEN/NOTIFY, one listening connection per worker; shopapp/database.py ChangeFeed). Off behind a
    # transaction-pooling proxy, which drops notifications: then every view reads the products.
    PRODUCTS_CHANGE_FEED = _env_bool("PRODUCTS_CHANGE_FEED", True)

    # Argon2id cost (argon2-cffi's defaults: RFC 9106 low-memory profile).
    ARGON2_TIME_COST = _env_int("ARGON2_TIME_COST", 3)
    ARGON2_MEMORY_KIB = _env_int("ARGON2_MEMORY_KIB", 65536)

    # Cache-Control max-age of static files. Templates link them with a content hash (static_url), so a
    # changed file gets a new URL and a long lifetime is safe; Flask-Admin's links carry a version too.
    SEND_FILE_MAX_AGE_DEFAULT = _env_int("STATIC_MAX_AGE_SECONDS", 365 * 24 * 3600)

    @classmethod
    def validate(cls, settings: dict[str, Any]) -> None:
        """Refuse settings no environment can run with (RuntimeError naming the fix): a tax behaviour Stripe
        does not know would have every checkout refused."""
        if settings.get("TAX_BEHAVIOR") not in ("inclusive", "exclusive"):
            raise RuntimeError(
                f"TAX_BEHAVIOR={settings.get('TAX_BEHAVIOR')!r}: set it to 'exclusive' (tax added on top of the "
                "prices) or 'inclusive' (prices include tax)"
            )


class DevelopmentConfig(Config):
    """Local development: debug tooling on, SQLite in instance/ by default."""

    DEBUG = _env_bool("FLASK_DEBUG", True)
    SHOP_BASE_URL = Config.SHOP_BASE_URL or "http://127.0.0.1:5000"


class TestingConfig(Config):
    """Tests: SQLite unless TEST_DATABASE_URL names another database; no rate limits; Stripe is local."""

    TESTING = True
    SECRET_KEY = "testing-secret-key"
    # None: the test fixtures use a fresh SQLite file per test.
    TEST_DATABASE_URL = _env("TEST_DATABASE_URL")
    SQLALCHEMY_DATABASE_URI = TEST_DATABASE_URL or "sqlite://"
    WTF_CSRF_ENABLED = False
    RATELIMIT_ENABLED = False
    RATELIMIT_STORAGE_URI = "memory://"
    STRIPE_SECRET_KEY = "sk_test_emulated"
    STRIPE_WEBHOOK_SECRET = "whsec_testing"
    STRIPE_API_BASE = "http://127.0.0.1:12111"
    STRIPE_MAX_NETWORK_RETRIES = 0
    STRIPE_RATE_LIMIT_BACKOFF_SECONDS = 0.0
    # Cheap hashes keep the suite fast; the algorithm and code path are the production ones.
    ARGON2_TIME_COST = 1
    ARGON2_MEMORY_KIB = 1024
    SERVER_NAME = "shop.test"
    SHOP_BASE_URL = "http://shop.test"
    # Mail tests start a real SMTP server per test (tests/mail/mailbox.py) and set MAIL_PORT to it; elsewhere
    # port 1, where nothing listens, so no test ever mails a server it did not start (messages stay pending).
    MAIL_PORT = 1
    MAIL_TIMEOUT_SECONDS = 5.0
    # Tests that read the access log turn it on; elsewhere it would add a record to every caplog.
    ACCESS_LOG = False
    METRICS_TOKEN = "metrics-test-token"
    PROMETHEUS_MULTIPROC_DIR = None
    SENTRY_DSN = None
    # One process per test app, where a save is seen at once: a cache that expires on the clock would make the
    # query budgets depend on how slowly a loaded machine runs (a brand read landing inside a counted request).
    BRAND_CACHE_SECONDS = 24 * 3600.0


# ---------------------------------------------------------------------------------- production checks

# Secret keys written in this repository (public, so no secret): production refuses each.
PUBLIC_SECRET_KEYS = frozenset(
    {DEFAULT_SECRET_KEY, "testing-secret-key", "bench-only-secret-key-not-for-production-0123456789"}
)
# The signing key needs about as much entropy as a 128-bit random value; secrets.token_hex(32) has 256.
MIN_SECRET_KEY_LENGTH = 32
MIN_SECRET_KEY_BITS = 128
# Stripe's one API host (docs.stripe.com/api): any other base would receive the live key and could
# answer "paid" for payments that never happened.
STRIPE_API_HOST = "https://api.stripe.com"
# Flask-Limiter storages shared by every worker and node (limits' storage URI schemes); memory:// is per
# process, so N workers let N times the limit through.
SHARED_RATELIMIT_SCHEMES = frozenset(
    {
        "redis",
        "rediss",
        "redis+unix",
        "redis+sentinel",
        "redis+cluster",
        "valkey",
        "valkeys",
        "valkey+unix",
        "valkey+sentinel",
        "valkey+cluster",
        "memcached",
        "mongodb",
        "mongodb+srv",
    }
)


def secret_key_bits(key: str) -> float:
    """A rough entropy estimate of a key in bits: its length times the Shannon entropy of its characters.

    Repetition ("aaaa...") and short keys score low; a random hex or base64 string of 32+ characters
    scores well above MIN_SECRET_KEY_BITS. An estimate, not a proof: it refuses obvious mistakes only.
    """
    if not key:
        return 0.0
    counts = Counter(key)
    per_char = -sum(n / len(key) * math.log2(n / len(key)) for n in counts.values())
    return per_char * len(key)


# Stripe's statement descriptor requirements (docs.stripe.com/get-started/account/statement-descriptors): Latin
# characters only; 5 to 22 characters for the whole descriptor, which for a prefix and suffix is
# "PREFIX* SUFFIX"; at least one letter in each part; none of < > \\ ' " *.
DESCRIPTOR_FORBIDDEN = "<>\\'\"*"
MAX_STATEMENT_DESCRIPTOR = 22


def statement_descriptor_problem(suffix: str, prefix: str = "") -> str | None:
    """Why `suffix` (after the account's `prefix`, if known) breaks Stripe's statement descriptor rules, naming
    the fix; None when it is fine (or empty: then none is sent)."""
    if not suffix:
        return None
    whole = f"{prefix}* {suffix}" if prefix else suffix
    if not suffix.isascii():
        return f"STATEMENT_DESCRIPTOR_SUFFIX {suffix!r} has non-Latin characters; use A-Z, 0-9 and spaces"
    if not any(c.isalpha() for c in suffix):
        return f"STATEMENT_DESCRIPTOR_SUFFIX {suffix!r} needs at least one letter; e.g. your shop's short name"
    bad = sorted(set(suffix) & set(DESCRIPTOR_FORBIDDEN))
    if bad:
        return f"STATEMENT_DESCRIPTOR_SUFFIX {suffix!r} contains {' '.join(bad)}, which Stripe refuses; remove them"
    if len(whole) > MAX_STATEMENT_DESCRIPTOR:
        room = MAX_STATEMENT_DESCRIPTOR - len(whole) + len(suffix)
        return (
            f"STATEMENT_DESCRIPTOR_SUFFIX {suffix!r} makes the descriptor {whole!r} {len(whole)} characters long, "
            f"over Stripe's {MAX_STATEMENT_DESCRIPTOR}; shorten it to {room}"
        )
    return None


def production_problems(settings: dict[str, Any]) -> list[str]:
    """Every unsafe production setting, each as "SETTING: what is wrong; the fix"."""
    problems = []
    key = str(settings.get("SECRET_KEY") or "")
    if key in PUBLIC_SECRET_KEYS or not key:
        problems.append(
            "SECRET_KEY is unset or a key published in this repository; set a new random one, "
            "e.g. python -c 'import secrets; print(secrets.token_hex(32))'"
        )
    elif len(key) < MIN_SECRET_KEY_LENGTH or secret_key_bits(key) < MIN_SECRET_KEY_BITS:
        problems.append(
            f"SECRET_KEY is too short or too regular (needs {MIN_SECRET_KEY_LENGTH}+ random "
            "characters); set python -c 'import secrets; print(secrets.token_hex(32))'"
        )
    if settings.get("DEBUG") or settings.get("FLASK_DEBUG_ENV"):
        problems.append("FLASK_DEBUG must be off in production (it starts the Werkzeug debugger); unset FLASK_DEBUG")
    base_url = str(settings.get("SHOP_BASE_URL") or "")
    if not base_url:
        problems.append(
            "SHOP_BASE_URL is unset (every emailed link and Stripe return URL would point at 127.0.0.1); "
            "set the shop's public address, e.g. SHOP_BASE_URL=https://shop.example.com"
        )
    elif urlsplit(base_url).scheme != "https" or not urlsplit(base_url).netloc:
        problems.append(
            f"SHOP_BASE_URL is {base_url!r}: links must use https; set e.g. SHOP_BASE_URL=https://shop.example.com"
        )
    if (settings.get("MAIL_USERNAME") or settings.get("MAIL_PASSWORD")) and not (
        settings.get("MAIL_USE_TLS") or settings.get("MAIL_USE_SSL")
    ):
        problems.append(
            "MAIL_USERNAME/MAIL_PASSWORD are set without TLS (the password would cross the network in clear); "
            "set MAIL_USE_TLS=1 (STARTTLS, port 587) or MAIL_USE_SSL=1 (port 465)"
        )
    if settings.get("RATELIMIT_ENABLED") and not settings.get("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"):
        problems.append(
            "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED is off (with Redis down every limited form would fail); "
            "unset it or set RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=1"
        )
    stripe_key = str(settings.get("STRIPE_SECRET_KEY") or "")
    if not stripe_key.startswith(("sk_live_", "rk_live_")):
        problems.append(
            "STRIPE_SECRET_KEY must be a live key (sk_live_... or rk_live_...) from the Stripe "
            "dashboard; test keys and the local service's key take no money"
        )
    webhook_secret = str(settings.get("STRIPE_WEBHOOK_SECRET") or "")
    if not webhook_secret.startswith("whsec_") or webhook_secret in ("whsec_testing", "whsec_local_emulator"):
        problems.append(
            "STRIPE_WEBHOOK_SECRET must be set to the endpoint's signing secret (whsec_...) from the Stripe dashboard"
        )
    api_base = str(settings.get("STRIPE_API_BASE") or "")
    if api_base and api_base.rstrip("/") != STRIPE_API_HOST:
        problems.append(f"STRIPE_API_BASE points at {api_base!r}, not Stripe; unset it (or set {STRIPE_API_HOST})")
    if settings.get("STRIPE_HTTP_CLIENT") is not None:
        problems.append("STRIPE_HTTP_CLIENT is a test transport; unset it")
    storage = str(settings.get("RATELIMIT_STORAGE_URI") or "")
    if not settings.get("RATELIMIT_ENABLED"):
        problems.append("RATELIMIT_ENABLED is off; unset it (log-in and checkout limits protect accounts)")
    elif urlsplit(storage).scheme.lower() not in SHARED_RATELIMIT_SCHEMES:
        problems.append(
            f"RATELIMIT_STORAGE_URI is {storage!r}, counted per worker; set a shared storage, "
            "e.g. redis://127.0.0.1:6379/0"
        )
    descriptor = statement_descriptor_problem(
        str(settings.get("STATEMENT_DESCRIPTOR_SUFFIX") or ""), str(settings.get("STATEMENT_DESCRIPTOR_PREFIX") or "")
    )
    if descriptor is not None:
        problems.append(descriptor)
    return problems


class ProductionConfig(Config):
    """Production: secure cookies, and a refusal to start with unsafe settings."""

    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    PREFERRED_URL_SCHEME = "https"
    DEMO_STAFF_ALLOWED = False
    LOG_FORMAT = (_env("LOG_FORMAT", "json") or "json").lower()
    SENTRY_ENVIRONMENT = _env("SENTRY_ENVIRONMENT", "production")
    TWO_FACTOR_REQUIRED_FOR_STAFF = _env_bool("TWO_FACTOR_REQUIRED_FOR_STAFF", True)

    @classmethod
    def validate(cls, settings: dict[str, Any]) -> None:
        """Raise RuntimeError naming each unsafe setting and its fix (see production_problems)."""
        super().validate(settings)
        problems = production_problems(settings)
        if problems:
            raise RuntimeError("Refusing to start in production: " + "; ".join(problems))


class StagingConfig(ProductionConfig):
    """A production rehearsal: every production setting, but Stripe may be test mode or the local service.

    For load tests, benchmarks and the multi-process proofs, which run the production code paths against
    the local Stripe service. It refuses a live key outright, so it can never take (or fake) real money,
    and it accepts per-worker (memory://) rate limits.
    """

    RELAXED = (
        "STRIPE_SECRET_KEY must be",
        "STRIPE_API_BASE",
        "STRIPE_HTTP_CLIENT",
        "RATELIMIT_STORAGE_URI",
        "RATELIMIT_ENABLED",
        "STRIPE_WEBHOOK_SECRET must",
        # Rehearsals run on 127.0.0.1 without TLS; the address must still be set.
        "SHOP_BASE_URL is '",
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED",
    )

    @classmethod
    def validate(cls, settings: dict[str, Any]) -> None:
        """Production's checks minus the Stripe host, key kind and shared rate limits; no live key at all."""
        problems = [p for p in production_problems(settings) if not p.startswith(cls.RELAXED)]
        if not settings.get("STRIPE_SECRET_KEY") or not settings.get("STRIPE_WEBHOOK_SECRET"):
            problems.append("STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET must be set (test-mode values)")
        if "_live_" in str(settings.get("STRIPE_SECRET_KEY") or ""):
            problems.append("STRIPE_SECRET_KEY is a live key; staging takes test keys (live: SHOP_CONFIG=production)")
        if problems:
            raise RuntimeError("Refusing to start in staging: " + "; ".join(problems))


CONFIGS: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
    "staging": StagingConfig,
}


def get_config(name: str | None = None) -> type[Config]:
    """Return the config class named by `name`, else by SHOP_CONFIG, else production: the safe choice is the
    default, and development (debug tooling, insecure cookies) runs only when asked for (scripts/run.sh asks)."""
    key = (name or _env("SHOP_CONFIG", "production") or "production").lower()
    try:
        return CONFIGS[key]
    except KeyError:
        raise RuntimeError(f"Unknown SHOP_CONFIG {key!r}; choose one of {sorted(CONFIGS)}") from None
