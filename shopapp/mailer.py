"""Wires email into the app: Flask-Mail, and the after-commit sender of the outbox."""

from __future__ import annotations

import logging

from flask import Flask, current_app
from sqlalchemy import event
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from shopapp.extensions import db, mail
from shopapp.services import outbox

log = logging.getLogger("shopapp.mail")


def _listen_once() -> None:
    # Process-wide (every Session): a queued message becomes sendable only once its transaction commits.
    if not event.contains(Session, "after_commit", outbox.on_commit):
        event.listen(Session, "after_commit", outbox.on_commit)
        event.listen(Session, "after_rollback", outbox.on_rollback)


def init_mailer(app: Flask) -> None:
    """Bind Flask-Mail, and send what a request's transactions queued once the response has gone out."""
    mail.init_app(app)
    _listen_once()

    @app.after_request
    def send_after_commit(response: Response) -> Response:
        # Most requests queue nothing; do not create a session just to find that out.
        keys = outbox.take_committed(db.session()) if db.session.registry.has() else []
        if keys:
            the_app = current_app._get_current_object()  # type: ignore[attr-defined]

            def send() -> None:
                # After the response is sent: the shopper never waits for SMTP, and a failure here loses
                # nothing (the rows stay pending for `flask mail send-pending`).
                with the_app.app_context():
                    try:
                        summary = outbox.deliver(keys)
                    except Exception:  # a database error: the rows stay pending, the cron sends them
                        log.exception("After-request mail sender stopped; flask mail send-pending will retry")
                    else:
                        if summary.retry_later or summary.failed:
                            log.warning("After-request mail: %s", summary.line())

            response.call_on_close(send)
        return response
