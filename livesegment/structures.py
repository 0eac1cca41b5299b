"""Values that flow through the pipeline. numpy only: no OpenCV, no TensorFlow."""

from __future__ import annotations

import dataclasses
import enum
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured frame.

    Attributes:
        index: 0-based position in the source (files) or capture order (live).
        time_s: presentation time in seconds from the source's start.
        bgr: the frame as decoded and turned upright (display rotation applied), (H, W, 3)
            uint8 BGR at source resolution; drawn on copies only.
        rgb: the model's input, (h, w, 3) uint8 RGB, resized so its long side is the processing
            size. Converted once, on the capture thread.
        captured_at: ``time.monotonic()`` when the frame was read, for latency.
    """

    index: int
    time_s: float
    bgr: np.ndarray
    rgb: np.ndarray
    captured_at: float

    @property
    def shape_hw(self) -> tuple[int, int]:
        return self.bgr.shape[0], self.bgr.shape[1]


def _check(name: str, array: np.ndarray, expected: str, ok: bool) -> None:
    if not ok:
        raise ValueError(
            f"Detections.{name}: expected {expected}, got shape {array.shape} dtype {array.dtype}"
        )


@dataclass(frozen=True, slots=True)
class Detections:
    """Kept instances of one frame, as a struct of arrays in source-frame pixels.

    Attributes:
        xyxy: (N, 4) float32 boxes (x1, y1, x2, y2) in source pixels.
        masks: (N, H, W) bool masks at source resolution.
        scores: (N,) float32 confidences in [0, 1].
        class_ids: (N,) int32 ids into the model's class list (0 is background, never kept).
        class_names: (N,) str names matching ``class_ids``.
        empty_reason: when nothing was kept, why ("best: circle 0.31 < 0.50"); else None.
        mask_boxes: (N, 4) int32 pixel ranges (x1, y1, x2, y2; x2 and y2 exclusive) outside
            which each mask is False, when known: the detector sets them (a mask never leaves
            its box), so drawing and encoding touch each mask's box only, not the whole frame.
            None: not known; ``mask_bounds()`` then finds them. Replace them along with masks.
        track_ids: (N,) int64 persistent ids from a tracker (-1: no track took the
            detection); None when the run does not track.
    """

    xyxy: np.ndarray
    masks: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    class_names: np.ndarray
    empty_reason: str | None = None
    mask_boxes: np.ndarray | None = None
    track_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.scores)
        _check("xyxy", self.xyxy, f"({n}, 4)", self.xyxy.shape == (n, 4))
        _check(
            "masks",
            self.masks,
            f"({n}, H, W) bool",
            self.masks.ndim == 3 and len(self.masks) == n and self.masks.dtype == bool,
        )
        _check("scores", self.scores, f"({n},)", self.scores.shape == (n,))
        _check("class_ids", self.class_ids, f"({n},)", self.class_ids.shape == (n,))
        _check("class_names", self.class_names, f"({n},)", self.class_names.shape == (n,))
        if self.mask_boxes is not None:
            boxes = self.mask_boxes
            _check(
                "mask_boxes",
                boxes,
                f"({n}, 4) integers within the masks",
                boxes.shape == (n, 4)
                and boxes.dtype.kind in "iu"
                and bool(
                    (boxes[:, :2] >= 0).all()
                    and (boxes[:, 2] <= self.shape_hw[1]).all()
                    and (boxes[:, 3] <= self.shape_hw[0]).all()
                ),
            )
        if self.track_ids is not None:
            ids = self.track_ids
            _check(
                "track_ids",
                ids,
                f"({n},) int64 >= -1",
                ids.shape == (n,) and ids.dtype == np.int64 and bool((ids >= -1).all()),
            )

    @classmethod
    def empty(cls, shape_hw: tuple[int, int], reason: str | None = None) -> Detections:
        """No instances in a frame of ``shape_hw``, and why."""
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            masks=np.zeros((0, *shape_hw), bool),
            scores=np.zeros(0, np.float32),
            class_ids=np.zeros(0, np.int32),
            class_names=np.zeros(0, "<U1"),
            empty_reason=reason,
            mask_boxes=np.zeros((0, 4), np.int32),
        )

    def with_reason(self, reason: str | None) -> Detections:
        """The same instances, with the reason why none were kept (ignored when some were)."""
        return dataclasses.replace(self, empty_reason=reason if len(self) == 0 else None)

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, index) -> Detections:
        """Select instances with a boolean mask, an index array or a slice."""
        if isinstance(index, int | np.integer):
            index = [index]
        return Detections(
            self.xyxy[index],
            self.masks[index],
            self.scores[index],
            self.class_ids[index],
            self.class_names[index],
            mask_boxes=None if self.mask_boxes is None else self.mask_boxes[index],
            track_ids=None if self.track_ids is None else self.track_ids[index],
        )

    @property
    def shape_hw(self) -> tuple[int, int]:
        return self.masks.shape[1], self.masks.shape[2]

    def mask_bounds(self) -> np.ndarray:
        """(N, 4) int32 (x1, y1, x2, y2), x2 and y2 exclusive: each mask is False outside.

        ``mask_boxes`` when known (no pixel read); else the tightest boxes, found in one pass
        over the masks (empty masks get an empty box at 0, 0).
        """
        if self.mask_boxes is not None:
            return self.mask_boxes
        return tight_boxes(self.masks)


def tight_boxes(masks: np.ndarray) -> np.ndarray:
    """(N, 4) int32 (x1, y1, x2, y2), exclusive ends, around each (H, W) bool mask's True
    pixels; an empty mask gets (0, 0, 0, 0)."""
    rows, columns = masks.any(axis=2), masks.any(axis=1)
    boxes = np.zeros((len(masks), 4), np.int32)
    filled = rows.any(axis=1)
    # argmax finds the first True; on the reversed axis, the last.
    boxes[filled, 0] = columns[filled].argmax(axis=1)
    boxes[filled, 1] = rows[filled].argmax(axis=1)
    boxes[filled, 2] = columns.shape[1] - columns[filled, ::-1].argmax(axis=1)
    boxes[filled, 3] = rows.shape[1] - rows[filled, ::-1].argmax(axis=1)
    return boxes


@dataclass(frozen=True, slots=True)
class Candidates:
    """Everything the model proposed above its build-time floor, before run-time filtering.

    Masks are not yet full size: ``mask_probs`` are (N, m, m) float32 probabilities inside each
    box, resized to source resolution only for instances that are kept.

    Attributes:
        xyxy: (N, 4) float32 boxes in source pixels.
        scores: (N,) float32, sorted descending.
        class_ids: (N,) int32.
        class_names: (N,) str.
        mask_probs: (N, m, m) float32.
        shape_hw: source frame size.
    """

    xyxy: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    class_names: np.ndarray
    mask_probs: np.ndarray
    shape_hw: tuple[int, int]

    def __len__(self) -> int:
        return len(self.scores)


@dataclass(frozen=True, slots=True)
class FrameResult:
    """What a processed frame yields: the frame, its kept detections and, when none, why.

    Attributes:
        frame: the captured frame (index, time, BGR pixels, the model's RGB input).
        detections: kept instances in the frame's pixels.
        network_ms: time in the network; ``select_ms``: selection and full-size masks.
        source_name: the image's name (``a.png``) when the source is still images, else None.
        track_ms: time the tracker took (0.0 when the run does not track).
        carried_from: for a frame the model did not see (captured while it was busy on a live
            source), the index of the inferred frame whose detections were moved onto this one
            by optical flow; None for an inferred frame.
        carried_age: frames since that inferred frame (1 for the next one); 0 when inferred.
        carry_ms: time moving the detections took (0.0 when inferred).
        threshold: the score threshold the detections were kept at (a carried frame's is its
            inferred frame's); None when not known (results made outside a stream).
    """

    frame: Frame
    detections: Detections
    network_ms: float = 0.0
    select_ms: float = 0.0
    source_name: str | None = None
    track_ms: float = 0.0
    carried_from: int | None = None
    carried_age: int = 0
    carry_ms: float = 0.0
    threshold: float | None = None

    @property
    def carried(self) -> bool:
        """The detections were carried from an earlier frame, not inferred on this one."""
        return self.carried_from is not None

    @property
    def empty_reason(self) -> str | None:
        return self.detections.empty_reason

    @property
    def inference_ms(self) -> float:
        return self.network_ms + self.select_ms


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What a source reports, sanitised.

    Attributes:
        size_wh: source frame size (width, height), upright: a phone video stored as 320x240
            with a 90° display rotation is 240x320 here.
        fps: frames per second as a float (23.976 stays 23.976); 0.0 when unknown.
        frame_count: frames the container claims (it may lie), or None when unknown.
        is_live: camera or stream (newest frame wins) vs file (every frame).
        rate: the exact frame rate as a fraction (30000/1001), when the container says.
        has_audio: the file has an audio stream.
    """

    name: str
    size_wh: tuple[int, int]
    fps: float
    frame_count: int | None
    is_live: bool
    rate: Fraction | None = None
    has_audio: bool = False


class StopReason(enum.Enum):
    """Why a run ended; the CLI maps it to an exit code."""

    END = "end of the source"
    QUIT = "quit from the window"
    INTERRUPTED = "interrupted"
    FAILED = "the source failed"


def unique_objects(count_per_class: dict[str, int]) -> str:
    """``unique objects: circle: 14 unique, square: 3 unique`` (tracks per class)."""
    named = ", ".join(f"{name}: {n} unique" for name, n in sorted(count_per_class.items()))
    return f"unique objects: {named or 'none'}"


@dataclass(slots=True)
class RunSummary:
    """Counts gathered while a run goes; printed at the end."""

    frames_processed: int = 0
    # Of which carried: captured while the model was busy, shown with moved detections.
    frames_carried: int = 0
    frames_empty: int = 0
    frames_dropped: int = 0
    frames_captured: int = 0
    reconnect_attempts: int = 0
    final_threshold: float | None = None
    latencies_ms: list[float] = field(default_factory=list)
    failure: str | None = None
    frames_undecodable: int = 0
    frames_claimed: int | None = None
    frames_decoded: int = 0
    is_live: bool = False
    detections_per_class: Counter = field(default_factory=Counter)
    elapsed_s: float = 0.0
    files_written: list[Path] = field(default_factory=list)
    stop_reason: StopReason = StopReason.END
    images_folder: Path | None = None
    images_written: int = 0
    # (class name, track id) of every tracked detection written; None: the run did not track.
    tracks_seen: set[tuple[str, int]] | None = None

    @property
    def stopped_early(self) -> str | None:
        """Who stopped the run before its source ended (a failure is reported as ``failure``)."""
        if self.stop_reason in (StopReason.QUIT, StopReason.INTERRUPTED):
            return self.stop_reason.value
        return None

    def fail(self, message: str) -> None:
        self.stop_reason, self.failure = StopReason.FAILED, message

    @property
    def mean_fps(self) -> float:
        return self.frames_processed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def inferred_fps(self) -> float:
        """Frames the model saw per second (``mean_fps`` counts carried frames too)."""
        inferred = self.frames_processed - self.frames_carried
        return inferred / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def add(self, result: FrameResult) -> None:
        self.frames_processed += 1
        self.frames_carried += result.carried
        if len(result.detections) == 0:
            self.frames_empty += 1
        self.detections_per_class.update(result.detections.class_names.tolist())
        track_ids = result.detections.track_ids
        if track_ids is not None:
            if self.tracks_seen is None:
                self.tracks_seen = set()
            names = result.detections.class_names.tolist()
            self.tracks_seen.update(
                (name, track)
                for name, track in zip(names, track_ids.tolist(), strict=True)
                if track >= 0
            )

    @property
    def unique_per_class(self) -> dict[str, int] | None:
        """Distinct tracks per class name, sorted by name; None when the run did not track."""
        if self.tracks_seen is None:
            return None
        return dict(sorted(Counter(name for name, _ in self.tracks_seen).items()))

    def to_json(self) -> dict:
        return {
            "frames_processed": self.frames_processed,
            **({"frames_carried": self.frames_carried} if self.frames_carried else {}),
            "frames_empty": self.frames_empty,
            "frames_dropped": self.frames_dropped,
            "frames_undecodable": self.frames_undecodable,
            "detections_per_class": dict(sorted(self.detections_per_class.items())),
            **(
                {"unique_objects_per_class": self.unique_per_class}
                if self.tracks_seen is not None
                else {}
            ),
            "elapsed_s": round(self.elapsed_s, 3),
            "stopped_early": self.stopped_early,
            "failure": self.failure,
        }

    def format(self) -> str:
        per_class = ", ".join(
            f"{name} {count}" for name, count in sorted(self.detections_per_class.items())
        )
        lines = [
            f"frames processed: {self.frames_processed}"
            + (f" ({self.frames_carried} carried)" if self.frames_carried else "")
            + (f" (dropped {self.frames_dropped})" if self.frames_dropped else ""),
            f"detections: {per_class or 'none'}",
        ]
        if self.tracks_seen is not None:
            lines.append(unique_objects(self.unique_per_class or {}))
        lines += [
            f"frames with no detection: {self.frames_empty}",
            f"mean FPS: {self.mean_fps:.2f}"
            + (f" (inferred {self.inferred_fps:.2f})" if self.frames_carried else ""),
        ]
        if self.frames_undecodable:
            lines.append(f"{self.frames_undecodable} frames could not be decoded")
        if (
            self.frames_claimed
            and self.frames_decoded
            and not self.stopped_early
            and self.frames_claimed > self.frames_decoded * 1.05 + 1
        ):
            lines.append(
                f"the file claims {self.frames_claimed} frames; {self.frames_decoded} decoded"
            )
        if self.final_threshold is not None:
            lines.append(f"threshold at the end: {self.final_threshold:.2f}")
        if self.reconnect_attempts:
            lines.append(f"reconnect attempts: {self.reconnect_attempts}")
        if self.latencies_ms and self.is_live:
            lines.append(
                f"latency: median {np.median(self.latencies_ms):.0f} ms, "
                f"max {max(self.latencies_ms):.0f} ms"
            )
        if self.images_folder is not None:
            plural = "" if self.images_written == 1 else "s"
            lines.append(f"wrote: {self.images_written} image{plural} in {self.images_folder}")
        lines += [f"wrote: {path}" for path in self.files_written]
        if self.stopped_early:
            lines.append(f"stopped early: {self.stopped_early}")
        return "\n".join(lines)
