"""Closed sets the emulator validates against, read from the official SDK's generated parameter types.

The SDK is generated from Stripe's OpenAPI description, so these sets are Stripe's own: API versions an
endpoint may be pinned to, event types an endpoint may subscribe to, countries shipping can go to.
"""

from __future__ import annotations

import re
import typing
from typing import Any

import stripe
from stripe.params import _webhook_endpoint_create_params as _endpoint_params
from stripe.params.checkout import _session_create_params as _session_params


def _literals(annotation: Any) -> list[str]:
    """Every Literal value inside an annotation (through NotRequired, List, Union...)."""
    if typing.get_origin(annotation) is typing.Literal:
        return [str(value) for value in typing.get_args(annotation)]
    found: list[str] = []
    for arg in typing.get_args(annotation):
        found += _literals(arg)
    return found


_ENDPOINT = _endpoint_params.WebhookEndpointCreateParams.__annotations__

PINNED_VERSION: str = stripe.api_version
"""The API version the installed SDK pins (stripe/_api_version.py)."""

API_VERSIONS: tuple[str, ...] = tuple(_literals(_ENDPOINT["api_version"]))
"""Every API version Stripe accepts for a webhook endpoint, oldest first."""

EVENT_TYPES: frozenset[str] = frozenset(_literals(_ENDPOINT["enabled_events"]))
"""Every event type a webhook endpoint may subscribe to (`*` included)."""

SHIPPING_COUNTRIES: tuple[str, ...] = tuple(
    _literals(_session_params.SessionCreateParamsShippingAddressCollection.__annotations__["allowed_countries"])
)
"""Two-letter country codes Checkout can collect a shipping address for."""


def _forward_literals(annotation: Any) -> list[str]:
    """The Literal values of an annotation the SDK writes as a string ("Literal['auto', 'bg', ...]|str")."""
    found = _literals(annotation)
    for arg in typing.get_args(annotation):
        if isinstance(arg, typing.ForwardRef):
            found += re.findall(r"'([^']+)'", arg.__forward_arg__)
    return found


CHECKOUT_LOCALES: frozenset[str] = frozenset(
    _forward_literals(_session_params.SessionCreateParams.__annotations__["locale"])
)
"""The `locale` values Checkout accepts ("auto", "de", "en", "fr-CA", ...)."""


BALANCE_TRANSACTION_TYPES: tuple[str, ...] = tuple(_literals(stripe.BalanceTransaction.__annotations__["type"]))
"""Balance transaction `type` values (stripe.BalanceTransaction.type's Literal), in the SDK's order."""
