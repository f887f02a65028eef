"""A local Stripe-compatible service for Checkout, refunds, events and signed webhooks."""

from .app import Emulator
from .clock import Clock
from .errors import EmulatorStateError
from .payments import PaymentResult
from .transport import EmulatorHTTPClient

__all__ = ["Clock", "Emulator", "EmulatorHTTPClient", "EmulatorStateError", "PaymentResult"]
