"""The cached shop page: any change to an order or a product re-renders it, and it never leaks across shoppers."""

from __future__ import annotations

import re

from itsdangerous import URLSafeTimedSerializer
from jinja2 import nodes
from sqlalchemy import update

from shopapp.models import Order, Product, User
from shopapp.services import accounts, bulk_seed, catalog
from shopapp.shop.page_cache import PageCache
from tests.conftest import PASSWORD, fresh, session_id_from
from tests.support import without_csrf_tokens


def _orders_section(text: str) -> str:
    return without_csrf_tokens(text[text.index('<section aria-labelledby="orders-heading"') :])


def test_a_changed_order_is_shown_changed(client, shopper, buy, emulator, db):
    session_id = session_id_from(buy(A=1))
    first = _orders_section(client.get("/orders").get_data(as_text=True))
    assert "Pending" in first and "Cancel order #1" in first
    # Served twice unchanged: the same HTML.
    assert _orders_section(client.get("/orders").get_data(as_text=True)) == first

    emulator.pay(session_id)
    emulator.deliver_pending()
    paid = _orders_section(client.get("/orders").get_data(as_text=True))
    assert "Paid" in paid and "Pending" not in paid and "Cancel order #1" not in paid

    # A change made outside any request (staff, a reconcile job) shows as well.
    fresh().execute(update(Order).where(Order.id == 1).values(status="refunded"))
    db.session.commit()
    refunded = _orders_section(client.get("/orders").get_data(as_text=True))
    assert "Refunded" in refunded and "Paid" not in refunded


def test_a_second_shopper_never_gets_the_first_shoppers_fragment(app, client, shopper, buy, make_user):
    session_id_from(buy(A=3))
    assert "3 &times; Product A" in client.get("/orders").get_data(as_text=True)
    other = app.test_client()
    make_user("b@example.com")
    other.post("/account/login", data={"email": "b@example.com", "password": PASSWORD})
    text = other.get("/orders").get_data(as_text=True)
    assert "No orders yet." in text and "Order #1" not in text and "3 &times; Product A" not in text
    session_id_from(buy(other, B=1))
    text = other.get("/orders").get_data(as_text=True)
    assert "1 &times; Product B" in text and "3 &times; Product A" not in text
    assert "1 &times; Product B" not in client.get("/orders").get_data(as_text=True)


def test_each_session_gets_its_own_csrf_token_in_the_cancel_forms(app, client, shopper, buy):
    session_id_from(buy(A=1))
    second = app.test_client()
    second.post("/account/login", data={"email": shopper.email, "password": PASSWORD})
    tokens = []
    for browser in (client, second, client):
        text = browser.get("/orders").get_data(as_text=True)
        assert "csrf-token-placeholder" not in text
        cancel_token = re.search(r'<input type="hidden" name="csrf_token" value="([^"]+)">', text)
        assert cancel_token
        tokens.append(cancel_token.group(1))
    # Same fragment (same user, same orders), yet each session shows its own token. Compared by the session
    # secret each token signs, not by text: a token's text carries the second it was signed in, so two
    # tokens of one session differ whenever the clock ticks between the requests (a flaky comparison).
    secrets = [_signed_secret(app, token) for token in tokens]
    assert secrets[0] != secrets[1] and secrets[0] == secrets[2]


def _signed_secret(app, token: str) -> str:
    """The session secret a Flask-WTF token signs (its salt and key are Flask-WTF's documented settings)."""
    serializer = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="wtf-csrf-token")
    return str(serializer.loads(token))


def test_the_cache_is_bounded_and_evicts_the_least_recently_used():
    cache = PageCache(max_entries=2)
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.get("a") == "A"
    cache.put("c", "C")
    assert len(cache) == 2 and cache.get("b") is None and cache.get("a") == "A" and cache.get("c") == "C"


def _html(client, path: str = "/") -> str:
    response = client.get(path)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_a_changed_product_shows_on_the_very_next_view(app, client, products, make_user, db):
    shopper_browser = app.test_client()
    make_user("p@example.com")
    shopper_browser.post("/account/login", data={"email": "p@example.com", "password": PASSWORD})
    _html(shopper_browser)  # the "logged in" message page is never cached; the next views are
    for browser in (client, shopper_browser):
        assert "$19.99" in _html(browser) and "$19.99" in _html(browser)
    fresh().execute(update(Product).where(Product.name == "Product A").values(price_cents=1750, stock=3))
    db.session.commit()
    for browser in (client, shopper_browser):
        html = _html(browser)
        assert "$17.50" in html and "$19.99" not in html and "Only 3 left" in html


def test_visitors_and_shoppers_never_share_a_page(app, client, products, make_user):
    visitor = _html(client)
    assert "Log in to buy" in visitor and 'id="buy-button"' not in visitor and "csrf_token" not in visitor
    shopper_browser = app.test_client()
    make_user("p@example.com")
    shopper_browser.post("/account/login", data={"email": "p@example.com", "password": PASSWORD})
    for _ in range(2):
        page = _html(shopper_browser)
        assert 'id="buy-button"' in page and "p@example.com" in page and "Log in to buy" not in page
    assert _html(client) == visitor  # still the visitor's page, and still no token in it


def test_becoming_staff_shows_the_staff_link_at_once(client, shopper, db):
    _html(client)
    assert "Staff admin" not in _html(client)
    fresh().execute(update(User).where(User.id == shopper.id).values(is_staff=True))
    db.session.commit()
    assert "Staff admin" in _html(client)


def test_one_off_messages_show_once_and_are_never_served_again(client, shopper):
    assert "You are logged in." in _html(client)
    assert "You are logged in." not in _html(client)
    canceled = _html(client, "/?checkout=canceled")
    assert "Payment canceled: nothing was charged." in canceled
    assert "Payment canceled" not in _html(client)
    assert without_csrf_tokens(_html(client, "/?checkout=canceled")) == without_csrf_tokens(canceled)


def test_each_page_of_orders_is_its_own_page(client, shopper, db):
    bulk_seed.add_orders([shopper.id], 45)
    db.session.commit()
    _html(client)
    pages = [_html(client, f"/orders?page={n}") for n in (1, 2, 3)]
    numbers = [re.findall(r'id="order-(\d+)"', page) for page in pages]
    assert [len(n) for n in numbers] == [20, 20, 5]
    assert not set(numbers[0]) & set(numbers[1]) and not set(numbers[1]) & set(numbers[2])
    # Out-of-range page numbers answer, never a 500.
    for path in ("/orders?page=0", "/orders?page=-3", f"/orders?page={10**30}", "/orders?page=abc"):
        assert client.get(path).status_code == 200, path


def test_in_debug_every_view_re_renders(app_factory, products):
    app = app_factory(DEBUG=True)
    client = app.test_client()
    client.get("/")
    assert len(app.extensions.get("shop_page_cache") or ()) == 0


# Everything the cached shop page's templates read, and why each is safe to cache under page_cache's key.
# A new read fails test_the_template_reads_only_values_in_its_key until it is added here with its reason
# (and, if it can differ between two views with equal keys, to the key itself).
CACHE_SAFE_READS = {
    # In the key: the viewer tuple (id, email, is_staff), None for a visitor.
    "current_user": "key: viewer",
    "current_user.is_authenticated": "key: viewer is None exactly for visitors",
    "current_user.email": "key: viewer",
    "current_user.is_staff": "key: viewer",
    # In the key: the product rows as read.
    "products": "key: product rows",
    "product": "loop over products",
    **{
        f"product.{c}": "key: product rows"
        for c in (
            "id",
            "name",
            "description",
            "price_cents",
            "currency",
            "stock",
            "image_name",
            "image_width",
            "image_height",
            "image_alt",
        )
    },
    "words": "set from product.name",
    "reserved_minutes": "key: products_key holds the reserved minutes per sold-out product",
    # In the key: order_page.state (the orders' changeable columns) and the page number.
    "order_page": "key: page and order state",
    "order_page.orders": "key: order state",
    "order_page.page": "key: page",
    "order_page.has_prev": "key: page",
    "order_page.has_next": "key: order state (one extra row)",
    "order": "loop over order_page.orders",
    "status": "set from order.status",
    **{
        f"order.{c}": "key: order state columns"
        for c in (
            "id",
            "status",
            "payment_processing",
            "stock_shortfall",
            "checkout_url",
            "total_cents",
            "currency",
            "shipped_at",
            "shipping_carrier",
            "tracking_number",
            "dispute_standing",  # issue 21: a dispute opened or closed
        )
    },
    "order.created_at": "never changes after the order is created",
    "order.items": "an order's items never change after it is created",
    "item": "loop over order.items",
    "item.quantity": "immutable item",
    "item.product_name": "immutable item",
    "item.unit_price_cents": "immutable item",
    "notice": "key: notice",
    # In the key: the request's language (shopapp/i18n.py); the words are a function of it.
    "_": "key: language",
    "current_language": "key: language",
    "gettext": "key: language ({% trans %} blocks)",
    "ngettext": "key: language ({% trans %} blocks with a count)",
    "_trans": "key: language ({% trans %} blocks)",
    "language_names": "fixed per process (i18n.LANGUAGE_NAMES)",
    "language_names.items": "fixed per process (i18n.LANGUAGE_NAMES)",
    "code": "loop over language_names",
    "name": "loop over language_names",
    # Never cached when set or non-empty (page_cache renders these directly).
    "error": "uncached when set",
    "selection": "uncached when non-empty",
    "selection.get": "uncached when non-empty",
    "get_flashed_messages": "uncached while the session holds flashes",
    "messages": "from get_flashed_messages",
    "message": "from get_flashed_messages",
    "category": "from get_flashed_messages",
    "limit": "set from product.stock",
    # Per application (the cache is per app) and fixed while it runs.
    "max_quantity": "app config",
    "display_locale": "app config (templating's site values)",
    "shop_name": "app config",
    "payments_local_mode": "app config",
    # Functions whose output is covered by the key.
    "url_for": "key: request.script_root (where the app is mounted)",
    "static_url": "key: static folder; URLs carry the file's content hash",
    "csrf_token": "a placeholder while cached, swapped for this session's token on every view",
    # Issue 22: the frame and My orders.
    "brand": "key: the brand (a frozen dataclass of every value it shows)",
    **{
        f"brand.{a}": "key: the brand"
        for a in ("address_lines", "contact_email", "footer_line", "logo_height", "logo_name", "logo_width", "version")
    },
    "line": "loop over brand.address_lines",
    "footer_pages": "a fixed enum (brand.PageSlug)",
    "page": "loop over footer_pages",
    "page.heading": "fixed per enum member",
    "page.value": "fixed per enum member",
    "loop": "Jinja's loop variable",
    "loop.last": "Jinja's loop variable",
    "abandoned": "set from order_page.orders (key: order state)",
    "tracking_url": "a function of order.shipping_carrier and order.tracking_number (key) and app config",
    "link": "set from tracking_url(...)",
}

# The order columns the key's order state holds: the template may show only these of an order's mutable fields.
ORDER_STATE_COLUMNS = {
    "id",
    "status",
    "payment_processing",
    "stock_shortfall",
    "checkout_url",
    "total_cents",
    "currency",
    "shipped_at",
    "shipping_carrier",
    "tracking_number",
    "dispute_standing",
}


def test_the_template_reads_only_values_in_its_key(app):
    env = app.jinja_env
    reads = set()
    for name in ("base.html", "shop/index.html", "shop/orders.html", "shop/_orders.html"):
        tree = env.parse(env.loader.get_source(env, name)[0])
        reads |= {f"{n.node.name}.{n.attr}" for n in tree.find_all(nodes.Getattr) if isinstance(n.node, nodes.Name)}
        reads |= {n.name for n in tree.find_all(nodes.Name) if n.ctx == "load"}
    unexplained = reads - set(CACHE_SAFE_READS)
    assert not unexplained, f"the cached page reads values outside its key: {sorted(unexplained)}"
    from shopapp.services.orders import _STATE_COLUMNS

    assert {column.name for column in _STATE_COLUMNS} == ORDER_STATE_COLUMNS


def test_each_language_gets_its_own_cached_page(app, client, products, make_user):
    """The same viewer, the same rows: English and German are two entries, never one served for the other."""
    english = _html(client)
    german = client.get("/", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert "Our products" in english and "Unsere Produkte" not in english
    assert "Unsere Produkte" in german and "Our products" not in german
    assert "Our products" in _html(client)  # the English entry again, from the cache
    assert "Unsere Produkte" in client.get("/", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert len(app.extensions["shop_page_cache"]) == 2


def test_the_page_cache_can_be_turned_off(app_factory):
    app = app_factory(PAGE_CACHE_ENABLED=False)
    catalog.seed_demo_products()
    browser = app.test_client()
    accounts.create_user("p@example.com", PASSWORD)
    browser.post("/account/login", data={"email": "p@example.com", "password": PASSWORD})
    for _ in range(3):
        assert "p@example.com" in _html(browser)
    assert "$19.99" in _html(app.test_client())
    assert len(app.extensions.get("shop_page_cache") or ()) == 0
