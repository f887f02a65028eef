"""Stripe-shaped API errors and the emulator's own control errors."""

from __future__ import annotations

from typing import Any


class StripeAPIError(Exception):
    """An error the API answers with Stripe's `{"error": {...}}` envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.extra = extra or {}

    def envelope(self) -> dict[str, Any]:
        """Return the JSON body Stripe sends for this error."""
        error: dict[str, Any] = {
            "type": self.type,
            "code": self.code,
            "message": self.message,
            "param": self.param,
        }
        error.update(self.extra)
        return {"error": error}


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeAPIError:
    """A 400 invalid_request_error."""
    return StripeAPIError(400, message, code=code, param=param)


def missing_param(param: str) -> StripeAPIError:
    """A 400 for a required parameter that was not sent."""
    return invalid(f"Missing required param: {param}.", param, "parameter_missing")


def no_such(kind: str, object_id: str, param: str = "id") -> StripeAPIError:
    """A 404 resource_missing error for an unknown id."""
    return StripeAPIError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


class EmulatorStateError(Exception):
    """A test control was asked to do something the current state does not allow."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
