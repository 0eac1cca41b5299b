"""Overlay checks pixels: inside a mask the colour moves toward the class colour, outside it
does not, and the source frame is never drawn into."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from livesegment.output.overlay import (
    BoxDrawer,
    MaskDrawer,
    OverlayStyle,
    annotate,
    class_colour_bgr,
    draw_banner,
    draw_hud,
    hud_area,
    label_text,
    track_colour_bgr,
)
from livesegment.structures import Detections


def detections_with_masks(shape_hw=(60, 80)):
    masks = np.zeros((2, *shape_hw), bool)
    masks[0, 10:50, 10:70] = True  # large square
    masks[1, 20:30, 30:40] = True  # small one on top of it
    return Detections(
        xyxy=np.array([[10, 10, 70, 50], [30, 20, 40, 30]], np.float32),
        masks=masks,
        scores=np.array([0.9, 0.8], np.float32),
        class_ids=np.array([1, 2], np.int32),
        class_names=np.array(["circle", "square"]),
    )


def test_masks_blend_toward_class_colour_and_small_on_top():
    bgr = np.full((60, 80, 3), 100, np.uint8)
    original = bgr.copy()
    d = detections_with_masks()
    out = MaskDrawer(opacity=0.5).draw(bgr, d)
    np.testing.assert_array_equal(bgr, original)
    outside = ~d.masks.any(axis=0)
    np.testing.assert_array_equal(out[outside], original[outside])
    for index, (y, x) in ((0, (12, 12)), (1, (25, 35))):
        colour = np.array(class_colour_bgr(int(d.class_ids[index])), float)
        before = np.abs(original[y, x] - colour).sum()
        after = np.abs(out[y, x].astype(float) - colour).sum()
        assert after < before * 0.6, f"mask {index} did not move toward its colour"


def test_class_colours_are_fixed_and_distinct():
    colours = {class_colour_bgr(i) for i in range(1, 81)}
    assert len(colours) == 80
    # Fixed: a class keeps its colour across frames, runs and versions (videos compare).
    assert [class_colour_bgr(i) for i in (1, 2)] == [(255, 101, 38), (38, 255, 164)]


def test_banner_marks_the_bottom_rows():
    bgr = np.zeros((120, 320, 3), np.uint8)
    out = draw_banner(bgr, "best: circle 0.31 < 0.50")
    assert (out[-3:, :, 2] >= 150).mean() > 0.5  # red strip
    assert not out[:60].any()
    assert not bgr.any()


def test_annotate_shows_banner_only_when_empty():
    bgr = np.full((120, 320, 3), 40, np.uint8)
    empty = Detections.empty((120, 320))
    with_banner = annotate(bgr, empty, "nothing found by the model", [], OverlayStyle())
    without = annotate(bgr, detections_with_masks((120, 320)), None, [], OverlayStyle())
    assert (with_banner[-3:, :, 2] >= 150).mean() > 0.5
    assert (without[-3:, :, 2] >= 150).mean() < 0.1
    assert np.all(bgr == 40)


HUD = [
    "inference 12.3 FPS (81 ms)  capture 15.0 FPS",
    "latency 95 ms  dropped 0  REC",
    "threshold 0.70  classes: all",
]


def _label_image(top_y: int, shape_hw=(1080, 1920)) -> Detections:
    """One square detection whose box top is at ``top_y``."""
    masks = np.zeros((1, *shape_hw), bool)
    masks[0, top_y : top_y + 200, 40:300] = True
    detections = Detections(
        xyxy=np.array([[40, top_y, 300, top_y + 200]], np.float32),
        masks=masks,
        scores=np.array([0.93], np.float32),
        class_ids=np.array([2], np.int32),
        class_names=np.array(["square"]),
    )
    return detections


def _find_label(picture: np.ndarray, class_id: int) -> tuple[int, int, int, int] | None:
    """Bounding box (x1, y1, x2, y2) of the label's filled rectangle: the largest blob of
    exactly the class colour."""
    exact = np.all(picture == class_colour_bgr(class_id), axis=2).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(exact)
    if count < 2:
        return None
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h = stats[best, :4]
    return x, y, x + w, y + h


@pytest.mark.parametrize("top_y", [0, 40, 90])
def test_labels_near_the_top_are_not_hidden_by_the_hud(top_y):
    bgr = np.full((1080, 1920, 3), 90, np.uint8)
    detections = _label_image(top_y)
    style = OverlayStyle(masks=False, boxes=False)
    without_hud = annotate(bgr, detections, None, [], style)
    with_hud = annotate(bgr, detections, None, HUD, style)
    x1, y1, x2, y2 = _find_label(without_hud, 2)
    label = without_hud[y1:y2, x1:x2]
    # The same label, pixel for pixel, is somewhere in the picture with the HUD ...
    found = cv2.matchTemplate(with_hud, label, cv2.TM_SQDIFF)
    y, x = np.unravel_index(int(np.argmin(found)), found.shape)
    np.testing.assert_array_equal(
        with_hud[y : y + y2 - y1, x : x + x2 - x1], label, err_msg="the label is covered by the HUD"
    )
    # ... at its box's left edge, below the HUD, and the HUD itself is intact.
    hud_x1, hud_y1, hud_x2, hud_y2 = hud_area(bgr.shape[:2], HUD)
    assert x == x1 and y > hud_y2
    np.testing.assert_array_equal(
        with_hud[hud_y1 : hud_y2 + 1, hud_x1 : hud_x2 + 1],
        draw_hud(bgr, HUD)[hud_y1 : hud_y2 + 1, hud_x1 : hud_x2 + 1],
    )


def test_labels_clear_of_the_hud_stay_at_their_box():
    bgr = np.full((1080, 1920, 3), 90, np.uint8)
    detections = _label_image(400)
    style = OverlayStyle(masks=False, boxes=False)
    without_hud = annotate(bgr, detections, None, [], style)
    with_hud = annotate(bgr, detections, None, HUD, style)
    assert _find_label(with_hud, 2) == _find_label(without_hud, 2)


def _tracked(track_ids, shape_hw=(60, 80)):
    d = detections_with_masks(shape_hw)
    same_class = Detections(
        d.xyxy, d.masks, d.scores, np.array([1, 1], np.int32), np.array(["circle", "circle"])
    )
    return dataclasses.replace(same_class, track_ids=np.array(track_ids, np.int64))


def _moved_toward(out, original, colour, yx) -> bool:
    y, x = yx
    colour = np.array(colour, float)
    return np.abs(out[y, x] - colour).sum() < 0.6 * np.abs(original[y, x] - colour).sum()


def test_tracked_masks_take_their_track_colour_whatever_their_class():
    bgr = np.full((60, 80, 3), 100, np.uint8)
    out = MaskDrawer(opacity=0.5).draw(bgr, _tracked([12, 7]))
    # Two circles, two tracks: two colours, each its track's (a later frame gives the same).
    assert track_colour_bgr(12) != track_colour_bgr(7)
    assert _moved_toward(out, bgr, track_colour_bgr(12), (12, 12))
    assert _moved_toward(out, bgr, track_colour_bgr(7), (25, 35))
    again = MaskDrawer(opacity=0.5).draw(bgr, _tracked([12, 7])[::-1])
    np.testing.assert_array_equal(out, again)
    # Untracked (-1) detections keep their class colour.
    untracked = MaskDrawer(opacity=0.5).draw(bgr, _tracked([-1, 7]))
    assert _moved_toward(untracked, bgr, class_colour_bgr(1), (12, 12))


def test_labels_name_the_track_first():
    d = _tracked([12, -1])
    assert label_text(d, 0) == "#12 circle 0.90"
    assert label_text(d, 1) == "circle 0.80"
    assert label_text(detections_with_masks(), 1) == "square 0.80"
    bgr = np.zeros((60, 240, 3), np.uint8)  # wide enough for either label
    with_id = BoxDrawer(boxes=False).draw(bgr, d[[0]])
    without = BoxDrawer(boxes=False).draw(bgr, dataclasses.replace(d, track_ids=None)[[0]])
    # The "#12 " prefix makes the label strip wider.
    assert (with_id.any(axis=2).any(axis=0)).sum() > (without.any(axis=2).any(axis=0)).sum()
