"""The payment page shows the products' pictures (issue 22): the shop sends `product_data.images` (absolute URLs
under SHOP_BASE_URL, at most 8, Stripe's limit) for products with a picture, the local service's hosted page shows
them (allowed by its Content-Security-Policy), and a picture change alone is not a different cart: the open
session, which charges exactly the same, is reused (services/catalog.py line_items_hash)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import stripe
from flask import Flask
from PIL import Image
from werkzeug.test import Client

from shopapp.models import Product
from shopapp.services import pictures
from shopapp.services.catalog import line_items_for, line_items_hash
from stripe_emulator import Emulator
from tests.conftest import session_id_from


def _png(colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(out, "PNG")
    return out.getvalue()


def _picture(app: Flask, product: Product, colour: str) -> str:
    stored = pictures.store_picture(
        product.id,
        _png(colour),
        folder=Path(app.config["UPLOAD_FOLDER"]),
        max_bytes=app.config["PICTURE_MAX_BYTES"],
        max_pixels=app.config["PICTURE_MAX_PIXELS"],
        actor="test",
    )
    return stored.name


def test_the_session_carries_the_pictures_and_the_hosted_page_shows_them(
    app: Flask, client: Any, shopper: Any, buy: Callable[..., Any], products: dict[str, Product], emulator: Emulator
) -> None:
    _picture(app, products["Product A"], "red")
    response = buy(A=1, C=2)
    session_id = session_id_from(response)
    items = emulator.store.line_items[session_id]
    image = f"{app.config['SHOP_BASE_URL']}/pictures/"
    assert len(items[0]["_images"]) == 1 and items[0]["_images"][0].startswith(image)
    assert items[1]["_images"] == []  # Product C has no picture: its initials stand in
    assert client.get(urlsplit(items[0]["_images"][0]).path).status_code == 200  # the URL serves the picture

    page = Client(emulator.wsgi_app).get(urlsplit(response.headers["Location"]).path)
    html = page.get_data(as_text=True)
    assert f'<img class="thumb" src="{items[0]["_images"][0]}" alt=""' in html
    assert html.count('<span class="thumb" aria-hidden="true">') == 1
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(app.config["SHOP_BASE_URL"]))
    assert f"img-src 'self' {origin};" in page.headers["Content-Security-Policy"]


def test_a_new_picture_alone_keeps_the_open_session(
    app: Flask, shopper: Any, buy: Callable[..., Any], products: dict[str, Product], emulator: Emulator
) -> None:
    _picture(app, products["Product A"], "red")
    first = buy(A=1)
    _picture(app, products["Product A"], "blue")  # staff replaced the picture: same amounts, names, quantities
    again = buy(A=1)
    assert again.headers["Location"] == first.headers["Location"]
    assert len(emulator.sessions) == 1


def test_the_hash_ignores_pictures_but_not_what_is_charged() -> None:
    plain = line_items_for("usd", [("Mug", 1999, 2)])
    pictured = line_items_for("usd", [("Mug", 1999, 2)], [["https://shop.example/pictures/a.png"]])
    assert pictured[0]["price_data"]["product_data"]["images"] == ["https://shop.example/pictures/a.png"]
    assert line_items_hash(plain) == line_items_hash(pictured)
    assert line_items_hash(plain) != line_items_hash(line_items_for("usd", [("Mug", 2099, 2)]))
    many = line_items_for("usd", [("Mug", 1999, 1)], [[f"https://shop.example/{i}.png" for i in range(12)]])
    assert len(many[0]["price_data"]["product_data"]["images"]) == 8  # Stripe's limit


@pytest.mark.parametrize(
    ("images", "param"),
    [
        ([f"https://shop.example/{i}.png" for i in range(9)], "line_items[0][price_data][product_data][images]"),
        (["/pictures/a.png"], "line_items[0][price_data][product_data][images][0]"),
    ],
)
def test_the_local_service_refuses_images_stripe_refuses(
    stripe_dashboard: stripe.StripeClient, images: list[str], param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_dashboard.v1.checkout.sessions.create(
            params={
                "mode": "payment",
                "success_url": "https://shop.example/ok",
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": "usd",
                            "unit_amount": 500,
                            "product_data": {"name": "Mug", "images": images},
                        },
                    }
                ],
            }
        )
    assert refused.value.param == param
