"""The base of every form in the shop: Flask-WTF's FlaskForm with WTForms' own messages translated once per
language, not once per request."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from babel import support
from flask import current_app
from flask_babel import get_locale
from flask_wtf import FlaskForm
from wtforms.i18n import messages_path


@lru_cache(maxsize=32)
def wtforms_translations(locale: str) -> support.NullTranslations:
    """WTForms' built-in messages ("This field is required.") in `locale` (a Babel identifier such as "de"); a
    NullTranslations (English as written) when WTForms has no catalogue for it.

    The same catalogue Flask-WTF loads (`babel.support.Translations.load` of WTForms' "wtforms" domain), read
    once per language per process: Flask-WTF reads and parses the .mo file again on every request that builds
    a form, 4.5% of the admin orders list's time (py-spy, docs/PERFORMANCE.md round 7). A loaded catalogue is
    only read from afterwards, so sharing it between requests and threads is safe.
    """
    return support.Translations.load(messages_path(), [locale], domain="wtforms")


class ShopForm(FlaskForm):
    """FlaskForm (CSRF and all) whose WTForms messages come from `wtforms_translations`."""

    class Meta(FlaskForm.Meta):
        def get_translations(self, form: Any) -> Any:
            """The request's language's WTForms catalogue; as Flask-WTF when WTF_I18N_ENABLED is off or
            Flask-Babel is absent (WTForms' English)."""
            if not current_app.config.get("WTF_I18N_ENABLED", True) or "babel" not in current_app.extensions:
                return super().get_translations(form)
            locale = get_locale()
            return None if locale is None else wtforms_translations(str(locale))
