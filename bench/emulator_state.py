"""What the local Stripe service's state file costs: `python -m bench.emulator_state [--checkouts N]`.

Runs N checkouts (create, pay, deliver) in process with and without `--state`, then times a session retrieve
with everything stored. The file is written after every request, but only the rows that changed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import stripe

from stripe_emulator import Clock, Emulator, EmulatorHTTPClient

PARAMS = {
    "mode": "payment",
    "success_url": "https://shop.test/s",
    "cancel_url": "https://shop.test/c",
    "line_items": [
        {"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 7997, "product_data": {"name": "Mug"}}}
    ],
}


def measure(state: str | None, checkouts: int) -> tuple[float, float, int]:
    """(seconds for all checkouts, milliseconds per retrieve afterwards, events stored)."""
    emulator = Emulator(
        clock=Clock(start=time.time()),
        state_path=state,
        webhook_url="http://shop.test/webhook/",
        sender=lambda url, body, headers: 200,
    )
    sdk = stripe.StripeClient(
        "sk_test_bench", http_client=EmulatorHTTPClient(emulator), base_addresses={"api": "http://127.0.0.1:12111"}
    )
    started = time.perf_counter()
    for _ in range(checkouts):
        session = sdk.v1.checkout.sessions.create(params=PARAMS)  # type: ignore[arg-type]
        emulator.pay(session.id)
        emulator.deliver_pending()
    total = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(50):
        sdk.v1.checkout.sessions.retrieve(session.id)
    per_retrieve = (time.perf_counter() - started) / 50 * 1000
    events = len(emulator.store.events)
    emulator.close()
    return total, per_retrieve, events


def main() -> None:
    """Print both measurements."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkouts", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        for label, state in (("in memory", None), ("state file", str(Path(work) / "stripe.db"))):
            total, per_retrieve, events = measure(state, args.checkouts)
            print(
                f"{label:<10}: {args.checkouts} checkouts in {total:.2f} s; then a retrieve takes "
                f"{per_retrieve:.1f} ms with {events} events stored"
            )


if __name__ == "__main__":
    main()
