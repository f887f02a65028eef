"""The shopper's journey (issue 15): units held by open checkouts are "reserved", not "Sold out"."""

from __future__ import annotations

import re

from shopapp.extensions import db
from shopapp.models import Product
from tests.conftest import session_id_from
from tests.support import cancel_path


def test_last_units_held_by_an_open_checkout_say_when_they_may_come_back(app, client, shopper, buy, products, emulator):
    product = db.session.get(Product, products["Product A"].id)
    product.stock = 2
    db.session.commit()
    session_id = session_id_from(buy(A=2))  # this checkout holds the last two units
    page = client.get("/").get_data(as_text=True)
    assert "Sold out" not in page
    match = re.search(r"All reserved by shoppers who are checking out; may come back within\s+(\d+) minutes", page)
    assert match and 1 <= int(match.group(1)) <= 31, page[:2000]
    # Once that checkout is closed the units are back.
    assert client.get(cancel_path(emulator, session_id)).status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "All reserved" not in page and "Only 2 left" in page


def test_sold_out_when_nothing_is_held(app, client, shopper, products):
    product = db.session.get(Product, products["Product B"].id)
    product.stock = 0
    db.session.commit()
    page = client.get("/").get_data(as_text=True)
    assert "Sold out" in page and "All reserved" not in page
