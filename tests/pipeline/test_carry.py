"""Carrier: the latest inferred masks follow their objects onto later frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from livesegment.pipeline.carry import Carrier
from livesegment.structures import Detections, Frame, tight_boxes

SIZE_HW = (240, 320)


def _scene(centre_xy: tuple[float, float], angle_deg: float = 0.0, side: int = 50):
    """A grey textured background and one flat red square; returns (frame, square's mask)."""
    rng = np.random.default_rng(0)
    bgr = np.full((*SIZE_HW, 3), 90, np.uint8)
    bgr += rng.integers(0, 20, bgr.shape, dtype=np.uint8)
    corners = cv2.boxPoints(((centre_xy[0], centre_xy[1]), (side, side), angle_deg))
    mask = np.zeros(SIZE_HW, np.uint8)
    cv2.fillPoly(mask, [np.round(corners).astype(np.int32)], 1)
    bgr[mask.astype(bool)] = (30, 30, 220)
    return bgr, mask.astype(bool)


def _frame(index: int, bgr: np.ndarray) -> Frame:
    return Frame(index, index / 30, bgr, bgr, float(index))


def _detections(mask: np.ndarray) -> Detections:
    masks = mask[np.newaxis]
    boxes = tight_boxes(masks)
    return Detections(
        boxes.astype(np.float32),
        masks,
        np.array([0.9], np.float32),
        np.array([2], np.int32),
        np.array(["square"]),
        mask_boxes=boxes,
        track_ids=np.array([7], np.int64),
    )


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / np.logical_or(a, b).sum())


@pytest.mark.parametrize("motion", ["rigid", "shift"])
def test_a_moving_square_is_followed(motion):
    carrier = Carrier(motion=motion)
    bgr, mask = _scene((100, 100))
    carrier.start(_frame(0, bgr), _detections(mask))
    for step in range(1, 11):
        bgr, truth = _scene((100 + 4 * step, 100 + 2 * step))
        moved = carrier.carry(_frame(step, bgr))
    assert _iou(moved.masks[0], truth) > 0.9
    assert moved.track_ids.tolist() == [7] and moved.class_names.tolist() == ["square"]
    np.testing.assert_array_equal(moved.mask_boxes, tight_boxes(moved.masks))
    np.testing.assert_allclose(moved.xyxy, moved.mask_boxes)
    # Held in place, the same mask would hardly overlap any more.
    assert _iou(mask, truth) < 0.5


def test_rigid_motion_follows_a_spinning_square_better_than_a_shift():
    ious = {}
    for motion in ("rigid", "shift"):
        carrier = Carrier(motion=motion)
        bgr, mask = _scene((160, 120))
        carrier.start(_frame(0, bgr), _detections(mask))
        for step in range(1, 11):
            bgr, truth = _scene((160 + 2 * step, 120), angle_deg=4 * step)
            moved = carrier.carry(_frame(step, bgr))
        ious[motion] = _iou(moved.masks[0], truth)
    assert ious["rigid"] > 0.85
    assert ious["rigid"] > ious["shift"] + 0.05, ious


def test_an_object_leaving_the_frame_is_no_longer_carried():
    carrier = Carrier()
    bgr, mask = _scene((280, 120))
    carrier.start(_frame(0, bgr), _detections(mask))
    counts = []
    for step in range(1, 12):
        bgr, _ = _scene((280 + 10 * step, 120))
        counts.append(len(carrier.carry(_frame(step, bgr))))
    assert counts[0] == 1 and counts[-1] == 0


def test_hold_leaves_masks_in_place_and_nothing_to_carry_stays_empty():
    carrier = Carrier(motion="hold")
    bgr, mask = _scene((100, 100))
    carrier.start(_frame(0, bgr), _detections(mask))
    moved = carrier.carry(_frame(1, _scene((120, 100))[0]))
    np.testing.assert_array_equal(moved.masks[0], mask)

    carrier.start(_frame(2, bgr), Detections.empty(SIZE_HW, "best: circle 0.31 < 0.50"))
    nothing = carrier.carry(_frame(3, bgr))
    assert len(nothing) == 0 and nothing.empty_reason == "best: circle 0.31 < 0.50"


def test_carry_before_start_and_unknown_motions_are_refused():
    with pytest.raises(RuntimeError, match=r"before Carrier\.start"):
        Carrier().carry(_frame(0, _scene((100, 100))[0]))
    with pytest.raises(ValueError, match="motion"):
        Carrier(motion="dense")


def test_a_box_without_a_mask_is_carried_as_a_box():
    carrier = Carrier()
    bgr, mask = _scene((100, 100))
    boxed = _detections(mask)
    boxed = Detections(
        boxed.xyxy,
        np.zeros_like(boxed.masks),
        boxed.scores,
        boxed.class_ids,
        boxed.class_names,
        mask_boxes=np.zeros((1, 4), np.int32),
    )
    carrier.start(_frame(0, bgr), boxed)
    for step in range(1, 6):
        bgr, truth = _scene((100 + 4 * step, 100))
        moved = carrier.carry(_frame(step, bgr))
    assert len(moved) == 1 and not moved.masks.any()
    np.testing.assert_allclose(moved.xyxy[0], tight_boxes(truth[np.newaxis])[0], atol=3)
