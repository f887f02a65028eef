"""The views the rate limiter skips (extensions.UNLIMITED_ENDPOINTS) carry no limit of their own, and no
default, application or blueprint limit would apply to them: skipping the limiter there changes nothing.
(The limited views stay limited: tests/security/test_rate_limits.py.)"""

from __future__ import annotations

from flask_limiter.util import get_qualified_name

from shopapp.extensions import UNLIMITED_ENDPOINTS, limiter


def _limits_of(app, endpoint: str) -> list:
    name = get_qualified_name(app.view_functions[endpoint])
    blueprint = endpoint.rpartition(".")[0]
    manager = limiter.limit_manager
    return (
        manager.decorated_limits(name)
        + manager.blueprint_limits(app, blueprint)
        + manager.default_limits
        + manager.application_limits
    )


def test_skipped_views_have_no_limits(app):
    with app.test_request_context():
        assert _limits_of(app, "shop.buy"), "the check itself: checkout is limited"
        for endpoint in UNLIMITED_ENDPOINTS:
            assert _limits_of(app, endpoint) == [], endpoint
