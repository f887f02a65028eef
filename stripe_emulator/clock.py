"""The service clock: real time plus an offset, or frozen; advanceable by tests."""

from __future__ import annotations

import threading
import time


class Clock:
    """Service time in unix seconds. `Clock()` follows real time; `Clock(start=...)` is frozen."""

    def __init__(self, start: float | None = None) -> None:
        self._frozen = start
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Current service time (float seconds)."""
        with self._lock:
            base = self._frozen if self._frozen is not None else time.time()
            return base + self._offset

    def timestamp(self) -> int:
        """Current service time as Stripe's integer unix timestamp."""
        return int(self.now())

    def advance(self, seconds: float) -> None:
        """Move the service clock forward."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds
