"""The session cookie's signing serializer is built once per set of keys (security.SigningOnceSessionInterface),
and still behaves as Flask's: cookies signed with a key moved to SECRET_KEY_FALLBACKS open, a new key signs."""

from __future__ import annotations

from flask.sessions import SecureCookieSessionInterface

from shopapp.security import SigningOnceSessionInterface


def test_the_app_uses_it_and_builds_the_serializer_once(app):
    interface = app.session_interface
    assert isinstance(interface, SigningOnceSessionInterface)
    assert interface.get_signing_serializer(app) is interface.get_signing_serializer(app)


def test_it_signs_and_opens_as_flask_does(app):
    ours = app.session_interface.get_signing_serializer(app)
    flasks = SecureCookieSessionInterface().get_signing_serializer(app)
    assert ours is not None and flasks is not None
    value = ours.dumps({"_user_id": "token", "csrf_token": "x"})
    assert flasks.loads(value) == {"_user_id": "token", "csrf_token": "x"}
    assert ours.loads(flasks.dumps({"a": 1})) == {"a": 1}


def test_a_rotated_key_takes_effect_and_the_old_one_still_opens(app, client, shopper):
    assert shopper.email in client.get("/").get_data(as_text=True)  # logged in, cookie signed with the old key
    old_key = app.secret_key
    app.config["SECRET_KEY_FALLBACKS"] = [old_key]
    app.secret_key = app.config["SECRET_KEY"] = "a-new-secret-key-0123456789abcdef0123456789abcdef"
    # The cookie signed with the old key still opens (it is a fallback now) ...
    assert shopper.email in client.get("/").get_data(as_text=True)
    # ... and what is signed now is signed with the new key alone.
    serializer = app.session_interface.get_signing_serializer(app)
    assert serializer is not None and serializer.secret_key == b"a-new-secret-key-0123456789abcdef0123456789abcdef"
    app.config["SECRET_KEY_FALLBACKS"] = []
    # Without the fallback the old cookie no longer opens: logged out.
    assert shopper.email not in client.get("/").get_data(as_text=True)
