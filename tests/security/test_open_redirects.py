"""Open redirects: no redirect target taken from a request (admin `url=`, log-in `next`) leaves the site.

Each known bypass form is tried on every admin endpoint and on log-in; where the browser ends up is judged
the way Chromium reads a Location header (tabs and newlines deleted, "\\" read as "/"), not by our own check.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shopapp.models import Product
from shopapp.security import is_same_site_path
from tests.conftest import PASSWORD, fresh

HOST = "shop.test"

BYPASSES = [
    "http:/evil.example",
    "/\\evil.example",
    "//evil.example",
    "%2F%2Fevil.example",
    "\\/evil.example",
    "/%5Cevil.example",
    "/%2F%2Fevil.example",
    "/%252F%252Fevil.example",
    "ht\ttp://evil.example",
    "java\nscript:alert(1)",
    "javascript:alert(1)",
    "https:evil.example",
    "https://evil.example/",
    " //evil.example",
    "/\t/evil.example",
    "\x00//evil.example",
    "evil.example",
]


def lands_on_site(location: str) -> bool:
    """Where a browser goes for this Location header: this site or not (WHATWG URL parsing, simplified).

    Leading C0 controls and spaces are stripped, tabs and newlines anywhere deleted, "\\" read as "/";
    a special scheme (http, https) then takes any number of slashes before its host, so "http:/x" is x.
    """
    url = location.strip("".join(map(chr, range(0x21)))).translate({9: None, 10: None, 13: None})
    url = url.replace("\\", "/")
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", url)
    if scheme:
        if scheme.group(1).lower() not in ("http", "https"):
            return False  # javascript:, data: ... never this site's page
        host = re.split(r"[/?#]", url[scheme.end() :].lstrip("/"), maxsplit=1)[0]
        return host == HOST
    if url.startswith("//"):
        return re.split(r"[/?#]", url[2:], maxsplit=1)[0] == HOST
    return True  # a path (absolute or relative) on this site


@pytest.mark.parametrize("target", BYPASSES)
def test_the_check_refuses_every_bypass_form(target: str) -> None:
    assert not is_same_site_path(target)


@pytest.mark.parametrize("target", ["/", "/admin/orders/?page=2", "/admin/orders/?search=a%20b", "/?checkout=canceled"])
def test_same_site_paths_are_kept(target: str) -> None:
    assert is_same_site_path(target) and lands_on_site(target)


def _admin_rules(app: Flask) -> list[Any]:
    return [r for r in app.url_map.iter_rules() if r.rule.startswith("/admin") and r.endpoint != "admin.static"]


def _url_for_rule(rule: Any, record_id: int) -> str:
    path = rule.rule.replace("<export_type>", "csv").replace("<int:id>", str(record_id))
    return path.replace("<int:order_id>", str(record_id))


@pytest.fixture
def staff_browser(app: Flask, make_user: Any, products: dict[str, Product]) -> FlaskClient:
    make_user("ann@example.com", staff=True)
    browser = app.test_client()
    assert browser.post("/account/login", data={"email": "ann@example.com", "password": PASSWORD}).status_code == 302
    return browser


def test_every_admin_endpoint_refuses_every_bypass(app: Flask, staff_browser: FlaskClient, products: Any) -> None:
    product_id = products["Product A"].id
    tried = 0
    for rule in _admin_rules(app):
        path = _url_for_rule(rule, product_id)
        for target in BYPASSES:
            query = {"id": str(product_id), "url": target}
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                if method == "GET":
                    response = staff_browser.get(path, query_string=query)
                else:
                    data = {"id": str(product_id), "url": target, "action": "delete", "rowid": str(product_id)}
                    response = staff_browser.post(path, query_string={"url": target}, data=data)
                tried += 1
                where = f"{method} {path} url={target!r}"
                assert response.status_code < 500, where
                location = response.headers.get("Location")
                if location is not None:
                    assert lands_on_site(location), f"{where} -> {location!r}"
                    assert "evil" not in unquote(location), f"{where} -> {location!r}"
                # The Cancel/back links of a rendered page come from the same parameter.
                assert "evil.example" not in response.get_data(as_text=True), where
    # The POSTs with a hostile return address changed nothing: the product is still there.
    assert fresh().get(Product, product_id, populate_existing=True) is not None
    assert tried > 400


def test_a_safe_admin_return_address_still_works(staff_browser: FlaskClient, products: Any) -> None:
    product_id = products["Product A"].id
    page = staff_browser.get("/admin/products/edit/", query_string={"id": product_id, "url": "/admin/products/?page=0"})
    assert page.status_code == 200
    assert 'href="/admin/products/?page=0"' in page.get_data(as_text=True)


@pytest.mark.parametrize("target", BYPASSES)
def test_log_in_next_never_leaves_the_site(client: FlaskClient, make_user: Any, target: str) -> None:
    make_user("ann@example.com")
    response = client.post(
        "/account/login", query_string={"next": target}, data={"email": "ann@example.com", "password": PASSWORD}
    )
    if "\x00" in target:
        assert response.status_code == 400  # NUL in a parameter is refused before any view runs
        return
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize("target", ["http:/evil.example", "/\\evil.example", "%2F%2Fevil.example", "ht\ttp://x"])
def test_logged_out_staff_following_a_hostile_admin_link_lands_on_the_site(
    app: Flask, make_user: Any, products: Any, target: str
) -> None:
    make_user("ann@example.com", staff=True)
    browser = app.test_client()
    product_id = products["Product A"].id
    response = browser.get("/admin/products/edit/", query_string={"id": product_id, "url": target})
    assert response.status_code == 302 and "/account/login" in response.headers["Location"]
    login_page = response.headers["Location"]
    response = browser.post(login_page, data={"email": "ann@example.com", "password": PASSWORD})
    hops = []
    while response.status_code in (301, 302, 303):
        location = response.headers["Location"]
        hops.append(location)
        assert lands_on_site(location), hops
        response = browser.get(location)
    assert response.status_code == 200, hops
    assert "evil" not in response.get_data(as_text=True)
    assert hops[-1].startswith("/admin/products/edit/") and "url=" not in hops[-1]
