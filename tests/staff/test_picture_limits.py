"""Issue 26, finding 5: picture uploads under real settings.

- The upload view's own body cap (PICTURE_UPLOAD_MAX_BYTES) holds before any body parsing, CSRF included:
  with CSRF on (as in production) a 1 MB picture was refused with 413 by the global 64 KiB cap.
- A PNG whose text chunk inflates past Pillow's limit, and a full disk, answered 500: now a clear refusal
  beside the field (400, like every refused picture) and a 503 "could not be stored", both logged.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

from PIL import Image
from sqlalchemy import select

from shopapp.models import Product
from shopapp.services import accounts, catalog
from tests.conftest import PASSWORD, fresh
from tests.security.conftest import csrf_token_from as csrf_token

ROOT = Path(__file__).resolve().parents[2]


def noisy_png(side: int = 600) -> bytes:
    """A PNG of random pixels: about 1 MB that no compression shrinks."""
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def png_with_text_bomb(inflated: int = 20 * 1024 * 1024) -> bytes:
    """A 10 x 10 PNG with a zTXt chunk of a few KB that inflates to `inflated` bytes."""
    out = io.BytesIO()
    Image.new("RGB", (10, 10)).save(out, format="PNG")
    data = out.getvalue()
    body = b"Comment\x00\x00" + zlib.compress(b"A" * inflated, 9)
    chunk = struct.pack(">I", len(body)) + b"zTXt" + body + struct.pack(">I", zlib.crc32(b"zTXt" + body) & 0xFFFFFFFF)
    return data[:33] + chunk + data[33:]  # after the IHDR chunk


def _staff_browser(app):
    browser = app.test_client()
    token = csrf_token(browser.get("/account/login").get_data(as_text=True))
    login = {"email": "ann@example.com", "password": PASSWORD, "csrf_token": token}
    assert browser.post("/account/login", data=login).status_code == 302
    return browser


def _upload(browser, product_id: int, data: bytes, name: str):
    url = f"/admin/products/picture/{product_id}"
    token = csrf_token(browser.get(url).get_data(as_text=True))
    form = {"csrf_token": token, "alt": "", "upload": "Upload picture", "picture": (io.BytesIO(data), name)}
    return browser.post(url, data=form, content_type="multipart/form-data")


def test_a_one_megabyte_picture_uploads_with_csrf_on(app_factory):
    app = app_factory(WTF_CSRF_ENABLED=True)  # a fresh schema: products and staff are made on it below
    catalog.seed_demo_products()
    products = {p.name: p for p in catalog.list_active_products()}
    accounts.create_user("ann@example.com", PASSWORD, is_staff=True)
    browser = _staff_browser(app)
    picture = noisy_png()
    assert 900_000 < len(picture) < app.config["PICTURE_MAX_BYTES"]
    product = products["Product A"]
    response = _upload(browser, product.id, picture, "noise.png")
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    stored = fresh().scalar(select(Product.image_name).where(Product.id == product.id))
    assert stored and stored.endswith(".png")
    # Everywhere else the global cap still holds, before any parsing: a 1 MB log-in form is a 413.
    token = csrf_token(browser.get("/account/login").get_data(as_text=True))
    assert browser.post("/account/login", data={"csrf_token": token, "email": "x" * 1_000_000}).status_code == 413


def test_a_png_text_chunk_bomb_is_refused_with_a_message(app, staff_client, products, caplog):
    response = _upload(staff_client, products["Product A"].id, png_with_text_bomb(), "bomb.png")
    page = response.get_data(as_text=True)
    assert response.status_code == 400, page[:2000]
    assert "metadata that expands far beyond its size" in page
    assert any("Picture refused" in r.getMessage() for r in caplog.records)


FULL_DISK_SCRIPT = textwrap.dedent(
    """
    import io, os, re, sys
    from PIL import Image
    from shopapp import create_app
    from shopapp.extensions import db
    from shopapp.services import accounts, catalog
    app = create_app("testing", SQLALCHEMY_DATABASE_URI="sqlite:///" + sys.argv[1], UPLOAD_FOLDER=sys.argv[2],
                     STRIPE_HTTP_CLIENT=None)
    with app.app_context():
        db.create_all()
        catalog.seed_demo_products()
        accounts.create_user("ann@example.com", "correct horse battery", is_staff=True)
        product_id = catalog.list_active_products()[0].id
    browser = app.test_client()
    browser.post("/account/login", data={"email": "ann@example.com", "password": "correct horse battery"})
    image = Image.frombytes("RGB", (300, 300), os.urandom(300 * 300 * 3))
    out = io.BytesIO()
    image.save(out, format="PNG")
    url = f"/admin/products/picture/{product_id}"
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', browser.get(url).get_data(as_text=True))
    form = {"alt": "", "upload": "Upload picture", "picture": (io.BytesIO(out.getvalue()), "p.png"),
            "csrf_token": token.group(1)}
    response = browser.post(url, data=form, content_type="multipart/form-data")
    print("STATUS", response.status_code)
    print(response.get_data(as_text=True))
    """
)


def test_a_full_disk_is_a_503_that_says_so(tmp_path):
    """The upload folder is a 16 KiB tmpfs (mounted in a private mount namespace by unshare): writing the
    picture fails with ENOSPC, as on a full disk."""
    assert shutil.which("unshare"), "util-linux's unshare is needed"
    folder = tmp_path / "uploads"
    folder.mkdir()
    script = tmp_path / "upload.py"
    script.write_text(FULL_DISK_SCRIPT)
    mount = (
        f"mount -t tmpfs -o size=16k none {folder} && exec {sys.executable} {script} {tmp_path / 'shop.db'} {folder}"
    )
    result = subprocess.run(
        ["unshare", "-Urm", "sh", "-c", mount],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "STATUS 503" in result.stdout, result.stdout[:300] + result.stderr[-2000:]
    assert "could not be stored (No space left on device)" in result.stdout
    assert "free space in the upload folder" in result.stdout
    assert "not stored in" in result.stderr and "No space left on device" in result.stderr
