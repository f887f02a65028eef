"""Wires email into the app: Flask-Mail's settings. Nothing is sent from a request worker.

Sending is the job of a sender process, `flask mail worker` (scripts/run.sh starts it; production runs it as a
service beside gunicorn), with `flask mail send-pending` from cron as the fallback. A request only queues its
message in the outbox in the same transaction as its cause: an SMTP server that stalls then holds a sender,
never a web worker, and a page's timing does not depend on whether it queued mail (forgot-password answers
known and unknown addresses alike).
"""

from __future__ import annotations

from flask import Flask

from shopapp.extensions import mail


def init_mailer(app: Flask) -> None:
    """Bind Flask-Mail (its MAIL_* settings open the SMTP connection; services/mail.py builds the messages)."""
    mail.init_app(app)
