"""The signed `checkout.session.completed` the benchmark, the profiler and the work counts send (one shape).

Each names a bulk-seeded order's own Checkout Session (`bulk_seed.bulk_session_id`): the shop settles an order
only from a session it created for it (issue 20), so an event for any other id would be acknowledged and ignored.
"""

from __future__ import annotations

import json
from typing import Any

from shopapp.services.bulk_seed import bulk_session_id


def checkout_completed(event_id: str, order_id: int, total: int, *, created: int, **extra: Any) -> bytes:
    """The event's JSON body (compact): a paid session of `total` USD cents for `order_id`; `extra` adds
    top-level event fields (e.g. api_version)."""
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            **extra,
            "type": "checkout.session.completed",
            "created": created,
            "livemode": False,
            "data": {
                "object": {
                    "id": bulk_session_id(order_id),
                    "object": "checkout.session",
                    "mode": "payment",
                    "status": "complete",
                    "payment_status": "paid",
                    "amount_total": total,
                    "currency": "usd",
                    "client_reference_id": str(order_id),
                    "metadata": {"order_id": str(order_id), "attempt": "1"},
                    "payment_intent": f"pi_{event_id.removeprefix('evt_')}",
                }
            },
        },
        separators=(",", ":"),
    ).encode()
