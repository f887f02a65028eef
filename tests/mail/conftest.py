"""Mail tests: every app talks SMTP to a real aiosmtpd server (tests/mail/mailbox.py), never a mock."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shopapp.models import Order, OrderStatus, User
from stripe_emulator import Emulator
from tests.conftest import fresh, order_for_session, session_id_from
from tests.mail.mailbox import Mailbox
from tests.support import deliver_webhooks_to


@pytest.fixture
def mailbox(tmp_path: Path) -> Iterator[Mailbox]:
    """A running SMTP server; refuses mail to refused@example.com with 550."""
    box = Mailbox(tmp_path / "mail", refuse=["refused@example.com"])
    box.start()
    yield box
    box.stop()


@pytest.fixture
def app(app_factory: Callable[..., Flask], emulator: Emulator, mailbox: Mailbox, tmp_path: Path) -> Flask:
    """The testing app, sending mail to `mailbox`; webhooks from the emulator go to its own test client."""
    application = app_factory(MAIL_PORT=mailbox.port, MAIL_DEV_DIR=str(mailbox.folder))
    deliver_webhooks_to(application, emulator)
    return application


@pytest.fixture
def paid_order(client: FlaskClient, shopper: User, buy: Callable[..., Any], emulator: Emulator) -> Callable[..., Order]:
    """A PAID order of the logged-in shopper, paid at the local Stripe service with its webhook delivered."""

    def make(**quantities: int) -> Order:
        order = order_for_session(session_id_from(buy(**(quantities or {"A": 2, "C": 1}))))
        assert emulator.pay(order.stripe_session_id).status == 303
        emulator.deliver_pending()
        paid = fresh().get(Order, order.id, populate_existing=True)
        assert paid is not None and paid.status == OrderStatus.PAID
        return paid

    return make


LINK = re.compile(r"http://shop\.test(/[^\s\"<>]+)")


def links_in(text: str) -> list[str]:
    """The shop paths linked from a message body."""
    return LINK.findall(text)
