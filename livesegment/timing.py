"""Rates and durations on ``time.monotonic()``."""

from __future__ import annotations

import threading
import time
from collections import deque


class FpsMeter:
    """Events per second over a rolling window of the last ``window`` ticks (thread-safe)."""

    def __init__(self, window: int = 30):
        self._stamps: deque[float] = deque(maxlen=window)
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        with self._lock:
            self._stamps.append(time.monotonic() if now is None else now)

    @property
    def fps(self) -> float:
        with self._lock:
            if len(self._stamps) < 2:
                return 0.0
            span = self._stamps[-1] - self._stamps[0]
            return (len(self._stamps) - 1) / span if span > 0 else 0.0
