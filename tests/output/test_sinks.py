"""The JSONL detections: a tracked run adds each detection's track id."""

from __future__ import annotations

import dataclasses

import numpy as np

from livesegment.output.sinks import detections_to_json
from livesegment.structures import Detections


def test_track_ids_appear_in_the_jsonl_only_when_tracked() -> None:
    masks = np.zeros((2, 20, 30), bool)
    masks[0, 2:8, 3:9] = masks[1, 10:15, 20:28] = True
    detections = Detections(
        xyxy=np.array([[3, 2, 9, 8], [20, 10, 28, 15]], np.float32),
        masks=masks,
        scores=np.array([0.93, 0.8], np.float32),
        class_ids=np.array([1, 1], np.int32),
        class_names=np.array(["circle", "circle"]),
    )
    assert all("track_id" not in d for d in detections_to_json(detections))
    tracked = dataclasses.replace(detections, track_ids=np.array([12, -1], np.int64))
    records = detections_to_json(tracked)
    assert [d["track_id"] for d in records] == [12, None]
    assert isinstance(records[0]["track_id"], int)  # JSON-ready, not a numpy integer
    assert [d["class"] for d in records] == ["circle", "circle"]
