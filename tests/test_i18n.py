"""Languages (issue 22): English and German, chosen from Accept-Language or the footer's switch (a cookie),
translated completely (the catalog has no untranslated or fuzzy entry, and holds every marked string), emails in
the shopper's language, and the Checkout Session in the matching Stripe `locale`."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import stripe
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask import Flask
from sqlalchemy import select

from shopapp.models import MailKind, OutboxMessage, User
from shopapp.services import accounts, mail
from stripe_emulator import Emulator
from tests.conftest import PASSWORD, fresh, session_id_from

ROOT = Path(__file__).resolve().parent.parent
CATALOGS = sorted((ROOT / "shopapp" / "translations").glob("*/LC_MESSAGES/messages.po"))


def _catalog(path: Path) -> Any:
    with path.open("rb") as handle:
        return read_po(handle)


def test_there_is_a_second_language() -> None:
    assert [p.parent.parent.name for p in CATALOGS] == ["de"]


@pytest.mark.parametrize("po", CATALOGS, ids=lambda p: p.parent.parent.name)
def test_every_entry_is_translated_and_none_is_fuzzy(po: Path) -> None:
    catalog = _catalog(po)
    untranslated = [m.id for m in catalog if m.id and not (all(m.string) if isinstance(m.string, tuple) else m.string)]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert untranslated == [] and fuzzy == []
    assert len([m for m in catalog if m.id]) > 200


@pytest.mark.parametrize("po", CATALOGS, ids=lambda p: p.parent.parent.name)
def test_the_committed_mo_is_the_compiled_po(po: Path) -> None:
    """The .mo files are committed (a fresh clone runs without a build step): they must match their .po."""
    with po.with_suffix(".mo").open("rb") as handle:
        compiled = read_mo(handle)

    def table(catalog: Any) -> dict[Any, Any]:
        def plain(value: Any) -> Any:
            return tuple(value) if isinstance(value, (list, tuple)) else value

        return {plain(m.id): plain(m.string) for m in catalog if m.id}

    assert table(compiled) == table(_catalog(po))


def test_the_catalog_holds_every_marked_string(tmp_path: Path) -> None:
    """Extracting again finds nothing the catalog lacks (run scripts/i18n.sh after changing a string)."""
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg", "-k", "_l", "-k",
         "lazy_gettext", "--no-location", "-o", str(pot), "."],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    with pot.open("rb") as handle:
        extracted = {m.id for m in read_po(handle) if m.id}
    for po in CATALOGS:
        assert extracted - {m.id for m in _catalog(po) if m.id} == set()


def test_the_browser_language_chooses_and_the_footer_switch_remembers(app: Flask, products: Any) -> None:
    browser = app.test_client()
    assert "Our products" in browser.get("/").get_data(as_text=True)
    german = browser.get("/", headers={"Accept-Language": "de-CH,de;q=0.9,en;q=0.5"})
    page = german.get_data(as_text=True)
    assert '<html lang="de">' in page and "Unsere Produkte" in page and "Zum Kaufen anmelden" in page
    assert "Accept-Language" in german.headers["Vary"]
    # The footer's switch: a cookie, whatever the browser says afterwards.
    switched = browser.get("/language/de", headers={"Referer": "http://shop.test/products/1"})
    assert switched.status_code == 303 and switched.headers["Location"] == "/products/1"
    assert "language=de" in switched.headers["Set-Cookie"]
    assert "Unsere Produkte" in browser.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert browser.get("/language/xx").status_code == 303  # an unknown language changes nothing
    assert "Unsere Produkte" in browser.get("/").get_data(as_text=True)
    # Staff pages stay English.
    assert browser.get("/language/en").status_code == 303
    assert "Our products" in browser.get("/").get_data(as_text=True)


def test_sign_up_in_german_with_its_form_errors_and_welcome_email(app: Flask, products: Any) -> None:
    browser = app.test_client()
    assert browser.get("/language/de").status_code == 303  # the footer switch
    form = browser.get("/account/signup").get_data(as_text=True)
    assert "Konto erstellen" in form and "Passwort wiederholen" in form
    refused = browser.post("/account/signup", data={"email": "not-an-address", "password": "x", "confirm": "y"})
    errors = " ".join(re.findall(r'<ul class="field-errors"[^>]*>(.*?)</ul>', refused.get_data(as_text=True)))
    assert "Ungültige E-Mail-Adresse" in errors and "Die Passwörter müssen übereinstimmen." in errors
    done = browser.post(
        "/account/signup", data={"email": "anna@example.com", "password": PASSWORD, "confirm": PASSWORD}
    )
    assert done.status_code in (302, 303)
    user = fresh().scalar(select(User).where(User.email == "anna@example.com"))
    assert user is not None and user.locale == "de"
    welcome = fresh().scalar(select(OutboxMessage).where(OutboxMessage.kind == MailKind.WELCOME))
    composed = mail.compose(welcome)
    assert composed.subject.startswith("Willkommen bei ")
    assert "Hallo," in composed.text and "Ihr Konto für anna@example.com ist bereit." in composed.text
    assert 'lang="de"' in composed.html and "Zum Shop" in composed.html
    # The same message for an English account is English.
    english = accounts.create_user("eve@example.com", PASSWORD, locale="en")
    row = fresh().scalar(select(OutboxMessage).where(OutboxMessage.user_id == english.id))
    assert mail.compose(row).subject.startswith("Welcome to ")


def test_the_checkout_session_gets_the_shoppers_locale(
    client: Any, shopper: Any, buy: Callable[..., Any], emulator: Emulator
) -> None:
    assert client.get("/language/de").status_code == 303  # the footer switch
    session_id = session_id_from(buy(A=1))
    assert emulator.sessions[session_id]["locale"] == "de"


def test_the_local_service_accepts_stripes_locales_and_refuses_others(stripe_dashboard: stripe.StripeClient) -> None:
    def create(locale: str) -> Any:
        return stripe_dashboard.v1.checkout.sessions.create(
            params={
                "mode": "payment",
                "success_url": "https://shop.example/ok",
                "locale": locale,
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {"currency": "eur", "unit_amount": 500, "product_data": {"name": "M"}},
                    }
                ],
            }
        )

    for accepted in ("auto", "de", "en", "fr-CA", "pt-BR"):
        assert create(accepted).locale == accepted
    with pytest.raises(stripe.InvalidRequestError) as refused:
        create("de-DE")  # Stripe's list has "de" only
    assert refused.value.param == "locale"


def test_the_order_status_and_receipt_read_in_german(app: Flask, client: Any, shopper: Any, paid_order: Any) -> None:
    order = paid_order()
    assert client.get("/language/de").status_code == 303  # the footer switch
    page = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert f"Bestellung Nr. {order.id}" in page and "Bezahlt" in page and "Beleg drucken" in page
    assert "Zahlungsmethode: Visa mit Endziffern 4242" in page
