"""Masks cost their box, not the frame: the detector grows only kept masks, each inside its
box, and drawing and RLE encoding read the boxes alone, with the same pixels and the same RLE as
painting and encoding every mask over the whole frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from livesegment.evaluate import encode_mask, encode_masks
from livesegment.model.detector import unmold
from livesegment.output.overlay import MaskDrawer, class_colour_bgr
from livesegment.output.sinks import detections_to_json
from livesegment.structures import Candidates, Detections, tight_boxes

CLASS_NAMES = np.array(["BG", "circle", "square", "triangle"])


def coco_rle(mask_hw: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask_hw.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def random_boxed_masks(rng, shape_hw, count):
    """``count`` random masks, each False outside a random box; boxes include empty ones,
    whole columns, whole rows, the whole frame and single pixels."""
    height, width = shape_hw
    masks = np.zeros((count, height, width), bool)
    boxes = np.zeros((count, 4), np.int32)
    for index in range(count):
        x1, x2 = np.sort(rng.integers(0, width + 1, 2))
        y1, y2 = np.sort(rng.integers(0, height + 1, 2))
        kind = index % 6
        if kind == 1:
            y1, y2 = 0, height
        elif kind == 2:
            x1, x2 = 0, width
        elif kind == 3:
            x1, y1, x2, y2 = 0, 0, width, height
        elif kind == 4 and width > 1 and height > 1:
            x1, y1 = rng.integers(0, width - 1), rng.integers(0, height - 1)
            x2, y2 = x1 + 1, y1 + 1
        density = rng.choice([0.0, 0.5, 0.95, 1.0])
        masks[index, y1:y2, x1:x2] = rng.random((y2 - y1, x2 - x1)) < density
        boxes[index] = x1, y1, x2, y2
    return masks, boxes


@pytest.mark.parametrize("shape_hw", [(1, 1), (1, 7), (9, 1), (13, 17), (48, 64)])
def test_rle_of_boxed_masks_is_pycocotools_rle_of_each_whole_mask(shape_hw):
    rng = np.random.default_rng(sum(shape_hw))
    for _ in range(40):
        masks, boxes = random_boxed_masks(rng, shape_hw, 12)
        expected = [coco_rle(mask) for mask in masks]
        assert encode_masks(masks, boxes) == expected
        assert encode_masks(masks) == expected, "without boxes, whole masks are read"
        assert [encode_mask(mask) for mask in masks] == expected
    assert encode_masks(np.zeros((0, *shape_hw), bool)) == []


def test_rle_and_drawing_read_each_mask_inside_its_box_only():
    # Pixels outside a box must never be read: mark them True and nothing may change.
    rng = np.random.default_rng(3)
    masks, boxes = random_boxed_masks(rng, (40, 50), 8)
    scribbled = masks | ~box_region(boxes, masks.shape[1:])
    assert encode_masks(scribbled, boxes) == encode_masks(masks, boxes)
    bgr = rng.integers(0, 256, (40, 50, 3), np.uint8)
    clean = detections(masks, boxes)
    dirty = detections(scribbled, boxes)
    np.testing.assert_array_equal(MaskDrawer().draw(bgr, dirty), MaskDrawer().draw(bgr, clean))


def box_region(boxes, shape_hw):
    region = np.zeros((len(boxes), *shape_hw), bool)
    for index, (x1, y1, x2, y2) in enumerate(boxes):
        region[index, y1:y2, x1:x2] = True
    return region


def detections(masks, boxes=None, class_ids=None):
    count = len(masks)
    class_ids = np.arange(count, dtype=np.int32) % 3 + 1 if class_ids is None else class_ids
    return Detections(
        xyxy=np.zeros((count, 4), np.float32),
        masks=masks,
        scores=np.linspace(0.99, 0.7, count).astype(np.float32),
        class_ids=class_ids,
        class_names=CLASS_NAMES[class_ids],
        mask_boxes=boxes,
    )


def paint_whole_frames(bgr, detections, opacity=0.5):
    """Drawing as the overlay is specified: masks painted largest first over the whole frame,
    blended once, the rest of the picture unchanged."""
    painted = bgr.copy()
    areas = detections.masks.reshape(len(detections), -1).sum(axis=1)
    for index in np.argsort(-areas, kind="stable"):
        painted[detections.masks[index]] = class_colour_bgr(int(detections.class_ids[index]))
    covered = detections.masks.any(axis=0)
    out = bgr.copy()
    out[covered] = cv2.addWeighted(painted, opacity, bgr, 1 - opacity, 0)[covered]
    return out


@pytest.mark.parametrize("opacity", [0.5, 0.3])
def test_drawing_in_boxes_gives_the_pixels_of_whole_frame_painting(opacity):
    rng = np.random.default_rng(11)
    for _ in range(30):
        masks, boxes = random_boxed_masks(rng, (36, 52), int(rng.integers(1, 9)))
        bgr = rng.integers(0, 256, (36, 52, 3), np.uint8)
        original = bgr.copy()
        expected = paint_whole_frames(bgr, detections(masks), opacity)
        for given in (boxes, None):
            out = MaskDrawer(opacity).draw(bgr, detections(masks, given))
            np.testing.assert_array_equal(out, expected)
        np.testing.assert_array_equal(bgr, original)


def candidates(count, shape_hw=(120, 160), seed=0):
    rng = np.random.default_rng(seed)
    height, width = shape_hw
    x1, y1 = rng.uniform(-5, width, count), rng.uniform(-5, height, count)
    xyxy = np.stack([x1, y1, x1 + rng.uniform(0, 60, count), y1 + rng.uniform(0, 60, count)], 1)
    xyxy = np.clip(xyxy, 0, [width, height, width, height]).astype(np.float32)
    class_ids = rng.integers(1, 4, count).astype(np.int32)
    return Candidates(
        xyxy,
        np.sort(rng.uniform(0, 1, count))[::-1].astype(np.float32),
        class_ids,
        CLASS_NAMES[class_ids],
        rng.uniform(0, 1, (count, 28, 28)).astype(np.float32),
        shape_hw,
    )


def test_only_kept_candidates_get_masks_and_each_stays_in_its_box():
    found = candidates(12)
    keep = np.array([0, 3, 4, 9])
    kept = unmold(found, keep)
    assert len(kept) == 4 and kept.masks.shape == (4, 120, 160)
    np.testing.assert_array_equal(kept.scores, found.scores[keep])
    assert not (kept.masks & ~box_region(kept.mask_boxes, (120, 160))).any()
    assert (kept.mask_bounds() == kept.mask_boxes).all()
    for row, index in enumerate(keep):
        x1, y1, x2, y2 = kept.mask_boxes[row]
        if x2 > x1:
            # Each mask is the model's own mask grown into its rounded box.
            probs = cv2.resize(found.mask_probs[index], (int(x2 - x1), int(y2 - y1)))
            np.testing.assert_array_equal(kept.masks[row, y1:y2, x1:x2], probs >= 0.5)
    subset = kept[kept.scores > np.median(kept.scores)]
    np.testing.assert_array_equal(
        subset.mask_boxes, kept.mask_boxes[kept.scores > np.median(kept.scores)]
    )
    assert len(unmold(found, np.zeros(12, bool)).mask_boxes) == 0


def test_jsonl_detections_with_and_without_boxes_are_the_same():
    kept = unmold(candidates(20, seed=5), np.arange(20))
    unboxed = Detections(kept.xyxy, kept.masks, kept.scores, kept.class_ids, kept.class_names)
    assert detections_to_json(kept) == detections_to_json(unboxed)
    assert [d["mask"] for d in detections_to_json(kept)] == [coco_rle(m) for m in kept.masks]


def test_tight_boxes_and_the_check_of_given_boxes():
    masks = np.zeros((3, 10, 12), bool)
    masks[0, 2:5, 3:9] = True
    masks[1, 9, 11] = True
    assert tight_boxes(masks).tolist() == [[3, 2, 9, 5], [11, 9, 12, 10], [0, 0, 0, 0]]
    with pytest.raises(ValueError, match="mask_boxes"):
        detections(masks, np.array([[0, 0, 13, 10]] * 3, np.int32))
    with pytest.raises(ValueError, match="mask_boxes"):
        detections(masks, np.zeros((2, 4), np.int32))
