"""Display orientation: phones store landscape pixels and a display matrix that tells a player
how to turn (and mirror) them. Frames are made upright once, right after decoding, so the
model, the detections, the window and every output see what a player shows.

FFmpeg's display matrix (``AV_FRAME_DATA_DISPLAYMATRIX``, libavutil/display.h) is nine int32
values, row-major, with the 2x2 part ``a b / c d`` in 16.16 fixed point. A stored pixel (x, y),
x to the right and y down, is shown at ``(a*x + c*y, b*x + d*y)`` (plus a translation that
brings the picture back into view); ``av_display_rotation_get`` of that matrix is the
counter-clockwise angle on screen. The result is pixel-identical to ffmpeg's own
``-autorotate`` in all eight orientations and agrees with OpenCV's ``CAP_PROP_ORIENTATION_AUTO``
for rotations (tests/e2e/test_rotation.py).
"""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

log = logging.getLogger(__name__)

# Snapping a matrix to the nearest right angle is silent within this tolerance (degrees).
RIGHT_ANGLE_TOLERANCE_DEG = 1.0


@dataclass(frozen=True, slots=True)
class Orientation:
    """How stored pixels become upright: transpose first, then mirror.

    The eight combinations are the four rotations and their mirror images.

    Attributes:
        transpose: swap rows and columns (every 90° and 270° orientation does).
        flip_x: then mirror left-right.
        flip_y: then mirror top-bottom.
    """

    transpose: bool = False
    flip_x: bool = False
    flip_y: bool = False

    @property
    def is_identity(self) -> bool:
        return not (self.transpose or self.flip_x or self.flip_y)

    @classmethod
    def from_display_matrix(cls, matrix: Sequence[int]) -> Orientation:
        """The orientation of FFmpeg's 3x3 display matrix (nine ints, row-major).

        Shears, scales and translations are ignored; a rotation that is not a multiple of 90°
        is snapped to the nearest one (a player would rotate by the exact angle and show
        black corners).
        """
        a, b, _, c, d, *_ = (float(v) for v in matrix)
        if a == b == c == d == 0:
            return cls()
        angle = -math.degrees(math.atan2(b, a))
        off_by = abs((angle + 45) % 90 - 45)
        if off_by > RIGHT_ANGLE_TOLERANCE_DEG:
            log.warning(
                "the video's display matrix rotates by %.1f°, not a multiple of 90°; "
                "using the nearest right angle",
                angle,
            )
        if abs(a) + abs(d) >= abs(b) + abs(c):
            # Axes kept: x' = a*x, y' = d*y.
            return cls(transpose=False, flip_x=a < 0, flip_y=d < 0)
        # Axes swapped: x' = c*y, y' = b*x, i.e. the transpose, then mirrored where negative.
        return cls(transpose=True, flip_x=c < 0, flip_y=b < 0)

    @classmethod
    def from_side_data(cls, data: bytes | None) -> Orientation:
        """From the raw side data bytes (nine native-endian int32), or upright when None."""
        if data is None or len(data) < 36:
            return cls()
        return cls.from_display_matrix(struct.unpack("=9i", bytes(data)[:36]))

    def size_wh(self, stored_wh: tuple[int, int]) -> tuple[int, int]:
        """Upright (width, height) of a picture stored as ``stored_wh``."""
        width, height = stored_wh
        return (height, width) if self.transpose else (width, height)

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Upright copy of an (H, W) or (H, W, C) uint8 image; the image itself when already
        upright. The result is C-contiguous (the encoders need that)."""
        if self.is_identity:
            return image
        # OpenCV: about 6 ms for a 1080p frame where numpy's strided copy takes 25 ms.
        if self.transpose:
            image = cv2.transpose(image)
        if self.flip_x or self.flip_y:
            image = cv2.flip(image, -1 if self.flip_x and self.flip_y else int(self.flip_x))
        return image

    def describe(self) -> str:
        """How a player turns the stored picture, in words ("rotated 90° clockwise, mirrored")."""
        # As a clockwise turn followed, when mirrored, by a left-right mirror: flip_y decides
        # the turn (transpose alone is "90° clockwise, mirrored").
        if self.transpose:
            turn, mirrored = (270 if self.flip_y else 90), self.flip_x == self.flip_y
        else:
            turn, mirrored = (180 if self.flip_y else 0), self.flip_x != self.flip_y
        words = {
            0: "",
            90: "rotated 90° clockwise",
            180: "rotated 180°",
            270: "rotated 90° counter-clockwise",
        }[turn]
        if mirrored:
            words = f"{words}, mirrored" if words else "mirrored"
        return words or "upright"


UPRIGHT = Orientation()
