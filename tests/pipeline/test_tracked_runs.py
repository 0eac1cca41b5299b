"""``run`` with tracking: on by default for a video, off with ``track=False``; the JSONL, the
summary and the HUD carry the tracks. The network is the fake one-circle engine."""

from __future__ import annotations

import json
from types import SimpleNamespace

from conftest import tiny_spec
from test_writer import SIZE_WH, CountingLoader

from livesegment.pipeline import RunOptions, run
from livesegment.pipeline.controls import ViewState
from livesegment.pipeline.runner import _hud_lines
from livesegment.pipeline.tracking import Tracker
from livesegment.timing import FpsMeter


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_video_run_tracks_by_default_and_not_when_asked(tmp_path, video_factory):
    source = str(video_factory(8, SIZE_WH, 10.0))
    spec = tiny_spec(tmp_path / "unused.h5")
    tracked, untracked = tmp_path / "tracked.jsonl", tmp_path / "untracked.jsonl"

    summary = run(
        RunOptions(source=source, display=False, json_path=tracked, progress=False),
        spec,
        load=CountingLoader(),
    )
    *frames, last = _lines(tracked)
    assert [d["track_id"] for f in frames for d in f["detections"]] == [1] * 8
    assert summary.unique_per_class == {"circle": 1}
    assert last["summary"]["unique_objects_per_class"] == {"circle": 1}
    assert "unique objects: circle: 1 unique" in summary.format()

    summary = run(
        RunOptions(source=source, display=False, json_path=untracked, progress=False, track=False),
        spec,
        load=CountingLoader(),
    )
    *frames, last = _lines(untracked)
    assert all("track_id" not in d for f in frames for d in f["detections"])
    assert summary.unique_per_class is None and "unique" not in summary.format()
    assert "unique_objects_per_class" not in last["summary"]


def test_the_hud_counts_unique_objects_per_class_when_tracking():
    tracker = Tracker()
    tracker.count_per_class.update({"square": 2, "circle": 14})
    stats = SimpleNamespace(fps=FpsMeter(), dropped=0)
    result = SimpleNamespace(
        inference_ms=80.0, frame=SimpleNamespace(captured_at=0.0), carried=False, carried_age=0
    )
    session = SimpleNamespace(
        controls=ViewState(threshold=0.5, classes=None), recording=False, inference_fps=FpsMeter()
    )
    lines = _hud_lines(SimpleNamespace(stats=stats, tracker=tracker), result, session)
    assert lines[-1] == "unique objects: circle: 14 unique, square: 2 unique"
    assert "carried" not in " ".join(lines)
    untracked = _hud_lines(SimpleNamespace(stats=stats, tracker=None), result, session)
    assert len(untracked) == len(lines) - 1 and "unique" not in " ".join(untracked)
    # A carried frame says how many frames ago its detections were inferred.
    carried = SimpleNamespace(**{**vars(result), "carried": True, "carried_age": 2})
    lines = _hud_lines(SimpleNamespace(stats=stats, tracker=None), carried, session)
    assert "  carried 2" in lines[1]
