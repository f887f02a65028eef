"""Flask's signed-cookie sessions, with the signing serializer built once per secret key."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer


class SessionInterface(SecureCookieSessionInterface):
    """Exactly Flask's default (same cookie, same signature, same key rotation), minus a rebuild.

    Flask builds a new URLSafeTimedSerializer when it opens and again when it saves each session, and
    building one serializes a probe value to check its output type: together a tenth of a request that
    does nothing else. The serializer holds nothing per request, so one per (key, fallback keys) serves all.
    """

    def __init__(self) -> None:
        self._serializers: dict[tuple[Any, ...], URLSafeTimedSerializer] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        """The serializer for the app's current secret key (None without one, as in Flask)."""
        key = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        serializer = self._serializers.get(key)
        if serializer is None:
            serializer = super().get_signing_serializer(app)
            if serializer is not None:
                self._serializers[key] = serializer
        return serializer


def init_sessions(app: Flask) -> None:
    """Use the caching session interface."""
    app.session_interface = SessionInterface()
