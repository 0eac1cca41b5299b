"""Detections validate their shapes and filter with boolean indexes."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from livesegment.structures import Detections, RunSummary


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
