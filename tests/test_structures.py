"""Detections validate their shapes and filter with boolean indexes."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest

from livesegment.structures import Detections, Frame, FrameResult, RunSummary


def make(n=3, shape_hw=(4, 5)):
    return Detections(
        xyxy=np.arange(n * 4, dtype=np.float32).reshape(n, 4),
        masks=np.ones((n, *shape_hw), bool),
        scores=np.linspace(0.9, 0.3, n).astype(np.float32),
        class_ids=np.arange(1, n + 1, dtype=np.int32),
        class_names=np.array([f"c{i}" for i in range(n)]),
    )


def test_boolean_index_filters_every_field():
    d = make()
    kept = d[d.scores >= 0.5]
    assert len(kept) == 2 and kept.class_names.tolist() == ["c0", "c1"]
    assert kept.masks.shape == (2, 4, 5) and kept.xyxy.shape == (2, 4)
    assert len(d[1]) == 1


def test_empty_keeps_frame_size():
    empty = Detections.empty((480, 640))
    assert len(empty) == 0 and empty.shape_hw == (480, 640)


def test_mismatched_lengths_say_expected_and_got():
    d = make()
    with pytest.raises(ValueError, match=r"Detections.xyxy: expected \(2, 4\), got shape \(3, 4\)"):
        Detections(d.xyxy, d.masks, d.scores[:2], d.class_ids, d.class_names)
    with pytest.raises(ValueError, match="masks: expected"):
        Detections(d.xyxy, d.masks.astype(np.uint8), d.scores, d.class_ids, d.class_names)


def test_track_ids_are_validated_and_kept_by_indexing():
    d = make()
    tracked = dataclasses.replace(d, track_ids=np.array([4, -1, 9], np.int64))
    kept = tracked[tracked.scores >= 0.5]
    assert kept.track_ids.tolist() == [4, -1]
    assert tracked[2].track_ids.tolist() == [9]
    assert d[d.scores >= 0.5].track_ids is None
    assert tracked.with_reason("x").track_ids is tracked.track_ids
    for bad, what in (
        (np.array([1, 2], np.int64), "shape"),
        (np.array([1, 2, 3], np.int32), "dtype"),
        (np.array([1, -2, 3], np.int64), "below -1"),
        (np.array([[1, 2, 3]], np.int64), "2-D"),
    ):
        with pytest.raises(ValueError, match=r"Detections.track_ids: expected \(3,\) int64"):
            dataclasses.replace(d, track_ids=bad)
            pytest.fail(what)


def test_summary_counts_unique_tracks_per_class_when_tracked():
    summary = RunSummary()
    d = dataclasses.replace(make(), class_names=np.array(["circle", "circle", "square"]))
    frame = Frame(0, 0.0, np.zeros((4, 5, 3), np.uint8), np.zeros((4, 5, 3), np.uint8), 0.0)
    summary.add(FrameResult(frame, d))
    assert summary.unique_per_class is None and "unique" not in summary.format()
    assert "unique_objects_per_class" not in summary.to_json()
    for ids in ([1, 2, 3], [1, 4, -1], [5, 2, 3]):
        summary.add(FrameResult(frame, dataclasses.replace(d, track_ids=np.array(ids))))
    assert summary.unique_per_class == {"circle": 4, "square": 1}
    assert "unique objects: circle: 4 unique, square: 1 unique" in summary.format()
    assert summary.to_json()["unique_objects_per_class"] == {"circle": 4, "square": 1}


def test_summary_format():
    summary = RunSummary(
        frames_processed=10,
        frames_empty=2,
        elapsed_s=5.0,
        detections_per_class=Counter({"circle": 7, "square": 1}),
    )
    text = summary.format()
    assert "frames processed: 10" in text
    assert "detections: circle 7, square 1" in text
    assert "frames with no detection: 2" in text
    assert "mean FPS: 2.00" in text
    assert "carried" not in text and "inferred" not in text

    summary.frames_carried = 8
    text = summary.format()
    assert "frames processed: 10 (8 carried)" in text
    assert "mean FPS: 2.00 (inferred 0.40)" in text
    assert summary.to_json()["frames_carried"] == 8
