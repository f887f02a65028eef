"""The orders list after issue 25: row links built once per page, no total count, same rows and links."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit


def _view_links(page: str) -> list[str]:
    return [html.unescape(href) for href in re.findall(r'href="(/admin/orders/details/\?[^"]+)"', page)]


def test_each_row_links_to_its_own_order_page_and_back_to_this_list(staff_client, paid_order):
    orders = [paid_order(A=1), paid_order(B=2)]
    page = staff_client.get("/admin/orders/?flt0_status_equals=paid").get_data(as_text=True)
    links = _view_links(page)
    assert len(links) == 2
    for link, order in zip(links, reversed(orders), strict=True):  # newest first
        query = parse_qs(urlsplit(link).query)
        assert query["id"] == [str(order.id)]
        assert query["url"] == ["/admin/orders/?flt0_status_equals=paid"]
        assert staff_client.get(link).status_code == 200  # the order page, with a way back to this list
    assert "List (" not in page  # no count over every order (the simple pager instead)


def test_a_return_address_with_braces_or_the_placeholder_keeps_the_links_intact(staff_client, paid_order):
    order = paid_order(A=1)
    for term in ("{row_id}", "{0}", "ROWIDPLACEHOLDER", "%"):
        response = staff_client.get("/admin/orders/", query_string={"note": term})
        assert response.status_code == 200
        (link,) = _view_links(response.get_data(as_text=True))
        query = parse_qs(urlsplit(link).query)
        assert query["id"] == [str(order.id)]
        assert parse_qs(urlsplit(query["url"][0]).query)["note"] == [term]
