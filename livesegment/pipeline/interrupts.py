"""Ctrl-C and SIGTERM as a request to stop, honoured between frames.

A signal that raised ``KeyboardInterrupt`` wherever the main thread happened to be could land
between taking a JSONL line off the queue and writing it, or inside a finaliser that swallows
it. So while a run is under way the first SIGINT/SIGTERM only sets an event; the pipeline checks
it between frames and closes every output in order. A second signal means "now": it raises
``KeyboardInterrupt`` at once, for a run stuck somewhere it cannot check the event.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Set by the first SIGINT/SIGTERM while :meth:`installed` is active."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal_name: str | None = None

    def is_set(self) -> bool:
        return self.event.is_set()

    def _handle(self, signum: int, _frame) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name
        self.event.set()

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopRequest]:
        """Route SIGINT and SIGTERM here, restoring the previous handlers on exit.

        Signal handlers can only be set from the main thread; elsewhere (a run started from a
        worker thread) this does nothing and the process keeps its own handling.
        """
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {signum: signal.signal(signum, self._handle) for signum in SIGNALS}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
