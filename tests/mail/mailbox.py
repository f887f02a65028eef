"""A real SMTP server for the mail tests (aiosmtpd, the same handler as the development server)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from aiosmtpd.controller import Controller

from shopapp import devmail
from tests.support import free_port, wait_until


class Mailbox:
    """An aiosmtpd server on a free 127.0.0.1 port that stores every accepted message in `folder`.

    stop() closes the port (SMTP down: connections are refused); start() opens it again on the same port.
    `refuse` lists addresses answered with a permanent 550 at RCPT.
    """

    def __init__(self, folder: Path, refuse: Iterable[str] = (), *, smtputf8: bool = True) -> None:
        self.folder = folder
        self.smtputf8 = smtputf8
        self.port = free_port()
        self.refuse = list(refuse)
        self._controller: Controller | None = None
        # The sender process's stand-in: run before each look at the folder (tests/mail/conftest.py binds it
        # to `flask mail send-pending` of the app under test). Nothing is sent from a request any more.
        self.sender: Callable[[], object] | None = None

    def start(self) -> None:
        """Accept connections (again)."""
        if self._controller is None:
            self._controller = devmail.start("127.0.0.1", self.port, self.folder, self.refuse, smtputf8=self.smtputf8)

    def stop(self) -> None:
        """Close the port: senders get 'connection refused'."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages(self) -> list[devmail.StoredMail]:
        """Every message received so far, oldest first."""
        return devmail.read_folder(self.folder)

    def to(self, address: str) -> list[devmail.StoredMail]:
        """Messages whose To header names `address`."""
        return [m for m in self.messages() if address.lower() in m.to.lower()]

    def wait_for(self, count: int, what: str, address: str | None = None) -> list[devmail.StoredMail]:
        """Wait until at least `count` messages (to `address`, if given) have arrived; returns them."""

        def arrived() -> list[devmail.StoredMail]:
            if self.sender is not None:
                self.sender()
            found = self.to(address) if address else self.messages()
            return found if len(found) >= count else []

        return wait_until(arrived, what, timeout=20)
