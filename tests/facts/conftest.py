"""Fixtures for the order-facts tests (issue 20): the local Stripe service at a chosen API version."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stripe_emulator import Emulator
from tests.conftest import WEBHOOK_SECRET


@pytest.fixture
def emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """The local Stripe service whose account (and so webhook endpoint) uses `request.param`'s API version
    (indirect parametrization), else the SDK's pin."""
    version = getattr(request, "param", None)
    emu = Emulator(
        webhook_url="http://shop.test/webhook/", webhook_secret=WEBHOOK_SECRET, async_delay=None, api_version=version
    )
    yield emu
    emu.close()
