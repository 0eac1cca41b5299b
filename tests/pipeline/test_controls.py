"""Window keys change what the run shows."""

from __future__ import annotations

from livesegment.pipeline.controls import ViewState


def test_keys():
    state = ViewState(threshold=0.5, classes=None)
    assert state.handle_key(ord("+")) == "threshold 0.55"
    assert state.handle_key(ord("=")) == "threshold 0.60"
    assert state.handle_key(ord("-")) == "threshold 0.55"
    assert state.handle_key(ord("b")) == "boxes off" and not state.style.boxes
    assert state.handle_key(ord("l")) == "labels off" and not state.style.labels
    assert state.handle_key(ord("m")) == "masks off" and not state.style.masks
    assert state.handle_key(ord(" ")) == "paused" and state.paused
    assert state.handle_key(ord(" ")) == "resumed" and not state.paused
    state.handle_key(ord("s"))
    state.handle_key(ord("r"))
    assert state.snapshot_requested and state.record_toggle_requested
    assert state.handle_key(-1) is None and state.handle_key(ord("x")) is None
    assert state.handle_key(27) == "quit" and state.quit


def test_threshold_stays_in_range():
    state = ViewState(threshold=0.98, classes=None)
    state.handle_key(ord("+"))
    state.handle_key(ord("+"))
    assert state.threshold == 1.0
    low = ViewState(threshold=0.02, classes=None)
    low.handle_key(ord("-"))
    assert low.threshold == 0.0
