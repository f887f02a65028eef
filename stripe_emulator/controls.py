"""HTTP test controls under `/_emulator/...` for tests that drive a live server."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Protocol

from werkzeug.wrappers import Request, Response

from .clock import Clock
from .errors import EmulatorStateError, StripeAPIError
from .payments import PaymentResult
from .router import Router

Control = Callable[..., Any]


class Controllable(Protocol):
    """What the controls drive: the Emulator satisfies it (the dependency runs app -> controls only)."""

    clock: Clock

    def pay(
        self,
        session_id: str,
        card: str = ...,
        delayed: str | None = ...,
        expiry: str = ...,
        cvc: str = ...,
        shipping: dict[str, str] | None = ...,
    ) -> PaymentResult: ...
    def complete_async(self, session_id: str, succeed: bool = ...) -> dict[str, Any]: ...
    def expire(self, session_id: str) -> dict[str, Any]: ...
    def settle_refund(self, refund_id: str) -> dict[str, Any]: ...
    def advance_dispute(self, dispute_id: str, outcome: str | None = ...) -> dict[str, Any]: ...
    def advance(self, seconds: float) -> None: ...
    def tick(self) -> None: ...
    def deliver_pending(self) -> list[tuple[str, int | None]]: ...
    def redeliver(self, event_id: str) -> int | None: ...
    def hold_deliveries(self) -> None: ...
    def lose_deliveries(self, event_type: str, times: int = ...) -> None: ...
    def release_deliveries(self, order: Any = ..., duplicate: int = ...) -> list[str]: ...
    def events(self, type: str | None = ...) -> list[dict[str, Any]]: ...
    @property
    def sessions(self) -> dict[str, dict[str, Any]]: ...
    @property
    def call_counts(self) -> dict[str, int]: ...
    def delivery_attempts(self, event_id: str) -> list[dict[str, Any]]: ...
    def idempotency_keys(self) -> list[dict[str, Any]]: ...
    def inject_fault(self, endpoint: str, status: Any = ..., times: int = ..., process: bool = ...) -> None: ...
    def reset(self) -> None: ...


def _bool(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true", "yes")


def _pay(emu: Controllable, data: dict[str, Any], id: str) -> Any:
    shipping = data.get("shipping")
    result = emu.pay(
        id,
        card=data.get("card", "4242424242424242"),
        delayed=data.get("delayed") or None,
        expiry=data.get("expiry", "12/34"),
        cvc=data.get("cvc", "123"),
        shipping=shipping if isinstance(shipping, dict) else None,
    )
    return asdict(result)


def _advance(emu: Controllable, data: dict[str, Any]) -> Any:
    emu.advance(float(data["seconds"]))
    return {"now": emu.clock.now()}


def _fault(emu: Controllable, data: dict[str, Any]) -> Any:
    status = data.get("status", 500)
    emu.inject_fault(
        data["endpoint"],
        status if status == "timeout" else int(status),
        int(data.get("times", 1)),
        _bool(data.get("process", False)),
    )
    return {"ok": True}


def _release(emu: Controllable, data: dict[str, Any]) -> Any:
    return {"queued": emu.release_deliveries(data.get("order", "fifo"), int(data.get("duplicate", 1)))}


def build_router() -> Router[Control]:
    """The `/_emulator` control routes."""
    r: Router[Control] = Router()
    r.add("POST", "/_emulator/sessions/{id}/pay", _pay)
    r.add(
        "POST",
        "/_emulator/sessions/{id}/complete_async",
        lambda emu, data, id: emu.complete_async(id, _bool(data.get("succeed", True))),
    )
    r.add("POST", "/_emulator/sessions/{id}/expire", lambda emu, data, id: emu.expire(id))
    r.add("GET", "/_emulator/sessions", lambda emu, data: emu.sessions)
    r.add("POST", "/_emulator/refunds/{id}/settle", lambda emu, data, id: emu.settle_refund(id))
    r.add(
        "POST",
        "/_emulator/disputes/{id}/advance",
        lambda emu, data, id: emu.advance_dispute(id, data.get("outcome") or None),
    )
    r.add("GET", "/_emulator/clock", lambda emu, data: {"now": emu.clock.now()})
    r.add("POST", "/_emulator/clock/advance", _advance)
    r.add("POST", "/_emulator/tick", lambda emu, data: emu.tick() or {"ok": True})
    r.add("POST", "/_emulator/deliveries/deliver_pending", lambda emu, data: {"delivered": emu.deliver_pending()})
    r.add("POST", "/_emulator/deliveries/hold", lambda emu, data: emu.hold_deliveries() or {"ok": True})
    r.add("POST", "/_emulator/deliveries/release", _release)
    r.add(
        "POST",
        "/_emulator/deliveries/lose",
        lambda emu, data: emu.lose_deliveries(data["type"], int(data.get("times", 1))) or {"ok": True},
    )
    r.add("GET", "/_emulator/events", lambda emu, data: {"data": emu.events(data.get("type"))})
    r.add("POST", "/_emulator/events/{id}/redeliver", lambda emu, data, id: {"status": emu.redeliver(id)})
    r.add("GET", "/_emulator/events/{id}/attempts", lambda emu, data, id: {"data": emu.delivery_attempts(id)})
    r.add("GET", "/_emulator/call_counts", lambda emu, data: emu.call_counts)
    r.add("GET", "/_emulator/idempotency_keys", lambda emu, data: {"data": emu.idempotency_keys()})
    r.add("POST", "/_emulator/faults", _fault)
    r.add("POST", "/_emulator/reset", lambda emu, data: emu.reset() or {"ok": True})
    return r


def handle(emu: Controllable, router: Router[Control], request: Request) -> Response:
    """Run one control; JSON or form body in, JSON out."""
    match = router.route(request.method, request.path)
    if match is None:
        return _reply({"error": f"no control {request.method} {request.path}"}, 404)
    data: dict[str, Any] = dict(request.args)
    data.update(request.get_json(silent=True) or request.form.to_dict())
    try:
        return _reply(match.handler(emu, data, **match.args))
    except EmulatorStateError as error:
        return _reply({"error": error.message}, error.status)
    except StripeAPIError as error:
        return _reply(error.envelope(), error.status)
    except (KeyError, ValueError) as error:
        return _reply({"error": f"bad control request: {error!r}"}, 400)


def _reply(obj: Any, status: int = 200) -> Response:
    return Response(json.dumps(obj, indent=2), status=status, mimetype="application/json")
