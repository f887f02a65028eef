"""Session cookies and CSRF tokens for benchmark shoppers, signed with the server's own secret.

Logging in thousands of shoppers through the form would spend minutes in Argon2; instead each
shopper's Flask session is built exactly as a log-in from the benchmark client would leave it
(Flask-Login's `_user_id` is the user's session token, `_id` its session-protection fingerprint of
address and User-Agent) and signed by the app's own session interface; the CSRF token comes from
Flask-WTF's generate_csrf. The server checks all of it for real on every request.
"""

from __future__ import annotations

from flask import Flask, session
from flask_login.utils import _create_identifier
from flask_wtf.csrf import generate_csrf

USER_AGENT = "shop-bench"
CLIENT_ADDR = "127.0.0.1"


def mint(app: Flask, session_token: str) -> tuple[str, str]:
    """(session cookie value, CSRF form token) for the user whose session token is given."""
    # A fresh app context: Flask-WTF caches the token on `g`, which an outer context would share.
    with (
        app.app_context(),
        app.test_request_context(
            "/",
            base_url="http://127.0.0.1/",
            headers={"User-Agent": USER_AGENT},
            environ_base={"REMOTE_ADDR": CLIENT_ADDR},
        ),
    ):
        session["_user_id"] = session_token
        session["_fresh"] = True
        session["_id"] = _create_identifier()
        csrf_token = generate_csrf()
        serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
        assert serializer is not None
        return serializer.dumps(dict(session)), csrf_token
