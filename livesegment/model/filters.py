"""Run-time filtering of model candidates: confidence, class, one label per object.

Every empty result gets a reason, so "nothing captured" is never silent.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np

from livesegment.errors import UsageError
from livesegment.structures import Candidates

# Mask R-CNN suppresses duplicates per class only, so one shape can come back as both a square
# and a triangle. Boxes overlapping more than this keep only the highest-scoring label.
CROSS_CLASS_IOU = 0.6


@dataclass(frozen=True, slots=True)
class Selection:
    """Indices of kept candidates (descending score) and, when none is kept, why."""

    keep: np.ndarray
    empty_reason: str | None


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box with (N, 4) xyxy boxes."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def one_label_per_object(
    xyxy: np.ndarray, scores: np.ndarray, iou_threshold: float = CROSS_CLASS_IOU
) -> np.ndarray:
    """Class-agnostic NMS; returns kept indices in descending score order."""
    order = np.argsort(-scores, kind="stable")
    kept: list[int] = []
    for index in order:
        if not kept or box_iou(xyxy[index], xyxy[kept]).max() <= iou_threshold:
            kept.append(int(index))
    return np.array(kept, dtype=np.intp)


def _scored(names: np.ndarray, scores: np.ndarray, limit: int = 3) -> str:
    return ", ".join(
        f"{name} {score:.2f}" for name, score in zip(names[:limit], scores[:limit], strict=True)
    )


def select(
    candidates: Candidates, threshold: float, classes: frozenset[str] | None = None
) -> Selection:
    """Keep candidates at or above ``threshold`` whose class is in ``classes`` (None: all).

    The reason for an empty result names the best candidate under the threshold
    ("best: circle 0.31 < 0.50"), what the class filter removed ("3 found, none in --classes:
    dog 0.91"), or that the model found nothing at all.
    """
    if len(candidates) == 0:
        return Selection(np.zeros(0, np.intp), "nothing found by the model")
    deduped = one_label_per_object(candidates.xyxy, candidates.scores)
    confident = deduped[candidates.scores[deduped] >= threshold]
    if classes is not None:
        wanted = np.isin(candidates.class_names[confident], list(classes))
        kept = confident[wanted]
    else:
        kept = confident
    if len(kept):
        return Selection(kept, None)
    if len(confident):
        listed = _scored(candidates.class_names[confident], candidates.scores[confident])
        return Selection(kept, f"{len(confident)} found, none in --classes: {listed}")
    pool = deduped
    if classes is not None and np.isin(candidates.class_names[pool], list(classes)).any():
        pool = pool[np.isin(candidates.class_names[pool], list(classes))]
    best = pool[0]
    return Selection(
        kept,
        f"best: {candidates.class_names[best]} {candidates.scores[best]:.2f} < {threshold:.2f}",
    )


def check_class_names(names, known: tuple[str, ...], model_name: str) -> frozenset[str]:
    """``names`` as a set, if every one is in ``known``.

    Raises:
        UsageError: naming the unknown class and the closest known ones.
    """
    names = tuple(names)
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            hint = (
                f"did you mean {', '.join(close)}?"
                if close
                else f"the model knows: {', '.join(known[:12])}{', …' if len(known) > 12 else ''}"
            )
            raise UsageError(
                f"unknown class {name!r} for model {model_name}; {hint}", parameter="classes"
            )
    return frozenset(names)
