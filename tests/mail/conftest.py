"""Mail tests: every app talks SMTP to a real aiosmtpd server (tests/mail/mailbox.py), never a mock."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from stripe_emulator import Emulator
from tests.mail.mailbox import Mailbox
from tests.support import deliver_webhooks_to, sender_for


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
    mailbox.sender = sender_for(application)
    return application


LINK = re.compile(r"http://shop\.test(/[^\s\"<>]+)")


def links_in(text: str) -> list[str]:
    """The shop paths linked from a message body."""
    return LINK.findall(text)


@pytest.fixture
def runner_for() -> Callable[[Flask], FlaskCliRunner]:
    """The flask CLI runner of a given app (each command runs in its own app context, as a process would)."""
    return lambda application: application.test_cli_runner()
