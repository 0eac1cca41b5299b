"""What the viewer can change while a run goes: keys of the live window, and the same
changes asked from another thread (the browser view)."""

from __future__ import annotations

import dataclasses
import logging
import queue
from collections.abc import Callable
from dataclasses import dataclass, field

from livesegment.output.overlay import OverlayStyle

log = logging.getLogger(__name__)

THRESHOLD_STEP = 0.05


@dataclass(slots=True)
class ViewState:
    """Mutable on purpose: the window's keys change it between frames."""

    threshold: float
    classes: frozenset[str] | None
    style: OverlayStyle = field(default_factory=OverlayStyle)
    paused: bool = False
    quit: bool = False
    snapshot_requested: bool = False
    record_toggle_requested: bool = False

    def handle_key(self, key: int) -> str | None:
        """Apply one key code from ``cv2.waitKey``; returns a short note of what changed."""
        if key < 0:
            return None
        char = chr(key & 0xFF)
        if char in ("q", "\x1b"):
            self.quit = True
            return "quit"
        if char == " ":
            self.paused = not self.paused
            return "paused" if self.paused else "resumed"
        if char in ("+", "="):
            return self.set_threshold(self.threshold + THRESHOLD_STEP)
        if char in ("-", "_"):
            return self.set_threshold(self.threshold - THRESHOLD_STEP)
        toggles = {"b": "boxes", "l": "labels", "m": "masks"}
        if char in toggles:
            name = toggles[char]
            return self.set_drawn(name, not getattr(self.style, name))
        if char == "s":
            self.snapshot_requested = True
            return "snapshot"
        if char == "r":
            self.record_toggle_requested = True
            return "record"
        return None

    def set_threshold(self, value: float) -> str:
        self.threshold = round(min(1.0, max(0.0, value)), 2)
        return f"threshold {self.threshold:.2f}"

    def set_drawn(self, name: str, value: bool) -> str:
        """Draw ``name`` (boxes, labels or masks) or not."""
        self.style = dataclasses.replace(self.style, **{name: value})
        return f"{name} {'on' if value else 'off'}"

    def set_classes(self, names: frozenset[str] | None) -> str:
        """Keep only ``names`` (None: every class); the names are the model's own."""
        self.classes = names
        return f"classes {','.join(sorted(names)) if names is not None else 'all'}"

    def set_paused(self, paused: bool) -> str:
        self.paused = paused
        return "paused" if paused else "resumed"


# A change to the controls; returns a short note of what changed, as ``handle_key`` does.
Change = Callable[[ViewState], "str | None"]


class RemoteControls:
    """Changes asked from other threads, applied on the main thread between frames.

    ``ViewState`` is read and written by the loop without locks, so another thread never
    writes it: it queues a change here, and the loop applies the queue where it applies the
    window's keys, so both go through the same code.
    """

    def __init__(self) -> None:
        self._changes: queue.SimpleQueue[Change] = queue.SimpleQueue()

    def submit(self, change: Change) -> None:
        """Queue ``change`` (any thread)."""
        self._changes.put(change)

    def apply(self, controls: ViewState) -> None:
        """Apply every queued change to ``controls``, in order (the loop's thread)."""
        while True:
            try:
                change = self._changes.get_nowait()
            except queue.Empty:
                return
            if note := change(controls):
                log.info("browser: %s", note)
