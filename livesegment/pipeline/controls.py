"""What the viewer can change while a run goes: keys of the live window."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from livesegment.output.overlay import OverlayStyle

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
            self.threshold = round(min(1.0, self.threshold + THRESHOLD_STEP), 2)
            return f"threshold {self.threshold:.2f}"
        if char in ("-", "_"):
            self.threshold = round(max(0.0, self.threshold - THRESHOLD_STEP), 2)
            return f"threshold {self.threshold:.2f}"
        toggles = {"b": "boxes", "l": "labels", "m": "masks"}
        if char in toggles:
            name = toggles[char]
            value = not getattr(self.style, name)
            self.style = dataclasses.replace(self.style, **{name: value})
            return f"{name} {'on' if value else 'off'}"
        if char == "s":
            self.snapshot_requested = True
            return "snapshot"
        if char == "r":
            self.record_toggle_requested = True
            return "record"
        return None
