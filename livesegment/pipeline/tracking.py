"""Persistent track ids across frames, from roboflow ``trackers``' OC-SORT.

One call per frame::

    tracker = Tracker(fps=15.0)
    for result in results:
        detections = tracker.update(result.detections, result.frame.time_s)
        print(detections.track_ids)

Association is by box IoU within a class: one OC-SORT per class, so a square never takes
over a circle's track, and ids are numbered 1, 2, 3… across classes in order of first sight.
A track that misses detections keeps its id for ``lost_s`` seconds (the Kalman filter keeps
moving its box, and OC-SORT also tries the last box it saw), so a frame or two without a
detection does not start a new track.

OC-SORT, not ByteTrack (same library, same arguments): on the bundled model's detections of
fresh shapes videos it kept identities better (6 seeds, 3-5 shapes, both keeping lost tracks
2 s: IDF1 0.92 vs 0.86, 0.33 vs 1.44 ID switches per 100 frames; ``benchmarks/tracking.py
--compare``). norfair was not a candidate: its release pins numpy < 2. Two seconds did better
than one or half a second: objects hide for runs of frames (occlusions, missed detections).
"""

from __future__ import annotations

import contextlib
import inspect
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from livesegment.structures import Detections

# Our detections are already above the run's threshold: every one may start and extend a
# track (none is held back as "low confidence").
_EVERY_SCORE = 0.0
# Box IoU with a track's predicted box below which a detection starts a new track.
MIN_BOX_IOU = 0.1
LOST_S = 2.0


def _import_library() -> None:
    # A failure is raised again, with its traceback, by the import in ``Tracker._make``.
    with contextlib.suppress(Exception):
        import trackers  # noqa: F401


_preload_lock = threading.Lock()
_preload: threading.Thread | None = None


def preload() -> threading.Thread:
    """Start importing the tracking library on a thread, once per process.

    ``trackers`` brings supervision and SciPy's interpolation: about 1.5 s of imports that
    can overlap the model's loading. Call it once TensorFlow is imported (two threads
    importing overlapping packages at once can deadlock).
    """
    global _preload
    with _preload_lock:
        if _preload is None:
            _preload = threading.Thread(
                target=_import_library, name="livesegment-import-trackers", daemon=True
            )
            _preload.start()
        return _preload


def factory_has_activation(factory: Callable[..., Any]) -> bool:
    return "track_activation_threshold" in inspect.signature(factory).parameters


@dataclass(slots=True)
class _ClassTracks:
    """The tracker of one class, and its ids mapped to the run's.

    ``trackers`` numbers a track from its second detection on; the run numbers it from its
    first, so a new object is never untracked for a frame: ``born`` holds the run id of each
    track started until the library numbers it.
    """

    tracker: Any
    ids: dict[int, int] = field(default_factory=dict)
    born: dict[Any, int] = field(default_factory=dict)


class Tracker:
    """Gives each detection a ``track_id`` that persists while its object stays in view.

    Args:
        fps: the source's frame rate (a fallback when frames come without times).
        lost_s: how long a track whose object is not detected keeps its id.
        min_box_iou: the least box IoU between a track's predicted box and a detection of
            its class for the detection to continue it.
        factory: another ``trackers`` class with OC-SORT's arguments (ByteTrack, SORT), to
            compare them (``benchmarks/tracking.py``); None: OC-SORT.
    """

    def __init__(
        self,
        fps: float = 30.0,
        lost_s: float = LOST_S,
        min_box_iou: float = MIN_BOX_IOU,
        *,
        factory: Callable[..., Any] | None = None,
    ):
        if factory is None:
            preload()  # usually started already, while the model loaded
        self._factory = factory
        self._settings = {
            # trackers counts its buffer in frames at 30 fps, whatever the source's rate.
            "lost_track_buffer": max(1, round(lost_s * 30)),
            "frame_rate": fps if fps > 0 else 30.0,
            "high_conf_det_threshold": _EVERY_SCORE,
            "minimum_consecutive_frames": 1,
            "minimum_iou_threshold": min_box_iou,
        }
        self._classes: dict[int, _ClassTracks] = {}
        self._next_id = 1
        self.count_per_class: dict[str, int] = {}

    def wait_until_ready(self) -> None:
        """Wait for the tracking library's import (started by ``preload``)."""
        if self._factory is None:
            preload().join()

    def _make(self) -> Any:
        """A new tracker for one class."""
        factory = self._factory
        if factory is None:
            preload().join()
            from trackers import OCSORTTracker  # raises here if the thread's import failed

            factory = OCSORTTracker
        activation = (
            {"track_activation_threshold": _EVERY_SCORE} if factory_has_activation(factory) else {}
        )
        return factory(**self._settings, **activation)

    def update(self, detections: Detections, time_s: float | None = None) -> Detections:
        """``detections`` with ``track_ids`` set (-1 for one no track took).

        Args:
            detections: one frame's detections.
            time_s: the frame's time; frames dropped or skipped in between then count as
                time lost, not as one step. None: one step per call.
        """
        import supervision as sv

        track_ids = np.full(len(detections), -1, np.int64)
        class_ids = detections.class_ids
        # Every class's tracker steps every frame, so its clock and its lost tracks age.
        for class_id in sorted(self._classes.keys() | set(class_ids.tolist())):
            tracks = self._classes.get(class_id)
            if tracks is None:
                tracks = self._classes[class_id] = _ClassTracks(self._make())
            rows = np.flatnonzero(class_ids == class_id)
            boxes = sv.Detections(
                xyxy=detections.xyxy[rows].astype(np.float32).reshape(-1, 4),
                confidence=detections.scores[rows].astype(np.float32),
                data={"row": rows},
            )
            with warnings.catch_warnings():
                # A repeated frame time (a still source) only skips a prediction step.
                warnings.simplefilter("ignore", UserWarning)
                tracked = tracks.tracker.update(boxes, timestamp=time_s)
            name = str(detections.class_names[rows[0]]) if len(rows) else ""
            self._number(tracks, tracked, track_ids, name)
        return replace(detections, track_ids=track_ids)

    def _number(self, tracks: _ClassTracks, tracked, track_ids: np.ndarray, name: str) -> None:
        """Write run ids into ``track_ids`` for the rows the library returned."""
        rows = np.asarray(tracked.data.get("row", []), np.int64).tolist()
        local_ids = np.asarray(tracked.tracker_id, np.int64).tolist()
        numbered = {t.tracker_id: t for t in tracks.tracker.tracks if t.tracker_id >= 0}
        # With every detection above the library's thresholds, a row without an id is one
        # that started a track: those tracks and those rows come in the same order.
        started = [t for t in tracks.tracker.tracks if t.tracker_id < 0 and t not in tracks.born]
        unnumbered = [row for row, local_id in zip(rows, local_ids, strict=True) if local_id < 0]
        if len(started) == len(unnumbered):  # else a library change: numbered a frame later
            for tracklet, row in zip(started, unnumbered, strict=True):
                tracks.born[tracklet] = track_ids[row] = self._new_id(name)
        for row, local_id in zip(rows, local_ids, strict=True):
            if local_id < 0:
                continue
            if local_id not in tracks.ids:
                tracklet = numbered.get(local_id)
                run_id = tracks.born.pop(tracklet, None) if tracklet is not None else None
                tracks.ids[local_id] = run_id if run_id is not None else self._new_id(name)
            track_ids[row] = tracks.ids[local_id]
        # Started tracks that were dropped before the library numbered them.
        alive = set(map(id, tracks.tracker.tracks))
        tracks.born = {t: i for t, i in tracks.born.items() if id(t) in alive}

    def _new_id(self, class_name: str) -> int:
        run_id, self._next_id = self._next_id, self._next_id + 1
        self.count_per_class[class_name] = self.count_per_class.get(class_name, 0) + 1
        return run_id
