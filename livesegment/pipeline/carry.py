"""Carried detections: the latest inferred masks and boxes moved onto the frames after them.

A live source gives frames faster than a slow model infers them. The frames captured while the
model was busy are not dropped: each gets the latest inferred detections, moved with their
objects by sparse optical flow (OpenCV's pyramidal Lucas-Kanade), and is shown, recorded and
written as *carried* (``FrameResult.carried_from``/``carried_age``)::

    carrier = Carrier()
    carrier.start(frame, detections)          # after each inference
    moved = carrier.carry(next_frame)         # each frame captured before the next inference

Per object and per frame: corners are found inside the object's (slightly dilated) carried
mask in the previous frame, tracked into the new frame and back (points whose round trip misses
by more than a pixel are dropped), and a rotation + translation (+ mild scale) is fitted to
them with RANSAC (a median shift when fewer than four points survive, the object's previous
motion when none do). The motions add up from the inferred frame, and the inferred mask itself
is warped each time (nearest neighbour, inside its box only), so resampling errors do not
accumulate. An object whose carried mask leaves the frame is no longer carried. A detection
without a mask (an empty one) is followed by the corners inside its box, and its box is moved.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from livesegment.structures import Detections, Frame

_IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def _compose(after: np.ndarray, before: np.ndarray) -> np.ndarray:
    """The 2x3 affine doing ``before`` then ``after``."""
    return after[:, :2] @ np.vstack([before, [0.0, 0.0, 1.0]])[:2] + np.hstack(
        [np.zeros((2, 2)), after[:, 2:]]
    )


def _translation(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])


class Carrier:
    """Moves one inferred frame's detections onto the frames that follow it (see module doc).

    Args:
        max_points: corners tracked per object and frame.
        pad: pixels around each carried mask where corners are looked for (its edges).
        motion: "rigid" fits rotation + translation (+ mild scale) per object; "shift" a
            median translation only; "hold" leaves masks where they were inferred (for
            comparison: what a plain repeat of the last result shows).
    """

    MOTIONS = ("rigid", "shift", "hold")

    def __init__(self, max_points: int = 40, pad: int = 3, motion: str = "rigid"):
        if motion not in self.MOTIONS:
            raise ValueError(f"motion must be one of {self.MOTIONS}, got {motion!r}")
        self.motion = motion
        self.max_points = max_points
        self.pad = pad
        self._base: Detections | None = None
        self._base_boxes = np.zeros((0, 4), np.int32)
        self._total: list[np.ndarray] = []
        self._step: list[np.ndarray] = []
        self._previous_grey: np.ndarray | None = None
        self._previous: Detections | None = None
        self._alive = np.zeros(0, bool)

    def start(self, frame: Frame, detections: Detections) -> None:
        """Carry ``detections`` (inferred on ``frame``) from now on."""
        self._base = detections
        self._base_boxes = detections.mask_bounds().astype(np.int64)
        self._total = [_IDENTITY.copy() for _ in range(len(detections))]
        self._step = [_IDENTITY.copy() for _ in range(len(detections))]
        self._alive = np.ones(len(detections), bool)
        self._previous_grey = cv2.cvtColor(frame.bgr, cv2.COLOR_BGR2GRAY)
        self._previous = detections

    def carry(self, frame: Frame) -> Detections:
        """The started detections moved onto ``frame`` (the frame after the previous one
        carried or started); those that left the frame are gone.

        Raises:
            RuntimeError: ``start`` was never called.
        """
        if self._base is None or self._previous_grey is None or self._previous is None:
            raise RuntimeError("Carrier.carry before Carrier.start")
        grey = cv2.cvtColor(frame.bgr, cv2.COLOR_BGR2GRAY)
        alive = np.flatnonzero(self._alive)
        if self.motion == "hold":
            steps: list[np.ndarray | None] = [_IDENTITY] * len(alive)
        else:
            steps = self._motions(self._previous_grey, grey, self._previous)
        for position, i in enumerate(alive):
            step = steps[position]
            if step is None:
                step = self._step[i]  # no point to follow: the object keeps its motion
            self._step[i] = step
            self._total[i] = _compose(step, self._total[i])
        moved = self._warp(grey.shape)
        self._previous_grey = grey
        self._previous = moved
        return moved

    def _motions(
        self, previous: np.ndarray, current: np.ndarray, detections: Detections
    ) -> list[np.ndarray | None]:
        """Each object's 2x3 motion from ``previous`` to ``current``, None when unseen."""
        height, width = previous.shape
        points, owners = [], []
        kernel = np.ones((2 * self.pad + 1, 2 * self.pad + 1), np.uint8)
        bounds = detections.mask_bounds()
        for index, (x1, y1, x2, y2) in enumerate(bounds.tolist()):
            maskless = x2 <= x1 or y2 <= y1
            if maskless:  # a box without a mask (an empty one, or no mask drawn): its box
                x1, y1, x2, y2 = np.round(detections.xyxy[index]).astype(int).tolist()
            x1, y1 = max(0, x1 - self.pad), max(0, y1 - self.pad)
            x2, y2 = min(width, x2 + self.pad), min(height, y2 + self.pad)
            if x2 - x1 < 3 or y2 - y1 < 3:
                continue
            if maskless:
                region = np.ones((y2 - y1, x2 - x1), np.uint8)
            else:
                region = cv2.dilate(detections.masks[index, y1:y2, x1:x2].view(np.uint8), kernel)
            found = cv2.goodFeaturesToTrack(
                previous[y1:y2, x1:x2],
                maxCorners=self.max_points,
                qualityLevel=0.01,
                minDistance=3,
                mask=region,
                blockSize=3,
            )
            if found is None:
                continue
            points.append(found.reshape(-1, 2) + np.array([x1, y1], np.float32))
            owners.append(np.full(len(found), index))
        motions: list[np.ndarray | None] = [None] * len(detections)
        if not points:
            return motions
        start = np.concatenate(points).astype(np.float32)
        owner = np.concatenate(owners)
        lk = {"winSize": (21, 21), "maxLevel": 3}
        ahead, found_ahead, _ = cv2.calcOpticalFlowPyrLK(previous, current, start, None, **lk)
        back, found_back, _ = cv2.calcOpticalFlowPyrLK(current, previous, ahead, None, **lk)
        round_trip = np.linalg.norm(back - start, axis=1)
        good = (found_ahead.ravel() == 1) & (found_back.ravel() == 1) & (round_trip < 1.0)
        for index in range(len(detections)):
            chosen = good & (owner == index)
            before, after = start[chosen], ahead[chosen]
            if len(before) >= 4 and self.motion == "rigid":
                fitted, _ = cv2.estimateAffinePartial2D(
                    before, after, method=cv2.RANSAC, ransacReprojThreshold=1.5
                )
                if fitted is not None:
                    scale = float(np.hypot(fitted[0, 0], fitted[1, 0]))
                    if 0.9 <= scale <= 1.1:
                        motions[index] = fitted
                        continue
            if len(before):
                dx, dy = np.median(after - before, axis=0)
                motions[index] = _translation(float(dx), float(dy))
        return motions

    def _warp(self, shape_hw: tuple[int, int]) -> Detections:
        """The inferred masks moved by each object's motion so far."""
        base = self._base
        assert base is not None
        height, width = shape_hw
        alive = np.flatnonzero(self._alive)
        masks = np.zeros((len(base), height, width), bool)
        boxes = np.zeros((len(base), 4), np.int32)
        xyxy = base.xyxy.copy()
        for i in alive:
            bx1, by1, bx2, by2 = self._base_boxes[i].tolist()
            total = self._total[i]
            if bx2 <= bx1 or by2 <= by1:
                # No mask to move: the box alone, as long as some of it is in the frame.
                x1, y1, x2, y2 = base.xyxy[i].astype(np.float64).tolist()
                corners = np.array([[x1, y1], [x2, y1], [x1, y2], [x2, y2]])
                moved = corners @ total[:, :2].T + total[:, 2]
                x1, y1 = np.maximum(moved.min(axis=0), 0.0)
                x2, y2 = np.minimum(moved.max(axis=0), (width, height))
                if x2 <= x1 or y2 <= y1:
                    self._alive[i] = False
                else:
                    xyxy[i] = (x1, y1, x2, y2)
                continue
            corners = np.array([[bx1, by1], [bx2, by1], [bx1, by2], [bx2, by2]], np.float64)
            moved = corners @ total[:, :2].T + total[:, 2]
            x1, y1 = np.floor(moved.min(axis=0)).astype(int) - 1
            x2, y2 = np.ceil(moved.max(axis=0)).astype(int) + 1
            x1, y1, x2, y2 = max(0, x1), max(0, y1), min(width, x2), min(height, y2)
            if x2 <= x1 or y2 <= y1:
                self._alive[i] = False
                continue
            # Base crop coordinates -> new crop coordinates.
            into_crop = _compose(_translation(-x1, -y1), _compose(total, _translation(bx1, by1)))
            crop = cv2.warpAffine(
                base.masks[i, by1:by2, bx1:bx2].view(np.uint8),
                into_crop,
                (x2 - x1, y2 - y1),
                flags=cv2.INTER_NEAREST,
            ).view(bool)
            rows, columns = np.flatnonzero(crop.any(axis=1)), np.flatnonzero(crop.any(axis=0))
            if len(rows) == 0:
                self._alive[i] = False
                continue
            masks[i, y1:y2, x1:x2] = crop
            boxes[i] = (
                x1 + columns[0],
                y1 + rows[0],
                x1 + columns[-1] + 1,
                y1 + rows[-1] + 1,
            )
            xyxy[i] = boxes[i]
        moved = dataclasses.replace(base, xyxy=xyxy, masks=masks, mask_boxes=boxes)
        return moved[self._alive].with_reason(base.empty_reason)
