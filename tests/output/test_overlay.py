"""Overlay checks pixels: inside a mask the colour moves toward the class colour, outside it
does not, and the source frame is never drawn into."""

from __future__ import annotations

import numpy as np

from livesegment.output.overlay import (
    MaskDrawer,
    OverlayStyle,
    annotate,
    class_colour_bgr,
    draw_banner,
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
    assert class_colour_bgr(3) == class_colour_bgr(3)


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
