"""Drawing: masks, boxes, labels, the HUD and the no-detection banner.

Every drawer has the signature ``draw(bgr, ...) -> bgr`` and returns a new array: the captured
frame is never drawn into. All images here are (H, W, 3) uint8 BGR.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import cv2
import numpy as np

from livesegment.structures import Detections

FONT = cv2.FONT_HERSHEY_SIMPLEX


def class_colour_bgr(class_id: int) -> tuple[int, int, int]:
    """A fixed, well-separated colour per class id (golden-ratio hue walk), as BGR."""
    hue = (class_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def track_colour_bgr(track_id: int) -> tuple[int, int, int]:
    """A fixed colour per track id, as BGR: the same hue walk, offset and a little darker so a
    track's colour reads apart from the class colours of untracked runs."""
    hue = (track_id * 0.618033988749895 + 0.31) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.8, 0.95)
    return int(b * 255), int(g * 255), int(r * 255)


def colours_bgr(detections: Detections) -> list[tuple[int, int, int]]:
    """Each detection's colour: its track's when it has one, else its class's."""
    track_ids = detections.track_ids
    return [
        track_colour_bgr(int(track_ids[i]))
        if track_ids is not None and track_ids[i] >= 0
        else class_colour_bgr(int(class_id))
        for i, class_id in enumerate(detections.class_ids)
    ]


def label_text(detections: Detections, index: int) -> str:
    """``circle 0.93``, or ``#12 circle 0.93`` for a tracked detection."""
    text = f"{detections.class_names[index]} {detections.scores[index]:.2f}"
    track_ids = detections.track_ids
    if track_ids is not None and track_ids[index] >= 0:
        return f"#{int(track_ids[index])} {text}"
    return text


@dataclass(frozen=True, slots=True)
class MaskDrawer:
    """Blends all masks in one pass, largest first so small objects stay visible on top;
    a tracked object keeps its track's colour from frame to frame, others their class's.

    Each mask is read inside its box only (``Detections.mask_bounds()``) and the blend covers
    the boxes' union, so an object costs its own area, not the frame's.
    """

    opacity: float = 0.5

    def draw(self, bgr: np.ndarray, detections: Detections) -> np.ndarray:
        out = bgr.copy()
        boxes = detections.mask_bounds().tolist()
        crops = [
            mask[y1:y2, x1:x2]
            for mask, (x1, y1, x2, y2) in zip(detections.masks, boxes, strict=True)
        ]
        areas = np.array([np.count_nonzero(crop) for crop in crops], np.int64)
        drawn = np.flatnonzero(areas)
        if len(drawn) == 0:
            return out
        left, top = (min(boxes[i][axis] for i in drawn) for axis in (0, 1))
        right, bottom = (max(boxes[i][axis] for i in drawn) for axis in (2, 3))
        # Which object shows at each pixel: later (smaller) ones overwrite earlier ones.
        shown = np.full((bottom - top, right - left), -1, np.int32)
        for index in drawn[np.argsort(-areas[drawn], kind="stable")]:
            x1, y1, x2, y2 = boxes[index]
            np.copyto(shown[y1 - top : y2 - top, x1 - left : x2 - left], index, where=crops[index])
        palette = np.array(colours_bgr(detections), np.uint8)
        # np.take and OpenCV's masked copy: numpy's boolean and fancy indexing of (H, W, 3)
        # images cost ten times more. Uncovered pixels (-1) take some colour, then stay bgr.
        painted = np.take(palette, shown, axis=0, mode="wrap")
        region = bgr[top:bottom, left:right]
        blended = cv2.addWeighted(painted, self.opacity, region, 1 - self.opacity, 0)
        covered = (shown >= 0).view(np.uint8)
        out[top:bottom, left:right] = cv2.copyTo(blended, covered, region.copy())
        return out


@dataclass(frozen=True, slots=True)
class BoxDrawer:
    """Boxes and/or "class score" labels (``#12 class score`` when tracked) at each box's
    top-left corner.

    A label that would fall under ``keep_clear`` (the HUD's x1, y1, x2, y2) is moved down to
    just below it, still at its box's left edge, so the HUD never hides it.
    """

    boxes: bool = True
    labels: bool = True
    thickness: int = 2
    keep_clear: tuple[int, int, int, int] | None = None

    def draw(self, bgr: np.ndarray, detections: Detections) -> np.ndarray:
        out = bgr.copy()
        for index, (box, colour) in enumerate(
            zip(detections.xyxy, colours_bgr(detections), strict=True)
        ):
            x1, y1, x2, y2 = (round(float(v)) for v in box)
            if self.boxes:
                cv2.rectangle(
                    out, (x1, y1), (max(x1, x2 - 1), max(y1, y2 - 1)), colour, self.thickness
                )
            if self.labels:
                _label(out, label_text(detections, index), (x1, y1), colour, self.keep_clear)
        return out


def _label(
    bgr: np.ndarray,
    text: str,
    corner_xy: tuple[int, int],
    colour: tuple[int, int, int],
    keep_clear: tuple[int, int, int, int] | None = None,
    scale: float = 0.5,
) -> None:
    (width, height), baseline = cv2.getTextSize(text, FONT, scale, 1)
    x, y = corner_xy
    y = max(y, height + baseline + 2)
    if keep_clear is not None:
        left, top, right, bottom = keep_clear
        label_top = y - height - baseline - 2
        if x <= right and x + width + 4 >= left and y >= top and label_top <= bottom:
            y = min(bottom + 1 + height + baseline + 2, bgr.shape[0] - 1)
    cv2.rectangle(bgr, (x, y - height - baseline - 2), (x + width + 4, y), colour, cv2.FILLED)
    luminance = 0.114 * colour[0] + 0.587 * colour[1] + 0.299 * colour[2]
    ink = (0, 0, 0) if luminance > 128 else (255, 255, 255)
    cv2.putText(bgr, text, (x + 2, y - baseline - 1), FONT, scale, ink, 1, cv2.LINE_AA)


def _hud_layout(
    shape_hw: tuple[int, int], lines: list[str]
) -> tuple[float, list[tuple[str, int, int, int, int]]]:
    """Font scale and (text, top y, width, height, baseline) of each HUD line."""
    scale = max(0.4, min(shape_hw) / 900)
    rows, y = [], 4
    for line in lines:
        (width, height), baseline = cv2.getTextSize(line, FONT, scale, 1)
        rows.append((line, y, width, height, baseline))
        y += height + baseline + 6
    return scale, rows


def hud_area(shape_hw: tuple[int, int], lines: list[str]) -> tuple[int, int, int, int] | None:
    """The (x1, y1, x2, y2) pixels ``draw_hud`` darkens, inclusive; None without lines."""
    _, rows = _hud_layout(shape_hw, lines)
    if not rows:
        return None
    _, y, _, height, baseline = rows[-1]
    return 4, 4, 7 + max(row[2] for row in rows), y + height + baseline + 3


def draw_hud(bgr: np.ndarray, lines: list[str]) -> np.ndarray:
    """Text lines on a dark strip in the top-left corner."""
    out = bgr.copy()
    scale, rows = _hud_layout(bgr.shape[:2], lines)
    for line, y, width, height, baseline in rows:
        sub = out[y : y + height + baseline + 4, 4 : 8 + width]
        sub[:] = (sub * 0.35).astype(np.uint8)
        cv2.putText(out, line, (6, y + height + 1), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def draw_banner(bgr: np.ndarray, reason: str) -> np.ndarray:
    """A full-width warning strip at the bottom: why nothing is shown."""
    out = bgr.copy()
    height, width = out.shape[:2]
    text = f"NO DETECTION - {reason}"
    scale = max(0.45, width / 1400)
    (text_w, text_h), baseline = cv2.getTextSize(text, FONT, scale, 1)
    while text_w > width - 12 and scale > 0.3:
        scale -= 0.05
        (text_w, text_h), baseline = cv2.getTextSize(text, FONT, scale, 1)
    strip = text_h + baseline + 12
    out[height - strip :] = (0, 0, 160)
    cv2.putText(out, text, (6, height - baseline - 6), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


@dataclass(frozen=True, slots=True)
class OverlayStyle:
    masks: bool = True
    boxes: bool = True
    labels: bool = True
    opacity: float = 0.5


def annotate(
    bgr: np.ndarray,
    detections: Detections,
    empty_reason: str | None,
    hud_lines: list[str],
    style: OverlayStyle,
) -> np.ndarray:
    """The displayed/recorded picture for one frame; ``bgr`` is left untouched."""
    out = MaskDrawer(style.opacity).draw(bgr, detections) if style.masks else bgr.copy()
    if style.boxes or style.labels:
        out = BoxDrawer(
            boxes=style.boxes, labels=style.labels, keep_clear=hud_area(bgr.shape[:2], hud_lines)
        ).draw(out, detections)
    if empty_reason is not None and len(detections) == 0:
        out = draw_banner(out, empty_reason)
    return draw_hud(out, hud_lines)
