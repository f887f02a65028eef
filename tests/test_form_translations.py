"""WTForms' own messages are translated from a catalogue read once per language per process (shopapp.forms),
not read and parsed again on every request that builds a form, as Flask-WTF does (issue 25, round 7)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

from babel import support
from flask_wtf import FlaskForm

import shopapp
from shopapp.auth.forms import LoginForm
from shopapp.forms import ShopForm, wtforms_translations


def _form_classes() -> list[type]:
    found = []
    for module_info in pkgutil.walk_packages(shopapp.__path__, "shopapp."):
        module = importlib.import_module(module_info.name)
        for _name, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, FlaskForm) and value.__module__ == module.__name__:
                found.append(value)
    return found


def test_every_form_of_the_shop_is_a_shop_form():
    classes = _form_classes()
    assert len(classes) >= 10  # the account and staff forms at least
    assert [cls.__qualname__ for cls in classes if not issubclass(cls, ShopForm)] == []


def test_messages_are_in_the_request_language(app):
    with app.test_request_context("/account/login", headers={"Accept-Language": "de"}):
        translations = LoginForm().meta.get_translations(LoginForm())
        assert translations.gettext("This field is required.") == "Dieses Feld wird benötigt."
    with app.test_request_context("/account/login", headers={"Accept-Language": "en"}):
        translations = LoginForm().meta.get_translations(LoginForm())
        assert translations.gettext("This field is required.") == "This field is required."


def test_the_catalogue_is_read_once_per_language(app, client, monkeypatch):
    loads: list[Any] = []
    real_load = support.Translations.load

    def counting_load(*args: Any, **kwargs: Any) -> Any:
        loads.append(args)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(support.Translations, "load", counting_load)
    wtforms_translations.cache_clear()
    for _ in range(3):
        for language in ("de", "en"):
            response = client.get("/account/login", headers={"Accept-Language": language})
            assert response.status_code == 200
    # Flask-WTF's own loader read it six times here, once per request.
    assert len([args for args in loads if "wtforms" in str(args)]) <= 2
