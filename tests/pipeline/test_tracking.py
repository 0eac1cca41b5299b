"""The tracker: ids that persist, survive missed frames, and are new for new objects."""

from __future__ import annotations

import numpy as np
import pytest

from livesegment.pipeline.tracking import Tracker
from livesegment.structures import Detections

NAMES = np.array(["BG", "circle", "square", "triangle"])
SHAPE_HW = (120, 160)


def frame(*objects: tuple[int, float, float]) -> Detections:
    """Detections of 20x20 px boxes: (class id, left x, top y) each."""
    n = len(objects)
    xyxy = np.array([[x, y, x + 20, y + 20] for _, x, y in objects], np.float32).reshape(n, 4)
    class_ids = np.array([c for c, _, _ in objects], np.int32)
    return Detections(
        xyxy=xyxy,
        masks=np.zeros((n, *SHAPE_HW), bool),
        scores=np.full(n, 0.9, np.float32),
        class_ids=class_ids,
        class_names=NAMES[class_ids],
    )


def test_ids_persist_from_the_first_frame_and_differ_between_objects() -> None:
    tracker = Tracker(fps=10)
    seen = []
    for i in range(12):
        # Two circles moving apart, and a square: given in a changing order.
        objects = [(1, 10 + 3 * i, 10), (1, 100 - 3 * i, 60), (2, 60, 90 - i)]
        order = [2, 0, 1] if i % 2 else [0, 1, 2]
        tracked = tracker.update(frame(*(objects[k] for k in order)), i / 10)
        assert tracked.track_ids.dtype == np.int64
        seen.append(dict(zip(order, tracked.track_ids.tolist(), strict=True)))
    assert seen[0] == {0: 1, 1: 2, 2: 3}  # numbered from 1 on their first frame
    assert all(ids == seen[0] for ids in seen)
    assert tracker.count_per_class == {"circle": 2, "square": 1}


def test_a_track_survives_missed_frames_and_a_newcomer_gets_a_new_id() -> None:
    tracker = Tracker(fps=10, lost_s=0.5)
    ids = []
    for i in range(20):
        found = [] if i in (6, 7) else [(1, 10 + 4 * i, 40)]  # two frames missed
        if i >= 15:
            found.append((1, 120, 90))  # a second circle appears far from the first
        tracked = tracker.update(frame(*found), i / 10)
        ids.append(tracked.track_ids.tolist())
    assert ids[6] == ids[7] == []
    assert {tuple(x[:1]) for x in ids if x} == {(1,)}, ids
    assert all(x[1] == 2 for x in ids[15:])


def test_a_track_lost_longer_than_lost_s_and_another_class_start_new_tracks() -> None:
    tracker = Tracker(fps=10, lost_s=0.3)
    first = tracker.update(frame((1, 50, 50)), 0.0).track_ids
    # Gone for a second (frames dropped: the time says so), then back in the same place.
    back = tracker.update(frame((1, 50, 50)), 1.0).track_ids
    # A square where the circle is: a different object for the tracker.
    other = tracker.update(frame((1, 50, 50), (2, 50, 50)), 1.1).track_ids
    assert first.tolist() == [1]
    assert back.tolist() == [2]
    assert other.tolist() == [2, 3]


def test_empty_frames_keep_the_frame_size_and_get_empty_ids() -> None:
    tracker = Tracker()
    tracked = tracker.update(Detections.empty((120, 160), "nothing"), 0.0)
    assert tracked.track_ids.shape == (0,) and tracked.shape_hw == (120, 160)
    assert tracked.empty_reason == "nothing"


@pytest.mark.parametrize("time_s", [None, 0.0])
def test_repeated_or_missing_times_still_track(time_s: float | None) -> None:
    # A still source repeats its time; frames without times step once per call.
    tracker = Tracker()
    ids = [tracker.update(frame((3, 30, 30)), time_s).track_ids.tolist() for _ in range(3)]
    assert ids == [[1], [1], [1]]


def test_a_frame_whose_time_goes_back_is_left_untracked_and_tracking_goes_on() -> None:
    # A file with a broken timestamp: the library skips that update rather than guess.
    tracker = Tracker(fps=10)
    times = (1.0, 0.5, 1.1)
    ids = [
        tracker.update(frame((1, 30 + i, 30)), t).track_ids.tolist() for i, t in enumerate(times)
    ]
    assert ids == [[1], [-1], [1]]
