"""``Detector``: one object, one call. An RGB frame in, ``Detections`` in that frame's pixels out.

It hides the three steps every caller used to repeat: run the network (an *engine*: PixelLib's
Mask R-CNN today, any callable with the same signature later), keep candidates by threshold and
class (``filters.select``), and grow the kept ones' masks to full size (``unmold``). Importing
this module imports no TensorFlow; ``Detector.load`` does, once, when a model is loaded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from livesegment.errors import UsageError
from livesegment.model.cards import ModelSpec, resolve_model
from livesegment.model.filters import check_class_names, select
from livesegment.structures import Candidates, Detections

# (model_rgb, source_shape_hw) -> Candidates with boxes in source pixels.
Engine = Callable[[np.ndarray, tuple[int, int]], Candidates]


def processing_size_wh(size_wh: tuple[int, int], long_side: int) -> tuple[int, int]:
    """Scale ``size_wh`` so its long side is ``long_side``, keeping the aspect ratio."""
    width, height = size_wh
    scale = long_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_long_side(image: np.ndarray, long_side: int) -> np.ndarray:
    """Any (H, W, 3) uint8 image, colour order kept, resized so its long side is ``long_side``."""
    height, width = image.shape[:2]
    size_wh = processing_size_wh((width, height), long_side)
    if size_wh == (width, height):
        return image
    # INTER_AREA when shrinking: the training scenes are shrunk the same way.
    shrinking = size_wh[0] < width
    return cv2.resize(
        image, size_wh, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    )


def to_model_rgb(bgr: np.ndarray, long_side: int) -> np.ndarray:
    """(H, W, 3) uint8 BGR source frame -> (h, w, 3) uint8 RGB with long side ``long_side``."""
    return cv2.cvtColor(resize_long_side(bgr, long_side), cv2.COLOR_BGR2RGB)


def unmold(candidates: Candidates, keep: np.ndarray) -> Detections:
    """Full-size masks for the kept candidates only (``keep``: indices or a boolean mask).

    Each mask is resized into its rounded box and is False elsewhere; the boxes travel along
    as ``mask_boxes``, so later stages touch each box, never the whole frame per object. The
    (N, H, W) array starts as untouched zero pages: only the boxes' rows cost memory.
    """
    keep = np.arange(len(candidates))[keep]
    height, width = candidates.shape_hw
    masks = np.zeros((len(keep), height, width), bool)
    boxes = np.round(candidates.xyxy[keep]).astype(np.int32).reshape(-1, 4)
    boxes[:, :2] = boxes[:, :2].clip(0)
    boxes[:, 2] = np.minimum(np.maximum(boxes[:, 2], boxes[:, 0] + 1), width)
    boxes[:, 3] = np.minimum(np.maximum(boxes[:, 3], boxes[:, 1] + 1), height)
    outside = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    boxes[outside] = 0
    for row, (index, (x1, y1, x2, y2)) in enumerate(zip(keep, boxes.tolist(), strict=True)):
        if outside[row]:
            continue
        probs = cv2.resize(
            candidates.mask_probs[index], (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR
        )
        masks[row, y1:y2, x1:x2] = probs >= 0.5
    return Detections(
        xyxy=candidates.xyxy[keep],
        masks=masks,
        scores=candidates.scores[keep],
        class_ids=candidates.class_ids[keep],
        class_names=candidates.class_names[keep],
        mask_boxes=boxes,
    )


@dataclass(frozen=True, slots=True)
class Timings:
    """Milliseconds of the latest call: the network, and selection plus full-size masks."""

    network_ms: float = 0.0
    select_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.network_ms + self.select_ms


class Detector:
    """A loaded model with its run-time settings; call it on RGB frames.

    Not thread-safe: build and call it from one thread (Keras graph models want the thread
    that built them).

    Args:
        engine: the network, ``(model_rgb, source_shape_hw) -> Candidates``.
        spec: the model's card (class names, input size, default threshold).
        threshold: minimum score to keep; None uses the card's default.
        classes: class names to keep; None keeps every class.
        max_size: long side in pixels the network sees; None uses the card's input size.

    Raises:
        UsageError: a class name the model does not know, or a threshold outside [0, 1].
    """

    def __init__(
        self,
        engine: Engine,
        spec: ModelSpec,
        *,
        threshold: float | None = None,
        classes: Iterable[str] | None = None,
        max_size: int | None = None,
    ):
        self.engine = engine
        self.spec = spec
        self.threshold = spec.default_threshold if threshold is None else threshold
        self.classes = classes
        self.max_size = max_size or spec.input_size
        self.timings = Timings()

    @classmethod
    def load(
        cls,
        model: str | ModelSpec | None = None,
        *,
        class_names: tuple[str, ...] | None = None,
        threshold: float | None = None,
        classes: Iterable[str] | None = None,
        speed: str | None = None,
        max_size: int | None = None,
        rois: int | None = None,
        max_instances: int | None = None,
    ) -> Detector:
        """Load a bundled or downloaded model by name, or an ``.h5`` file, with verified weights.

        Args:
            speed: ``"accurate"``, ``"balanced"`` or ``"fast"`` (see ``ModelSpec.preset``);
                None uses the model card's default preset, else ``"balanced"``.
            max_size, rois, max_instances: replace one value of the preset: the long side the
                network sees, the ROIs its classifier scores, its mask-head slots.

        Raises:
            ModelError: unknown name, or a missing, broken or mismatched weights file.
            UsageError: an unknown speed preset.
        """
        spec = model if isinstance(model, ModelSpec) else resolve_model(model, class_names)
        settings = spec.speed_settings(
            speed, max_size=max_size, rois=rois, max_instances=max_instances
        )
        from livesegment.model import segmenter  # the TensorFlow import happens here, not before

        engine = segmenter.Segmenter(spec, rois=settings.rois, max_instances=settings.max_instances)
        return cls(engine, spec, threshold=threshold, classes=classes, max_size=settings.max_size)

    @property
    def threshold(self) -> float:
        return self._threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise UsageError(f"{value:g} is outside 0-1", parameter="threshold")
        self._threshold = float(value)

    @property
    def classes(self) -> frozenset[str] | None:
        return self._classes

    @classes.setter
    def classes(self, names: Iterable[str] | None) -> None:
        self._classes = None if names is None else self.check_classes(names)

    @property
    def class_names(self) -> tuple[str, ...]:
        """The classes this model can find (background excluded)."""
        return self.spec.object_classes

    def check_classes(self, names: Iterable[str]) -> frozenset[str]:
        """The names as a set, if the model knows every one.

        Raises:
            UsageError: naming the unknown class and the closest ones the model knows.
        """
        return check_class_names(names, self.class_names, self.spec.name)

    def __call__(
        self,
        rgb: np.ndarray,
        *,
        threshold: float | None = None,
        classes: Iterable[str] | None = None,
    ) -> Detections:
        """Detect in one frame.

        Args:
            rgb: (H, W, 3) uint8 RGB frame of any size.
            threshold, classes: override the detector's settings for this call.

        Returns:
            ``Detections`` in ``rgb``'s pixels; when empty, ``empty_reason`` says why.
        """
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
        return self.detect_resized(
            resize_long_side(rgb, self.max_size),
            rgb.shape[:2],
            threshold=threshold,
            classes=classes,
        )

    def detect_resized(
        self,
        model_rgb: np.ndarray,
        shape_hw: tuple[int, int],
        *,
        threshold: float | None = None,
        classes: Iterable[str] | None = None,
    ) -> Detections:
        """Like calling the detector, for a frame already resized for the network (the
        capture thread does that while the previous frame is inferred).

        Args:
            model_rgb: (h, w, 3) uint8 RGB at processing size.
            shape_hw: the source frame's size; detections come back in its pixels.
        """
        threshold = self.threshold if threshold is None else threshold
        classes = self.classes if classes is None else self.check_classes(classes)
        started = time.perf_counter()
        candidates = self.engine(model_rgb, (int(shape_hw[0]), int(shape_hw[1])))
        inferred = time.perf_counter()
        selection = select(candidates, threshold, classes)
        detections = unmold(candidates, selection.keep).with_reason(selection.empty_reason)
        self.timings = Timings((inferred - started) * 1000, (time.perf_counter() - inferred) * 1000)
        return detections
