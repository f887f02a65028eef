"""A real local SMTP server for development and tests: every message it accepts is kept as a .eml file.

Run it as a process (scripts/run.sh does): `python -m shopapp.devmail --port 8025 --dir instance/mail`.
`flask mail list` and `flask mail show ID` read the folder. Nothing here imports the app: the server is
the "other side" of SMTP, like a provider's relay.
"""

from __future__ import annotations

import argparse
import itertools
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

_sequence = itertools.count(1)
_lock = threading.Lock()


class MailFolderHandler:
    """aiosmtpd handler: writes each accepted message to `<folder>/<time>-<n>.eml`. Recipients listed in
    `refuse` get a permanent "550 no such user" at RCPT, as a real server answers an unknown mailbox."""

    def __init__(self, folder: Path, refuse: Iterable[str] = ()) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.refuse = {address.lower() for address in refuse}

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with _lock:
            name = f"{time.strftime('%Y%m%d-%H%M%S')}-{next(_sequence):05d}-{time.time_ns() % 1000000:06d}"
            content = envelope.original_content or envelope.content or b""
            data = content if isinstance(content, bytes) else content.encode()
            path = self.folder / f"{name}.eml"
            temporary = path.with_suffix(".tmp")
            temporary.write_bytes(data)
            temporary.rename(path)  # readers never see half a message
        return "250 Message accepted for delivery"


def start(host: str, port: int, folder: Path, refuse: Iterable[str] = (), *, smtputf8: bool = True) -> Controller:
    """Start the server in a background thread; returns the aiosmtpd Controller (call .stop()).

    It offers SMTPUTF8 (RFC 6531), as the shop's internationalised addresses need; `smtputf8=False` plays a
    server that does not (tests)."""
    controller = Controller(MailFolderHandler(folder, refuse), hostname=host, port=port, enable_SMTPUTF8=smtputf8)
    controller.start()
    return controller


@dataclass(frozen=True)
class StoredMail:
    """One message in the folder."""

    id: str
    path: Path
    message: EmailMessage

    @property
    def subject(self) -> str:
        """The Subject header."""
        return str(self.message["Subject"] or "")

    @property
    def to(self) -> str:
        """The To header."""
        return str(self.message["To"] or "")

    def text(self) -> str:
        """The plain-text part."""
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    def html(self) -> str:
        """The HTML part."""
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else ""


def read_folder(folder: Path) -> list[StoredMail]:
    """Every stored message, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    mails = []
    for path in sorted(folder.glob("*.eml")):
        parsed: Any = message_from_bytes(path.read_bytes(), policy=policy.default)
        mails.append(StoredMail(path.stem, path, parsed))
    return mails


def main() -> None:
    """Command line: run until interrupted."""
    parser = argparse.ArgumentParser(description="Local SMTP server keeping every message as a .eml file.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--dir", default="instance/mail", help="Folder for the .eml files.")
    args = parser.parse_args()
    controller = start(args.host, args.port, Path(args.dir))
    print(f"devmail: SMTP on {args.host}:{args.port}, storing messages in {args.dir}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
