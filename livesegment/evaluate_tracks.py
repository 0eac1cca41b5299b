"""Tracking quality of a tracked detections JSONL against truth with persistent ids.

IDF1, ID switches and MOTA come from py-motmetrics, fed frame by frame with the distance
1 - mask IoU between same-class pairs (pairs below the IoU threshold, or of different
classes, cannot match)::

    report = evaluate_tracks(load_jsonl_frames("run.jsonl"), load_jsonl_frames("truth.jsonl"))
    if report is not None:
        print(report.format())
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from pycocotools import mask as mask_utils

from livesegment.evaluate import FrameRecord

# Detections without a track id (the tracker did not follow them) each count as a track of
# their own, numbered from here so they never meet a real id.
_UNTRACKED_FIRST_ID = 1 << 40


@dataclass(frozen=True, slots=True)
class TrackingReport:
    """Identity-aware scores over the frames present in both files.

    Attributes:
        iou_threshold: Minimum mask IoU for a (detection, truth) pair to match.
        frames_evaluated: Frames present in both files.
        truth_ids: Distinct truth objects seen.
        track_ids: Distinct track ids among the detections.
        idf1: Identity F1 (the share of detections matched to the right object under the best
            one-to-one mapping of tracks to objects); nan without truth and detections.
        id_switches: Times a truth object was matched to another track than before.
        mota: 1 - (misses + false positives + switches) / truth objects; nan without truth.
    """

    iou_threshold: float
    frames_evaluated: int
    truth_ids: int
    track_ids: int
    idf1: float
    id_switches: int
    mota: float

    @property
    def id_switches_per_100_frames(self) -> float:
        if not self.frames_evaluated:
            return math.nan
        return 100 * self.id_switches / self.frames_evaluated

    def format(self) -> str:
        return "\n".join(
            [
                f"IDF1               {_fmt(self.idf1)} ({self.track_ids} tracks for "
                f"{self.truth_ids} truth objects)",
                f"ID switches        {self.id_switches} "
                f"({_fmt(self.id_switches_per_100_frames, 2)} per 100 frames)",
                f"MOTA               {_fmt(self.mota)}",
            ]
        )

    def to_dict(self) -> dict[str, object]:
        """JSON-ready; nan becomes None."""
        return {
            "frames_evaluated": self.frames_evaluated,
            "truth_ids": self.truth_ids,
            "track_ids": self.track_ids,
            "idf1": _json_float(self.idf1),
            "id_switches": self.id_switches,
            "id_switches_per_100_frames": _json_float(self.id_switches_per_100_frames),
            "mota": _json_float(self.mota),
        }


def _fmt(value: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)


def carries_ids(frames: Iterable[FrameRecord]) -> bool:
    """Whether a file records identities: some instance has one."""
    return any(i.identity is not None for f in frames for i in f.instances)


def _distances(det: FrameRecord, truth: FrameRecord, iou_threshold: float) -> np.ndarray:
    """(truth, detections) 1 - mask IoU; nan where the pair cannot match."""
    if not det.instances or not truth.instances:
        return np.empty((len(truth.instances), len(det.instances)))
    ious = np.asarray(
        mask_utils.iou(
            [t.rle for t in truth.instances],
            [d.rle for d in det.instances],
            [0] * len(det.instances),
        )
    ).reshape(len(truth.instances), len(det.instances))
    same_class = np.array(
        [[t.class_name == d.class_name for d in det.instances] for t in truth.instances]
    )
    return np.where(same_class & (ious >= iou_threshold), 1.0 - ious, np.nan)


def evaluate_tracks(
    detection_frames: Iterable[FrameRecord],
    truth_frames: Iterable[FrameRecord],
    iou_threshold: float = 0.5,
) -> TrackingReport | None:
    """Score tracks against truth identities; None unless both inputs carry ids.

    Args:
        detection_frames: Frames of a tracked detections file (``load_jsonl_frames``).
        truth_frames: Frames of a truth file whose objects have ``"id"``.
        iou_threshold: Minimum mask IoU for a match, in (0, 1] (motmetrics' maximum distance
            is 1 - this).
    """
    detections = {f.frame: f for f in detection_frames}
    truths = {f.frame: f for f in truth_frames}
    if not (carries_ids(detections.values()) and carries_ids(truths.values())):
        return None
    # pandas and motmetrics load in about a second: only when a file has tracks.
    import motmetrics

    accumulator = motmetrics.MOTAccumulator(auto_id=True)
    untracked = itertools.count(_UNTRACKED_FIRST_ID)
    common = sorted(detections.keys() & truths.keys())
    truth_ids, track_ids = set(), set()
    for index in common:
        det, truth = detections[index], truths[index]
        hypotheses = [
            d.identity if d.identity is not None else next(untracked) for d in det.instances
        ]
        objects = [t.identity for t in truth.instances]
        truth_ids.update(objects)
        track_ids.update(h for h in hypotheses if h < _UNTRACKED_FIRST_ID)
        accumulator.update(objects, hypotheses, _distances(det, truth, iou_threshold))
    metrics = motmetrics.metrics.create().compute(
        accumulator, metrics=["idf1", "num_switches", "mota"], return_dataframe=False
    )
    return TrackingReport(
        iou_threshold=iou_threshold,
        frames_evaluated=len(common),
        truth_ids=len(truth_ids),
        track_ids=len(track_ids),
        idf1=float(metrics["idf1"]),
        id_switches=int(metrics["num_switches"]),
        mota=float(metrics["mota"]),
    )
