"""Product pictures: verified with Pillow, re-encoded without metadata, stored content-addressed.

What comes in is never stored as sent: the file must decode as a JPEG, PNG or WebP within a byte and a
pixel budget (checked from the header, before any pixel is decoded, so a decompression bomb is refused
without being expanded); it is then re-encoded from its pixels alone (no EXIF, GPS, ICC or comments),
scaled down to at most MAX_SIDE pixels, and stored as "<sha256>.<ext>" under UPLOAD_FOLDER. The name
changes with the content, so the file can be served with a one-year immutable cache.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from shopapp.models import Product
from shopapp.services import links, products
from shopapp.services.tx import write_transaction

# Formats accepted in and written out (Pillow format name -> file extension).
FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
STORED_NAME = re.compile(r"^[0-9a-f]{64}\.(jpg|png|webp)$")
# Longest side of the stored picture: a product card is at most ~400 CSS px wide (x2 for dense screens).
MAX_SIDE = 1600


class PictureError(ValueError):
    """A picture that was refused (the message is for staff)."""


class PictureStorageError(OSError):
    """The picture was fine but could not be written (disk full, folder not writable): an outage, 503."""


log = logging.getLogger("shopapp.pictures")


@dataclass(frozen=True)
class StoredPicture:
    """A picture as stored: its file name under UPLOAD_FOLDER and its pixel size."""

    name: str
    width: int
    height: int


def _looks_like_svg(data: bytes) -> bool:
    head = data[:1024].lstrip().lower()
    return head.startswith((b"<?xml", b"<svg", b"<!doctype svg")) or b"<svg" in head


def _too_many_pixels(max_pixels: int) -> str:
    return f"more than the {max_pixels // 1_000_000} million pixels allowed; use a smaller picture."


def verify_and_reencode(
    data: bytes, *, max_bytes: int, max_pixels: int, max_side: int = MAX_SIDE
) -> tuple[bytes, str, int, int]:
    """Check an uploaded file and return (re-encoded bytes, extension, width, height); PictureError otherwise.
    The stored picture is scaled down to at most `max_side` pixels on its longest side.

    Refused: empty or over `max_bytes`; SVG (it can carry script); anything Pillow cannot identify as
    JPEG, PNG or WebP (a renamed text file); more than `max_pixels` pixels (checked from the header
    before decoding: a decompression bomb); a file that fails to decode.
    """
    if not data:
        raise PictureError("Choose a picture file to upload.")
    if len(data) > max_bytes:
        raise PictureError(f"The picture is larger than {max_bytes // (1024 * 1024)} MB; choose a smaller file.")
    if _looks_like_svg(data):
        raise PictureError("SVG pictures are not accepted (they can contain scripts); upload a JPEG, PNG or WebP.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data), formats=list(FORMATS))
    except UnidentifiedImageError:
        raise PictureError("This file is not a JPEG, PNG or WebP picture.") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own guard (Image.MAX_IMAGE_PIXELS) fired while reading the header.
        raise PictureError(_too_many_pixels(max_pixels)) from None
    except ValueError as error:
        # Pillow's other guards while reading the header, e.g. a PNG text chunk that inflates beyond
        # PngImagePlugin.MAX_TEXT_CHUNK (a decompression bomb hidden in metadata): refused, never expanded.
        log.warning("Picture refused while reading its header: %s", error)
        raise PictureError(
            "This picture carries metadata that expands far beyond its size (a compressed text chunk); "
            "save it again without metadata, or export it as JPEG."
        ) from None
    width, height = opened.size  # from the header: nothing decoded yet
    if width <= 0 or height <= 0 or width * height > max_pixels:
        raise PictureError(f"The picture is {width} x {height} pixels: " + _too_many_pixels(max_pixels))
    extension = FORMATS[str(opened.format)]
    try:
        opened.load()
        image: Image.Image = ImageOps.exif_transpose(opened)  # keep the orientation the camera meant, then drop EXIF
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise PictureError(f"This picture could not be read ({type(error).__name__}); it may be damaged.") from None
    image.thumbnail((max_side, max_side))
    if extension == "jpg":
        image = image.convert("RGB")
    elif image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        image = image.convert("RGBA")
    # Only the pixels go out: with the info dict emptied no EXIF, XMP, ICC profile or text chunk is written.
    image.info = {}
    out = io.BytesIO()
    options: dict[str, dict[str, Any]] = {
        "JPEG": {"quality": 85, "optimize": True},
        "PNG": {"optimize": True},
        "WEBP": {"quality": 85},
    }
    pillow_format = next(name for name, ext in FORMATS.items() if ext == extension)
    image.save(out, format=pillow_format, **options[pillow_format])
    return out.getvalue(), extension, image.width, image.height


def write_file(folder: Path, name: str, data: bytes) -> None:
    """Store `data` as `folder/name` atomically (a reader never sees half a file); kept if already there."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if target.exists():
        return  # same content, same name
    # Written aside then renamed, so a reader never sees half a file.
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".upload-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def store_picture(
    product_id: int,
    data: bytes,
    *,
    folder: Path,
    max_bytes: int,
    max_pixels: int,
    actor: str,
    alt: str | None = None,
) -> StoredPicture:
    """Verify, re-encode and store a product's picture, and point the product at it (audited, one transaction).

    `alt` replaces the alt text when given (empty keeps the product name as alt). Raises PictureError for a
    refused file, products.ProductInputError for an over-long alt, LookupError for an unknown product and
    PictureStorageError when the file cannot be written (disk full).
    """
    encoded, extension, width, height = verify_and_reencode(data, max_bytes=max_bytes, max_pixels=max_pixels)
    if alt is not None and len(alt.strip()) > products.MAX_ALT_LENGTH:
        raise products.ProductInputError({"alt": f"At most {products.MAX_ALT_LENGTH} characters."})
    name = f"{hashlib.sha256(encoded).hexdigest()}.{extension}"
    try:
        write_file(folder, name, encoded)
    except OSError as error:
        log.error("Picture for product %s not stored in %s: %s", product_id, folder, error)
        raise PictureStorageError(
            f"The picture could not be stored ({os.strerror(error.errno) if error.errno else error}); nothing "
            "was changed. Staff: free space in the upload folder (UPLOAD_FOLDER), then upload it again."
        ) from error
    with write_transaction() as session:
        product = session.get(Product, product_id, with_for_update=True, populate_existing=True)
        if product is None:
            raise LookupError(product_id)
        before = products._snapshot(product)
        product.image_name, product.image_width, product.image_height = name, width, height
        if alt is not None:
            product.image_alt = alt.strip()
        products.record_changes(session, product, before, actor)
    return StoredPicture(name, width, height)


def remove_picture(product_id: int, *, actor: str) -> None:
    """Take the picture off a product (the file stays: other products or cached pages may show it)."""
    with write_transaction() as session:
        product = session.get(Product, product_id, with_for_update=True, populate_existing=True)
        if product is None:
            raise LookupError(product_id)
        before = products._snapshot(product)
        product.image_name = product.image_width = product.image_height = None
        products.record_changes(session, product, before, actor)


def public_url(name: str) -> str:
    """Absolute URL of a stored picture (SHOP_BASE_URL + the picture route), for places outside the shop's
    pages that must fetch it themselves: Stripe Checkout's `product_data.images`."""
    return links.public_url("shop.picture", name=name)


def stored_file(folder: Path, name: str) -> Path | None:
    """The stored picture file for a URL name, or None if the name is not one of ours or is missing."""
    if not STORED_NAME.fullmatch(name):
        return None
    path = folder / name
    return path if path.is_file() else None
