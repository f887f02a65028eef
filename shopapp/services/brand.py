"""The shop's brand and its footer pages: what every page, email and payment page says the shop is.

Staff edit them in the admin (admin/views/brand.py); until the first save the defaults below apply, so a new
shop already reads as a shop. Page texts are Markdown rendered by markdown-it-py (CommonMark, raw HTML off)
and then sanitised by nh3 (an allow-list HTML cleaner), so a pasted <script> or javascript: link never runs.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

import nh3
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import lazy_gettext as _l
from markdown_it import MarkdownIt
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from shopapp.extensions import db
from shopapp.models import ShopSettings
from shopapp.services import pictures
from shopapp.services.tx import write_transaction

HEX_COLOR = re.compile(r"^#[0-9a-f]{6}$")
MAX_NAME, MAX_FOOTER, MAX_ADDRESS, MAX_PAGE = 80, 200, 500, 20_000
# White text on the accent (buttons) must pass WCAG 2.2 AA for normal text.
MIN_CONTRAST = 4.5
# The logo is shown at most 48 px high (96 on dense screens): larger files only cost bandwidth.
LOGO_MAX_SIDE = 400


class PageSlug(StrEnum):
    """The footer pages staff write; the value is the URL segment and the settings column's prefix."""

    CONTACT = "contact"
    TERMS = "terms"
    PRIVACY = "privacy"
    RETURNS = "returns"

    @property
    def heading(self) -> str:
        """The page's heading and footer link text, in the request's language."""
        headings = {"contact": _l("Contact"), "terms": _l("Terms"), "privacy": _l("Privacy"), "returns": _l("Returns")}
        return str(headings[self.value])


DEFAULT_PAGES = {
    PageSlug.CONTACT: (
        "We answer every message within one working day.\n\n"
        "- Email: write to the address below.\n- Post: see our address below.\n\n"
        "Please quote your order number (for example **#1042**) so we can find it at once."
    ),
    PageSlug.TERMS: (
        "## Orders\n\nYour order is accepted when payment succeeds; you receive a receipt by email.\n\n"
        "## Prices\n\nPrices are shown in the product's currency and include all fees.\n\n"
        "## Delivery\n\nWe ship paid orders within two working days and email you when they leave."
    ),
    PageSlug.PRIVACY: (
        "We keep your email address, your orders and your delivery address to deliver what you buy and to "
        "keep the accounts the law asks us to keep.\n\n"
        "Card details go to our payment provider, Stripe; we never see or store your card number.\n\n"
        "Write to us to receive a copy of your data or to have your account closed."
    ),
    PageSlug.RETURNS: (
        "Changed your mind? Return any unused item within **30 days** of delivery for a full refund.\n\n"
        "1. Write to us with your order number.\n2. Send the item back to our address.\n"
        "3. We refund to the card you paid with within five working days of receiving it."
    ),
}


@dataclass(frozen=True)
class Brand:
    """The shop as shoppers see it; hashable, so cached pages can be keyed by it."""

    shop_name: str
    accent_color: str  # "#rrggbb"
    contact_email: str
    postal_address: str  # lines separated by "\n"
    footer_line: str
    order_email: str  # "new paid order" notices go here; "" for none
    logo_name: str | None = None
    logo_width: int | None = None
    logo_height: int | None = None

    @property
    def address_lines(self) -> list[str]:
        """The postal address, one line each, blank lines dropped."""
        return [line.strip() for line in self.postal_address.splitlines() if line.strip()]

    @property
    def accent_dark(self) -> str:
        """The accent darkened by a fifth, for hover states."""
        r, g, b = (int(self.accent_color[i : i + 2], 16) for i in (1, 3, 5))
        return "#{:02x}{:02x}{:02x}".format(*(int(c * 0.8) for c in (r, g, b)))

    @property
    def stylesheet(self) -> str:
        """The CSS that paints the shop in its accent colour (served as a file: the CSP allows no inline style)."""
        return f":root {{ --brand: {self.accent_color}; --brand-dark: {self.accent_dark}; }}\n"

    @property
    def version(self) -> str:
        """A short hash of everything the brand stylesheet depends on, for its cache-busting URL."""
        return hashlib.sha256(self.stylesheet.encode()).hexdigest()[:12]


def default_brand(shop_name: str) -> Brand:
    """The brand before staff first save one: the configured name (config SHOP_NAME) and calm defaults."""
    return Brand(
        shop_name=shop_name,
        accent_color="#2f3e9e",
        contact_email="hello@tidy-shop.example",
        postal_address="Tidy Shop Ltd\n12 Harbour Street\nBristol BS1 4RN\nUnited Kingdom",
        footer_line="Small-batch homeware, packed by hand and shipped within two working days.",
        order_email="",  # staff choose where new-order notices go (admin, Brand); none until then
    )


def _from_row(row: ShopSettings) -> Brand:
    return Brand(
        shop_name=row.shop_name,
        accent_color=row.accent_color,
        contact_email=row.contact_email,
        postal_address=row.postal_address,
        footer_line=row.footer_line,
        order_email=row.order_email,
        logo_name=row.logo_name,
        logo_width=row.logo_width,
        logo_height=row.logo_height,
    )


def current_brand(default_name: str) -> Brand:
    """The saved brand, or the defaults (with `default_name`, config SHOP_NAME) before the first save. One query."""
    # Never flushes: pages (error pages included) read the brand while the request may hold unflushed changes.
    with db.session.no_autoflush:
        row = db.session.get(ShopSettings, 1)
    return _from_row(row) if row is not None else default_brand(default_name)


_CACHE_KEY = "shop_brand_cache"


def cached_brand() -> Brand:
    """The brand as pages, the payment page and the owner's notice use it: read at most once per
    BRAND_CACHE_SECONDS per process (config; it changes rarely, and every page shows it, so it must not cost
    a query per page). A save in this process is seen at once; other processes see it within that time."""
    cache = current_app.extensions.get(_CACHE_KEY)
    now = time.monotonic()
    if cache is not None and cache[0] > now:
        return cache[1]  # type: ignore[no-any-return]
    value = current_brand(current_app.config["SHOP_NAME"])
    current_app.extensions[_CACHE_KEY] = (now + current_app.config["BRAND_CACHE_SECONDS"], value)
    return value


def last_known_brand() -> Brand:
    """The brand this process last read, however old, or the defaults: for pages drawn while the database
    cannot answer (an error page must still have its frame)."""
    cache = current_app.extensions.get(_CACHE_KEY)
    return cache[1] if cache is not None else default_brand(current_app.config["SHOP_NAME"])  # type: ignore[no-any-return]


def forget_cached_brand() -> None:
    """Drop this process's cached brand (after staff saved a new one)."""
    current_app.extensions.pop(_CACHE_KEY, None)


def session_branding() -> dict[str, str]:
    """Checkout Session `branding_settings`: the brand's name and accent for the payment page.

    At Stripe the business name on Checkout, receipts and statements comes from the account (Dashboard,
    Settings > Public details); `branding_settings.display_name` overrides only the name at the top of the
    Checkout page (stripe-python SessionCreateParamsBrandingSettings), so the shop sends it on every session
    and the account's public details should carry the same legal name.
    """
    current = cached_brand()
    return {"display_name": current.shop_name, "button_color": current.accent_color}


def order_address() -> str:
    """Where "new paid order" notices go: the saved order address ("" = none wanted); see cached_brand."""
    return cached_brand().order_email


def page_markdown(slug: PageSlug) -> str:
    """A footer page's Markdown as staff saved it, or the default text."""
    text = db.session.scalar(select(getattr(ShopSettings, f"{slug.value}_page")).where(ShopSettings.id == 1))
    return text if text else DEFAULT_PAGES[slug]


_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_ALLOWED_TAGS = {"p", "br", "strong", "em", "ul", "ol", "li", "a", "h2", "h3", "h4", "blockquote", "code", "pre", "hr"}


def render_markdown(text: str) -> Markup:
    """Staff Markdown as safe HTML: CommonMark without raw HTML, then nh3's allow-list (no scripts, styles,
    event handlers or javascript: URLs; links get rel="noopener noreferrer")."""
    html = _MARKDOWN.render(text)
    return Markup(
        nh3.clean(
            html, tags=_ALLOWED_TAGS, attributes={"a": {"href", "title"}}, url_schemes={"http", "https", "mailto"}
        )
    )


def contrast_ratio(foreground: str, background: str) -> float:
    """WCAG 2.2 contrast ratio of two "#rrggbb" colours (1.0 to 21.0)."""

    def luminance(color: str) -> float:
        channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


class BrandInputError(ValueError):
    """Refused settings: a message per form field name."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


@dataclass(frozen=True)
class BrandInput:
    """What staff typed on the brand page (pages keyed by slug: Markdown; "" restores the default text)."""

    shop_name: str
    accent_color: str
    contact_email: str
    postal_address: str
    footer_line: str
    order_email: str
    pages: dict[PageSlug, str]


def _email(value: str, field: str, errors: dict[str, str], *, required: bool) -> str:
    value = value.strip()
    if not value:
        if required:
            errors[field] = "Enter an email address."
        return ""
    try:
        return validate_email(value, check_deliverability=False, test_environment=True).normalized
    except EmailNotValidError as error:
        errors[field] = str(error)
        return value


def _validate(data: BrandInput) -> BrandInput:
    errors: dict[str, str] = {}
    name = " ".join(data.shop_name.split())
    if not name:
        errors["shop_name"] = "Enter the shop's name."
    elif len(name) > MAX_NAME:
        errors["shop_name"] = f"At most {MAX_NAME} characters."
    color = data.accent_color.strip().lower()
    if not HEX_COLOR.fullmatch(color):
        errors["accent_color"] = 'Enter a colour as #rrggbb, for example "#2f3e9e".'
    elif (ratio := contrast_ratio(color, "#ffffff")) < MIN_CONTRAST:
        errors["accent_color"] = (
            f"White text on {color} has a contrast of {ratio:.1f}:1; buttons need at least {MIN_CONTRAST}:1 "
            "(WCAG AA). Choose a darker colour."
        )
    contact = _email(data.contact_email, "contact_email", errors, required=True)
    order_email = _email(data.order_email, "order_email", errors, required=False)
    address = "\n".join(line.rstrip() for line in data.postal_address.strip().splitlines())
    if len(address) > MAX_ADDRESS:
        errors["postal_address"] = f"At most {MAX_ADDRESS} characters."
    footer = " ".join(data.footer_line.split())
    if len(footer) > MAX_FOOTER:
        errors["footer_line"] = f"At most {MAX_FOOTER} characters."
    for slug, text in data.pages.items():
        if len(text) > MAX_PAGE:
            errors[f"{slug.value}_page"] = f"At most {MAX_PAGE:,} characters."
    if errors:
        raise BrandInputError(errors)
    return replace(
        data,
        shop_name=name,
        accent_color=color,
        contact_email=contact,
        postal_address=address,
        footer_line=footer,
        order_email=order_email,
        pages={slug: text.strip() for slug, text in data.pages.items()},
    )


def _settings_row(session: Session, default_name: str) -> ShopSettings:
    row = session.get(ShopSettings, 1, with_for_update=True, populate_existing=True)
    if row is None:
        base = default_brand(default_name)
        row = ShopSettings(
            id=1,
            shop_name=base.shop_name,
            accent_color=base.accent_color,
            contact_email=base.contact_email,
            postal_address=base.postal_address,
            footer_line=base.footer_line,
            order_email=base.order_email,
        )
        session.add(row)
    return row


def save_brand(data: BrandInput, *, actor: str, default_name: str) -> Brand:
    """Validate and store the brand and page texts (one transaction); BrandInputError names each refused field."""
    clean = _validate(data)
    with write_transaction() as session:
        row = _settings_row(session, default_name)
        row.shop_name, row.accent_color = clean.shop_name, clean.accent_color
        row.contact_email, row.order_email = clean.contact_email, clean.order_email
        row.postal_address, row.footer_line = clean.postal_address, clean.footer_line
        for slug, text in clean.pages.items():
            # The default text is stored as "" so later improvements to the default reach the shop.
            setattr(row, f"{slug.value}_page", "" if text == DEFAULT_PAGES[slug].strip() else text)
        row.updated_by = actor
        brand = _from_row(row)
    forget_cached_brand()
    return brand


def store_logo(data: bytes, *, folder: Path, max_bytes: int, max_pixels: int, actor: str, default_name: str) -> Brand:
    """Verify, re-encode (no metadata, at most LOGO_MAX_SIDE px) and store a logo; PictureError if refused."""
    encoded, extension, width, height = pictures.verify_and_reencode(
        data, max_bytes=max_bytes, max_pixels=max_pixels, max_side=LOGO_MAX_SIDE
    )
    name = f"{hashlib.sha256(encoded).hexdigest()}.{extension}"
    pictures.write_file(folder, name, encoded)
    with write_transaction() as session:
        row = _settings_row(session, default_name)
        row.logo_name, row.logo_width, row.logo_height = name, width, height
        row.updated_by = actor
        brand = _from_row(row)
    forget_cached_brand()
    return brand


def remove_logo(*, actor: str, default_name: str) -> Brand:
    """Show the shop's name instead of a logo (the file stays: cached pages may still show it)."""
    with write_transaction() as session:
        row = _settings_row(session, default_name)
        row.logo_name = row.logo_width = row.logo_height = None
        row.updated_by = actor
        brand = _from_row(row)
    forget_cached_brand()
    return brand
