"""Pictures of the demo products, drawn by `flask seed` with Pillow (no downloaded images, no licence to track).

Each picture is drawn deterministically (same pixels on every machine and run), so storing it again gives the
same content-hashed file name, and a product that already has a picture is left alone: seeding stays idempotent.
The drawings are original work of this project, under the project's own licence.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter
from sqlalchemy import select

from shopapp.extensions import db
from shopapp.models import Product
from shopapp.services import pictures

WIDTH, HEIGHT = 1200, 900  # 4:3, the product card's box
Color = tuple[int, int, int]


def _backdrop(top: Color, bottom: Color) -> Image.Image:
    """A soft vertical gradient with a table edge, as in a studio product photo."""
    image = Image.new("RGB", (WIDTH, HEIGHT))
    draw = ImageDraw.Draw(image)
    for y in range(HEIGHT):
        t = y / HEIGHT
        draw.line([(0, y), (WIDTH, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    draw.rectangle([0, int(HEIGHT * 0.72), WIDTH, HEIGHT], fill=tuple(max(0, c - 18) for c in bottom))
    return image


def _shadow(image: Image.Image, box: tuple[int, int, int, int]) -> None:
    """A blurred ellipse under an object standing on the table."""
    layer = Image.new("L", image.size, 0)
    ImageDraw.Draw(layer).ellipse(box, fill=110)
    layer = layer.filter(ImageFilter.GaussianBlur(24))
    image.paste((40, 40, 50), mask=layer)


def _mug(image: Image.Image) -> None:
    """Product A: a stoneware mug with a glazed rim."""
    _shadow(image, (380, 640, 860, 720))
    draw = ImageDraw.Draw(image)
    body, rim, glaze = (214, 122, 84), (245, 236, 222), (186, 98, 64)
    draw.ellipse([760, 360, 930, 560], outline=body, width=34)  # handle
    draw.rounded_rectangle([380, 300, 800, 690], radius=60, fill=body)
    draw.rectangle([380, 300, 800, 380], fill=rim)
    draw.ellipse([380, 270, 800, 330], fill=rim)
    draw.ellipse([400, 280, 780, 322], fill=(120, 70, 52))  # inside
    for x in range(430, 760, 70):  # glaze drips
        draw.rounded_rectangle([x, 370, x + 28, 420 + (x % 3) * 22], radius=14, fill=rim)
    draw.rounded_rectangle([420, 420, 450, 640], radius=15, fill=glaze)  # highlight


def _vase(image: Image.Image) -> None:
    """Product B: a tall two-tone vase with a sprig."""
    _shadow(image, (440, 660, 780, 730))
    draw = ImageDraw.Draw(image)
    stem = (76, 110, 74)
    draw.line([(610, 300), (560, 90)], fill=stem, width=10)
    draw.line([(610, 300), (690, 120)], fill=stem, width=10)
    for cx, cy in ((560, 90), (690, 120), (600, 170), (650, 210), (575, 230)):
        draw.ellipse([cx - 34, cy - 18, cx + 34, cy + 18], fill=(104, 148, 96))
    body, band = (52, 84, 120), (233, 226, 210)
    draw.polygon(
        [(560, 290), (660, 290), (650, 360), (760, 520), (720, 700), (500, 700), (460, 520), (570, 360)], fill=body
    )
    draw.ellipse([545, 272, 675, 306], fill=(34, 58, 86))
    draw.polygon([(475, 480), (745, 480), (757, 540), (463, 540)], fill=band)
    draw.rounded_rectangle([510, 560, 532, 680], radius=11, fill=(84, 118, 156))


def _bowls(image: Image.Image) -> None:
    """Product C: a stack of three serving bowls."""
    _shadow(image, (300, 650, 900, 740))
    draw = ImageDraw.Draw(image)
    layers = [
        ((300, 520, 900, 700), (39, 70, 64)),
        ((350, 410, 850, 560), (196, 160, 96)),
        ((400, 310, 800, 440), (232, 222, 204)),
    ]
    for (x0, y0, x1, y1), color in layers:
        draw.chord([x0, y0 - (y1 - y0), x1, y1], start=0, end=180, fill=color)
        draw.ellipse([x0, y0 - 26, x1, y0 + 26], fill=tuple(min(255, c + 30) for c in color))
    draw.ellipse([430, 290, 770, 330], fill=(176, 160, 138))  # inside of the top bowl


ARTWORK: dict[str, tuple[Callable[[Image.Image], None], Color, Color, str]] = {
    "Product A": (_mug, (246, 239, 230), (226, 214, 198), "A terracotta stoneware mug with a cream glazed rim"),
    "Product B": (_vase, (232, 238, 242), (206, 216, 224), "A tall navy vase with a cream band and a green sprig"),
    "Product C": (_bowls, (240, 236, 228), (218, 210, 196), "Three serving bowls stacked: green, ochre and cream"),
}


def draw(name: str) -> bytes:
    """The PNG bytes of a demo product's picture (KeyError for a name that is not a demo product)."""
    painter, top, bottom, _ = ARTWORK[name]
    image = _backdrop(top, bottom)
    painter(image)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def add_missing_pictures(*, folder: Path, max_bytes: int, max_pixels: int) -> int:
    """Give each demo product without a picture its drawing (through the pictures service, audited as
    "seed"); returns how many were added. Products that have a picture, staff's or ours, are left alone."""
    names = list(ARTWORK)
    missing = db.session.execute(
        select(Product.id, Product.name).where(Product.name.in_(names), Product.image_name.is_(None))
    ).all()
    db.session.rollback()  # end the read before the pictures service opens its write transaction
    for product_id, name in missing:
        pictures.store_picture(
            product_id, draw(name), folder=folder, max_bytes=max_bytes, max_pixels=max_pixels, actor="seed",
            alt=ARTWORK[name][3],
        )  # fmt: skip
    return len(missing)
