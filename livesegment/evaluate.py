"""Score detections JSONL against ground-truth JSONL (both from this package).

Per frame, detections are taken by descending score; each one matches the unmatched truth
object of the same class with the highest mask IoU, if that IoU is at least the threshold:

    report = evaluate(load_jsonl_frames("run.jsonl"), load_jsonl_frames("shapes.truth.jsonl"))
    print(report.format())

Ratios with a zero denominator (recall with no truth objects, precision with no detections, IoU
with no matches) are ``float("nan")`` and shown as "n/a": "perfect" and "undefined" differ.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils


def encode_mask(mask_hw: np.ndarray) -> dict[str, object]:
    """COCO compressed RLE of an (H, W) bool mask, JSON-ready: ``{"size": [H, W], "counts": str}``.

    The one encoder behind the JSONL detections, the truth files and the scores.
    """
    return encode_masks(np.asarray(mask_hw)[np.newaxis])[0]


def encode_masks(masks: np.ndarray, boxes: np.ndarray | None = None) -> list[dict[str, object]]:
    """``encode_mask`` for (N, H, W) bool masks at once, reading each mask's box only.

    The run boundaries are found with numpy inside each box, and pycocotools compresses all
    masks in one call, so the cost grows with the boxes' area, not with N times the frame.

    Args:
        masks: (N, H, W) bool (or 0/1) masks.
        boxes: (N, 4) int (x1, y1, x2, y2), x2 and y2 exclusive, outside which each mask is
            False (``Detections.mask_bounds()``); None reads whole masks.
    """
    count, height, width = masks.shape
    if count == 0:
        return []
    if boxes is None:
        boxes = np.tile(np.array([0, 0, width, height]), (count, 1))
    uncompressed = []
    for mask, (x1, y1, x2, y2) in zip(masks, np.asarray(boxes).tolist(), strict=True):
        if x2 > x1 and y2 > y1:
            changes = _run_starts(mask[y1:y2, x1:x2].astype(bool, copy=False), x1, y1, height)
            changes = changes[changes < height * width]
        else:
            changes = np.zeros(0, np.int64)
        counts = np.diff(changes, prepend=0, append=height * width)
        uncompressed.append({"size": [height, width], "counts": counts})
    return [
        {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}
        for rle in mask_utils.frPyObjects(uncompressed, height, width)
    ]


def _run_starts(crop: np.ndarray, x1: int, y1: int, height: int) -> np.ndarray:
    """Where runs start in the column-major order COCO counts in, as indices into the whole
    (height, W) mask, for a mask that is False outside ``crop`` placed at (x1, y1)."""
    crop_h, crop_w = crop.shape
    if crop_h == height:
        # Whole columns follow each other in column-major order: one stretch of the mask.
        flat = np.zeros(crop_h * crop_w + 2, bool)
        flat[1:-1] = crop.T.ravel()
        return x1 * height + np.flatnonzero(flat[1:] != flat[:-1])
    # A False pixel above and below each column (both outside the box, so False in the mask
    # too) keeps runs from joining across columns.
    padded = np.zeros((crop_w, crop_h + 2), bool)
    padded[:, 1:-1] = crop.T
    flat = padded.ravel()
    starts = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    column, row = np.divmod(starts, crop_h + 2)
    return (x1 + column) * height + y1 - 1 + row


@dataclass(frozen=True, slots=True)
class Instance:
    """One detection or truth object.

    Attributes:
        class_name: Class label, compared exactly.
        rle: COCO compressed RLE, ``{"size": [H, W], "counts": bytes}``.
        score: Detection confidence; 1.0 for truth.
        identity: The track id of a detection (``"track_id"``) or the persistent id of a
            truth object (``"id"``); None when the file has none.
    """

    class_name: str
    rle: dict[str, object]
    score: float = 1.0
    identity: int | None = None

    @classmethod
    def from_mask(cls, class_name: str, mask_hw: np.ndarray, score: float = 1.0) -> Instance:
        encoded = encode_mask(mask_hw)
        return cls(
            class_name,
            {"size": encoded["size"], "counts": str(encoded["counts"]).encode("ascii")},
            score,
        )


@dataclass(frozen=True, slots=True)
class FrameRecord:
    """The instances of one frame, from a detections or a truth file.

    Attributes:
        frame: Frame index in the video.
        shape_hw: Frame (height, width) in pixels.
        instances: Detections or truth objects, in file order.
        carried: the detections were not inferred on this frame but carried onto it from an
            earlier one (a live run's ``"carried": true``).
    """

    frame: int
    shape_hw: tuple[int, int]
    instances: tuple[Instance, ...]
    carried: bool = False


class _MatchRatios:
    """``recall`` and ``precision`` of a record with ``matched``, ``truth_objects`` and
    ``detections`` counts; nan when undefined."""

    __slots__ = ()

    @property
    def recall(self) -> float:
        """Matched truth objects / all truth objects."""
        return _ratio(self.matched, self.truth_objects)

    @property
    def precision(self) -> float:
        """Matched detections / all detections."""
        return _ratio(self.matched, self.detections)

    def _match_dict(self) -> dict[str, object]:
        """Counts, ratios and mean IoU of the matches (for records with ``mean_iou``), JSON-ready
        (nan becomes None)."""
        return {
            "truth_objects": self.truth_objects,
            "detections": self.detections,
            "matched": self.matched,
            "recall": _json_float(self.recall),
            "precision": _json_float(self.precision),
            "mean_iou": _json_float(self.mean_iou),
        }


@dataclass(frozen=True, slots=True)
class ClassScore(_MatchRatios):
    """Counts for one class."""

    class_name: str
    truth_objects: int
    detections: int
    matched: int


@dataclass(frozen=True, slots=True)
class FrameKindScore(_MatchRatios):
    """Matches over one kind of detection frames: inferred, or carried (a live run's frames
    the model had no time for, with the latest masks moved onto them)."""

    frames: int
    truth_objects: int
    detections: int
    matched: int
    mean_iou: float

    def format(self, name: str) -> str:
        return (
            f"{name:<19}{self.frames} frames: mean mask IoU {_fmt(self.mean_iou)} "
            f"({self.matched} matches), recall {_fmt(self.recall)}, "
            f"precision {_fmt(self.precision)}"
        )

    def to_dict(self) -> dict[str, object]:
        return {"frames": self.frames, **self._match_dict()}


@dataclass(frozen=True, slots=True)
class EvalReport(_MatchRatios):
    """Detection quality over the frames present in both files.

    Attributes:
        iou_threshold: Minimum mask IoU for a match.
        frames_evaluated: Frames present in both files.
        frames_only_in_detections: Frames with detections but no truth line (not evaluated).
        frames_only_in_truth: Frames with truth but no detections line (not evaluated).
        truth_objects: Truth objects in evaluated frames.
        detections: Detections in evaluated frames.
        matched: Matched (detection, truth) pairs.
        mean_iou: Mean mask IoU of matched pairs; nan without matches.
        empty_truth_frames: Evaluated frames with no truth object.
        false_detections_on_empty: Detections on those frames.
        empty_frames_with_detections: Empty truth frames with at least one detection.
        per_class: Scores by class name, sorted by name; every class in either file.
        wrong_class: (truth class, detected class, count) of unmatched detections that outline
            an unmatched truth object of another class at the IoU threshold, most frequent
            first: the model found the object but named it wrongly.
        inferred, carried: the same matches split by frame kind, when the detections file
            has carried frames (None otherwise): the carried masks' IoU against the inferred
            frames' own.
    """

    iou_threshold: float
    frames_evaluated: int
    frames_only_in_detections: int
    frames_only_in_truth: int
    truth_objects: int
    detections: int
    matched: int
    mean_iou: float
    empty_truth_frames: int
    false_detections_on_empty: int
    empty_frames_with_detections: int
    per_class: tuple[ClassScore, ...]
    wrong_class: tuple[tuple[str, str, int], ...] = ()
    inferred: FrameKindScore | None = None
    carried: FrameKindScore | None = None

    @property
    def false_detections_per_empty_frame(self) -> float:
        return _ratio(self.false_detections_on_empty, self.empty_truth_frames)

    @property
    def frames_missing(self) -> int:
        """Frames present in one file but not the other."""
        return self.frames_only_in_detections + self.frames_only_in_truth

    def format(self) -> str:
        """A short multi-line human-readable report."""
        lines = [
            f"frames evaluated   {self.frames_evaluated} (missing: "
            f"{self.frames_only_in_truth} without detections line, "
            f"{self.frames_only_in_detections} without truth line)",
            f"recall             {_fmt(self.recall)} "
            f"({self.matched}/{self.truth_objects} truth objects)",
            f"precision          {_fmt(self.precision)} "
            f"({self.matched}/{self.detections} detections)",
            f"mean mask IoU      {_fmt(self.mean_iou)} "
            f"({self.matched} matches at IoU >= {self.iou_threshold:.2f})",
            f"empty frames       {self.empty_truth_frames}: "
            f"{self.false_detections_on_empty} false detections "
            f"({_fmt(self.false_detections_per_empty_frame)} per frame) "
            f"on {self.empty_frames_with_detections} frames",
        ]
        width = max((len(c.class_name) for c in self.per_class), default=0)
        for c in self.per_class:
            lines.append(
                f"  {c.class_name:<{width}}  recall {_fmt(c.recall)} "
                f"({c.matched}/{c.truth_objects})  precision {_fmt(c.precision)} "
                f"({c.matched}/{c.detections})"
            )
        if self.wrong_class:
            named = ", ".join(
                f"{truth} as {detected} {count}" for truth, detected, count in self.wrong_class
            )
            total = sum(count for *_, count in self.wrong_class)
            lines.append(
                f"wrong class        {total} detections outline an object of another class: {named}"
            )
        if self.inferred is not None and self.carried is not None:
            lines.append(self.inferred.format("inferred frames"))
            lines.append(self.carried.format("carried frames"))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary; nan ratios become ``None``."""
        return {
            "iou_threshold": self.iou_threshold,
            "frames_evaluated": self.frames_evaluated,
            "frames_only_in_detections": self.frames_only_in_detections,
            "frames_only_in_truth": self.frames_only_in_truth,
            **self._match_dict(),
            "empty_truth_frames": self.empty_truth_frames,
            "false_detections_on_empty": self.false_detections_on_empty,
            "false_detections_per_empty_frame": _json_float(self.false_detections_per_empty_frame),
            "empty_frames_with_detections": self.empty_frames_with_detections,
            "per_class": {
                c.class_name: {
                    "truth_objects": c.truth_objects,
                    "detections": c.detections,
                    "matched": c.matched,
                    "recall": _json_float(c.recall),
                    "precision": _json_float(c.precision),
                }
                for c in self.per_class
            },
            "wrong_class": [
                {"truth": truth, "detected_as": detected, "count": count}
                for truth, detected, count in self.wrong_class
            ],
            **(
                {"inferred": self.inferred.to_dict(), "carried": self.carried.to_dict()}
                if self.inferred is not None and self.carried is not None
                else {}
            ),
        }


def _ratio(numerator: int | float, denominator: int) -> float:
    return numerator / denominator if denominator else math.nan


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)


def _parse_rle(raw: Mapping[str, Any], shape_hw: tuple[int, int], where: str) -> dict[str, object]:
    size = [int(s) for s in raw["size"]]
    if tuple(size) != shape_hw:
        raise ValueError(f"{where}: mask size {size} differs from the frame's [H, W] {shape_hw}")
    counts = raw["counts"]
    if isinstance(counts, list):  # uncompressed RLE
        return mask_utils.frPyObjects({"size": size, "counts": counts}, *size)
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    return {"size": size, "counts": counts}


def _identity(raw: Mapping[str, Any]) -> int | None:
    value = raw.get("track_id", raw.get("id"))
    return None if value is None else int(value)


def load_jsonl_frames(path: str | Path) -> list[FrameRecord]:
    """Read a detections or truth JSON Lines file into frames sorted by index.

    A line is a frame if it has a ``"frame"`` key; others (such as a trailing run summary) are
    skipped. Instances come from ``"detections"`` (with ``"score"`` and, when tracked,
    ``"track_id"``) or ``"objects"`` (truth, with ``"id"`` in videos).

    Raises:
        ValueError: Malformed JSON, a repeated frame index, or a mask of the wrong size.
    """
    frames: dict[int, FrameRecord] = {}
    with Path(path).open(encoding="utf-8") as file:
        for line_no, line in enumerate(file, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{where}: not JSON ({error.msg})") from None
            if not isinstance(record, dict) or "frame" not in record:
                continue
            index = int(record["frame"])
            if index in frames:
                raise ValueError(f"{where}: frame {index} appears twice")
            shape_hw = (int(record["height"]), int(record["width"]))
            raw_instances = record.get("detections", record.get("objects", []))
            instances = tuple(
                Instance(
                    class_name=str(raw["class"]),
                    rle=_parse_rle(raw["mask"], shape_hw, where),
                    score=float(raw.get("score", 1.0)),
                    identity=_identity(raw),
                )
                for raw in raw_instances
            )
            frames[index] = FrameRecord(
                index, shape_hw, instances, carried=bool(record.get("carried", False))
            )
    return [frames[i] for i in sorted(frames)]


def _match_frame(
    detections: tuple[Instance, ...], truths: tuple[Instance, ...], iou_threshold: float
) -> tuple[list[tuple[int, int, float]], list[tuple[int, int, float]]]:
    """Greedy same-class matches, then greedy matches of the remaining detections to the
    remaining truth objects of another class; both as (detection index, truth index, IoU)."""
    if not detections or not truths:
        return [], []
    ious = np.asarray(
        mask_utils.iou([d.rle for d in detections], [t.rle for t in truths], [0] * len(truths))
    ).reshape(len(detections), len(truths))
    same_class = np.array([[d.class_name == t.class_name for t in truths] for d in detections])
    overlapping = ious >= iou_threshold
    # Stable sort: equal scores keep file order, so results do not depend on sort internals.
    by_score = sorted(range(len(detections)), key=lambda i: -detections[i].score)
    taken_truth = np.zeros(len(truths), bool)
    matched_detection = np.zeros(len(detections), bool)
    matches, misnamed = [], []
    for allowed, found in (
        (same_class & overlapping, matches),
        (~same_class & overlapping, misnamed),
    ):
        candidates = np.where(allowed, ious, -1.0)
        for d in by_score:
            if matched_detection[d]:
                continue
            row = np.where(taken_truth, -1.0, candidates[d])
            t = int(np.argmax(row))
            if row[t] >= 0.0:
                taken_truth[t] = matched_detection[d] = True
                found.append((d, t, float(ious[d, t])))
    return matches, misnamed


@dataclass(slots=True)
class _Tally:
    """Counts summed over frames while ``evaluate`` walks them."""

    truth: Counter = field(default_factory=Counter)
    detected: Counter = field(default_factory=Counter)
    matched: Counter = field(default_factory=Counter)
    ious: list[float] = field(default_factory=list)
    wrong_class: Counter = field(default_factory=Counter)
    empty_frames: int = 0
    false_on_empty: int = 0
    empty_with_detections: int = 0
    # Per frame kind (False: inferred, True: carried): frames, truth, detections, match IoUs.
    kinds: dict[bool, list] = field(
        default_factory=lambda: {False: [0, 0, 0, []], True: [0, 0, 0, []]}
    )

    def kind_score(self, carried: bool) -> FrameKindScore:
        frames, truth, detections, ious = self.kinds[carried]
        return FrameKindScore(
            frames, truth, detections, len(ious), float(np.mean(ious)) if ious else math.nan
        )

    def add(self, det: FrameRecord, truth: FrameRecord, iou_threshold: float) -> None:
        if det.shape_hw != truth.shape_hw:
            raise ValueError(
                f"frame {det.frame}: detections are {det.shape_hw[1]}x{det.shape_hw[0]}, "
                f"truth is {truth.shape_hw[1]}x{truth.shape_hw[0]}"
            )
        self.truth.update(t.class_name for t in truth.instances)
        self.detected.update(d.class_name for d in det.instances)
        matches, misnamed = _match_frame(det.instances, truth.instances, iou_threshold)
        for d, _t, iou in matches:
            self.matched[det.instances[d].class_name] += 1
            self.ious.append(iou)
        kind = self.kinds[det.carried]
        kind[0] += 1
        kind[1] += len(truth.instances)
        kind[2] += len(det.instances)
        kind[3].extend(iou for _d, _t, iou in matches)
        self.wrong_class.update(
            (truth.instances[t].class_name, det.instances[d].class_name) for d, t, _iou in misnamed
        )
        if not truth.instances:
            self.empty_frames += 1
            self.false_on_empty += len(det.instances)
            self.empty_with_detections += bool(det.instances)


def evaluate(
    detection_frames: Iterable[FrameRecord],
    truth_frames: Iterable[FrameRecord],
    iou_threshold: float = 0.5,
) -> EvalReport:
    """Match detections to truth frame by frame and count.

    Args:
        detection_frames: Frames from a detections file (``load_jsonl_frames``).
        truth_frames: Frames from a truth file.
        iou_threshold: Minimum mask IoU for a same-class match, in (0, 1].

    Returns:
        The report over frames present in both inputs; the others are only counted.

    Raises:
        ValueError: A threshold outside (0, 1], or a frame whose sizes differ between inputs.
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    by_index_det = {f.frame: f for f in detection_frames}
    by_index_truth = {f.frame: f for f in truth_frames}
    common = sorted(by_index_det.keys() & by_index_truth.keys())
    tally = _Tally()
    for index in common:
        tally.add(by_index_det[index], by_index_truth[index], iou_threshold)
    truth_count, det_count, match_count = tally.truth, tally.detected, tally.matched
    match_ious, wrong_class = tally.ious, tally.wrong_class
    empty_frames, false_on_empty = tally.empty_frames, tally.false_on_empty
    empty_with_detections = tally.empty_with_detections
    per_class = tuple(
        ClassScore(name, truth_count[name], det_count[name], match_count[name])
        for name in sorted(truth_count.keys() | det_count.keys())
    )
    return EvalReport(
        iou_threshold=iou_threshold,
        frames_evaluated=len(common),
        frames_only_in_detections=len(by_index_det.keys() - by_index_truth.keys()),
        frames_only_in_truth=len(by_index_truth.keys() - by_index_det.keys()),
        truth_objects=sum(truth_count.values()),
        detections=sum(det_count.values()),
        matched=len(match_ious),
        mean_iou=float(np.mean(match_ious)) if match_ious else math.nan,
        empty_truth_frames=empty_frames,
        false_detections_on_empty=false_on_empty,
        empty_frames_with_detections=empty_with_detections,
        per_class=per_class,
        wrong_class=tuple(
            (truth_name, detected, count)
            for (truth_name, detected), count in sorted(
                wrong_class.items(), key=lambda item: (-item[1], item[0])
            )
        ),
        inferred=tally.kind_score(False) if tally.kinds[True][0] else None,
        carried=tally.kind_score(True) if tally.kinds[True][0] else None,
    )
