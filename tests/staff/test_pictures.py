"""Product pictures: only real JPEG/PNG/WebP within the size and pixel budget, re-encoded without metadata."""

from __future__ import annotations

import io
import re
import struct
import zlib

import pytest
from PIL import Image
from sqlalchemy import select

from shopapp.models import Product, ProductChange
from tests.conftest import fresh


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def jpeg_with_exif(size: tuple[int, int] = (800, 600)) -> bytes:
    """A JPEG carrying EXIF (camera model and GPS-like tags) that must not survive."""
    image = Image.new("RGB", size, (200, 80, 40))
    exif = Image.Exif()
    exif[0x0110] = "Secret Camera 3000"  # Model
    exif[0x8825] = {1: "N"}  # GPS IFD
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb)."""
    out = io.BytesIO()
    Image.new("1", (1, 1)).save(out, format="PNG")
    data = bytearray(out.getvalue())
    ihdr = data[12:29]  # b"IHDR" + 13 bytes
    patched = b"IHDR" + struct.pack(">II", width, height) + bytes(ihdr[12:17])
    data[12:29] = patched
    data[29:33] = struct.pack(">I", zlib.crc32(patched) & 0xFFFFFFFF)
    return bytes(data)


def _upload(staff_client, product_id: int, data: bytes, filename: str, alt: str = ""):
    url = f"/admin/products/picture/{product_id}"
    token = _csrf(staff_client.get(url).get_data(as_text=True))
    return staff_client.post(
        url,
        data={"csrf_token": token, "alt": alt, "upload": "Upload picture", "picture": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


def test_a_good_picture_is_reencoded_without_metadata_and_shown(app, client, staff_client, products):
    product = products["Product A"]
    before = client.get("/").get_data(as_text=True)
    assert 'class="product-picture product-picture-none"' in before
    response = _upload(staff_client, product.id, jpeg_with_exif(), "photo.jpg", alt="A red mug")
    assert response.status_code == 303, response.get_data(as_text=True)[:3000]
    stored = fresh().get(Product, product.id, populate_existing=True)
    assert re.fullmatch(r"[0-9a-f]{64}\.jpg", stored.image_name)
    assert (stored.image_width, stored.image_height, stored.image_alt) == (800, 600, "A red mug")
    served = client.get(f"/pictures/{stored.image_name}")
    assert served.status_code == 200 and served.mimetype == "image/jpeg"
    assert "max-age=31536000" in served.headers["Cache-Control"] and "immutable" in served.headers["Cache-Control"]
    again = Image.open(io.BytesIO(served.data))
    assert again.size == (800, 600) and not again.getexif() and "exif" not in again.info
    page = client.get("/").get_data(as_text=True)  # the page cache keys on the picture too
    assert f'src="/pictures/{stored.image_name}"' in page
    assert re.search(r'width="800" height="600"\s+alt="A red mug"', page)
    audited = fresh().scalars(select(ProductChange.field).where(ProductChange.product_id == product.id)).all()
    assert "image" in audited and "image_alt" in audited


def test_without_alt_text_the_product_name_is_used(client, staff_client, products):
    product = products["Product B"]
    assert _upload(staff_client, product.id, jpeg_with_exif((40, 30)), "b.jpg").status_code == 303
    assert 'alt="Product B"' in client.get("/").get_data(as_text=True)


def test_a_large_picture_is_scaled_down(staff_client, products):
    out = io.BytesIO()
    Image.new("RGB", (4000, 2000), (1, 2, 3)).save(out, format="PNG")
    assert _upload(staff_client, products["Product C"].id, out.getvalue(), "big.png").status_code == 303
    stored = fresh().get(Product, products["Product C"].id, populate_existing=True)
    assert (stored.image_width, stored.image_height) == (1600, 800) and stored.image_name.endswith(".png")


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"name,price\nmug,12\n" * 20, "renamed.jpg", "This file is not a JPEG, PNG or WebP picture."),
        (
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "logo.svg",
            "SVG pictures are not accepted",
        ),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
            "logo.png",
            "SVG pictures are not accepted",
        ),
        (png_bomb(), "bomb.png", "more than the 25 million pixels allowed"),
        (
            png_bomb(6000, 5000),
            "wide.png",
            "The picture is 6000 x 5000 pixels: more than the 25 million pixels allowed",
        ),
        (b"", "empty.jpg", "Choose a picture file to upload."),
        (b"GIF89a" + b"\x00" * 64, "anim.gif", "This file is not a JPEG, PNG or WebP picture."),
    ],
)
def test_bad_files_are_refused_with_a_clear_message(staff_client, products, tmp_path, data, filename, message):
    product = products["Product A"]
    response = _upload(staff_client, product.id, data, filename)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True).replace("&#39;", "'")
    assert fresh().get(Product, product.id, populate_existing=True).image_name is None
    assert not list((tmp_path / "uploads").glob("*")) if (tmp_path / "uploads").exists() else True


def test_a_50_mb_file_is_refused_before_it_is_read(staff_client, products):
    product = products["Product A"]
    response = _upload(staff_client, product.id, b"\xff\xd8\xff" + b"\0" * (50 * 1024 * 1024), "huge.jpg")
    assert response.status_code == 413
    assert "The picture is larger than 5 MB; choose a smaller file." in response.get_data(as_text=True)
    assert fresh().get(Product, product.id, populate_existing=True).image_name is None


def test_unknown_picture_names_are_404(client):
    assert client.get("/pictures/../config.py").status_code == 404
    assert client.get("/pictures/" + "a" * 64 + ".jpg").status_code == 404
    assert client.get("/pictures/notahash.png").status_code == 404
