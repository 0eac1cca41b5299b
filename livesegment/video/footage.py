"""Does a picture look like the shapes world? The bundled demo model knows only flat-coloured
circles, squares and triangles; pointed at real footage it reports confident shapes on faces and
bodies. ``SceneCheck`` looks at the first frames of a run so the run can say so.

The evidence is what a synthetic shape scene has and real footage lacks: a region of one exact
colour (flat to a few levels once the frame is shrunk four times, which averages away noise and
compression ringing) whose outline is a step to a clearly different colour all around. Shadows,
clipped highlights and grey (black-and-white footage) do not count, nor does a region that goes
on (shading, gradients). Measured for issue 12: no evidence in any of the 1133 frames of
../shared/data's three videos but one (Megamind frame 92), nor in its two photos or 17 of
scikit-image's photos (a real source then always gets its warning); evidence in 2 of the first
10 frames of 198 of 200 ``make-sample`` videos (640x480, MJPG), 48 of 50 re-encoded to H.264,
39 of 40 at 320x240 and 40 of 40 at 1280x720, and in 57 of 60 stills of another generator's
flat shapes (plain, white, black, two-tone, gradient or checkered backgrounds; PNG, JPEG, MJPG,
H.264). The misses are single small shapes: the run then warns needlessly, the harmless way.
"""

from __future__ import annotations

import cv2
import numpy as np

# Frames are shrunk so the long side is at most this or a quarter of the frame, whichever is
# larger: a 640x480 shapes frame becomes 160x120, where a 40 px shape is still 10 px across.
WORK_SIDE = 160
SHRINK = 4
FLAT_RANGE = 5  # max-min per channel in a 3x3 window of a flat core
GROW = 10  # a region takes in neighbours this close to its colour
STEP = 30  # a step edge: this much colour difference just outside the region
STEP_SHARE = 0.7  # of the ring outside the region
TIGHT = 3  # a flat region: pixels this close to its colour ...
TIGHT_SHARE = 0.75  # ... make up this share of it
BACKGROUND_TIGHT_SHARE = 0.95  # a plain background (spans the frame) must be flatter still
MIN_CORE_PX = 6
MIN_REGION_PX = 12
DARK_MAX = 30  # region colour whose every channel is at most this: a shadow
BRIGHT_MIN = 225  # ... at least this: a clipped highlight
GREY_SPREAD = 3  # channels this close: black-and-white footage, not a coloured shape
CONTENT_STD = 6.0  # a frame whose grey level varies less than this shows nothing yet
MAX_CORES = 60
LOOSE_TIGHT = 5
LOOSE_STEP = 60
LOOSE_STEP_SHARE = 0.9


def _shrink(bgr: np.ndarray) -> np.ndarray:
    height, width = bgr.shape[:2]
    side = max(WORK_SIDE, max(height, width) / SHRINK)
    scale = side / max(height, width)
    if scale >= 1:
        return bgr
    size_wh = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(bgr, size_wh, interpolation=cv2.INTER_AREA)


def has_content(bgr: np.ndarray) -> bool:
    """False for a (nearly) uniform frame: black, a fade, a plain background with nothing on
    it. ``bgr`` is (H, W, 3) uint8."""
    grey = cv2.cvtColor(_shrink(bgr), cv2.COLOR_BGR2GRAY)
    return float(grey.std()) >= CONTENT_STD


def flat_shape_evidence(bgr: np.ndarray) -> bool:
    """True when the frame holds a flat-coloured region with a step edge all around it, as a
    synthetic shape scene does. ``bgr`` is (H, W, 3) uint8 BGR (channel order does not
    matter)."""
    small = _shrink(bgr)
    kernel = np.ones((3, 3), np.uint8)
    local_range = (cv2.dilate(small, kernel) - cv2.erode(small, kernel)).max(axis=2)
    flat = (local_range <= FLAT_RANGE).astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(flat, connectivity=4)
    areas = stats[:, cv2.CC_STAT_AREA]
    cores = [i for i in np.argsort(-areas) if i != 0 and areas[i] >= MIN_CORE_PX][:MAX_CORES]
    pixels = small.astype(np.int16)
    claimed = np.zeros(small.shape[:2], bool)
    for index in cores:
        x, y, w, h = (int(v) for v in stats[index, :4])
        # A shape's region reaches only a few pixels past its flat core; look that far.
        window = (slice(max(0, y - h - 4), y + 2 * h + 4), slice(max(0, x - w - 4), x + 2 * w + 4))
        core = labels[window] == index
        if claimed[window][core].any():
            continue  # part of a region already grown from a larger core
        region, distance = _grow(pixels[window], core)
        claimed[window] |= region
        if not _leaves(region, window, small.shape[:2]) and _is_flat_shape(
            region, distance, pixels[window], small.shape[:2]
        ):
            return True
    return False


def _leaves(region: np.ndarray, window: tuple[slice, slice], shape_hw: tuple[int, int]) -> bool:
    """Whether ``region`` comes within 4 px of a window side that is not the frame's edge: it
    goes on (a gradient, shading), so it is no compact shape."""
    rows, cols = window
    height, width = region.shape
    return bool(
        (rows.start > 0 and region[:4].any())
        or (rows.start + height < shape_hw[0] and region[-4:].any())
        or (cols.start > 0 and region[:, :4].any())
        or (cols.start + width < shape_hw[1] and region[:, -4:].any())
    )


def _grow(pixels: np.ndarray, core: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The connected region around ``core`` within ``GROW`` of its colour, and every pixel's
    colour distance (max over channels) from that colour."""
    colour = np.median(pixels[core], axis=0)
    distance = np.abs(pixels - colour).max(axis=2)
    near = (distance <= GROW).astype(np.uint8)
    _, labels = cv2.connectedComponents(near, connectivity=4)
    ids = np.unique(labels[core])
    return np.isin(labels, ids[ids != 0]), distance


def _is_flat_shape(
    region: np.ndarray, distance: np.ndarray, pixels: np.ndarray, frame_hw: tuple[int, int]
) -> bool:
    height, width = frame_hw
    size = int(region.sum())
    if size < MIN_REGION_PX:
        return False
    colour = np.median(pixels[region], axis=0)
    if (
        colour.max() <= DARK_MAX
        or colour.min() >= BRIGHT_MIN
        or colour.max() - colour.min() <= GREY_SPREAD
    ):
        return False
    tight = float((distance[region] <= TIGHT).mean())
    tight_loose = float((distance[region] <= LOOSE_TIGHT).mean())
    ys, xs = np.nonzero(region)
    spans = np.ptp(xs) + 1 >= 0.9 * width or np.ptp(ys) + 1 >= 0.9 * height
    if spans:
        # A plain background counts only if it is exactly flat and something sits on it.
        if tight < BACKGROUND_TIGHT_SHARE or size >= 0.998 * height * width:
            return False
    elif tight < TIGHT_SHARE and tight_loose < TIGHT_SHARE:
        return False
    # The ring 2-3 px outside the region: past the one-pixel blend of the edge.
    mask = region.astype(np.uint8)
    inner = cv2.dilate(mask, np.ones((3, 3), np.uint8))
    outer = cv2.dilate(mask, np.ones((7, 7), np.uint8))
    ring = distance[(outer > 0) & (inner == 0)]
    if ring.size == 0:
        return False
    if tight >= TIGHT_SHARE and float((ring >= STEP).mean()) >= STEP_SHARE:
        return True
    return tight_loose >= TIGHT_SHARE and float((ring >= LOOSE_STEP).mean()) >= LOOSE_STEP_SHARE


class SceneCheck:
    """Watches the first frames of a run: does the source look like the shapes world?

    A frame with a flat shape is a vote for synthetic; a frame with something in it but no flat
    shape a vote for real footage; a uniform frame (black, a fade) is skipped. Two synthetic
    votes (one for a single-frame source) settle it as synthetic, so one odd frame of real
    footage cannot; ``frames`` judged frames without them settle it as real footage.

    Args:
        frames: how many judged frames decide; 1 for an image.
    """

    def __init__(self, frames: int = 10):
        self.frames = frames
        self.needed = min(2, frames)
        self.synthetic = 0
        self.real = 0
        self.decided: bool | None = None  # True: real footage, False: synthetic

    def add(self, bgr: np.ndarray) -> bool:
        """Judge one (H, W, 3) uint8 frame; True exactly once, when it turns out to be real
        footage."""
        if self.decided is not None:
            return False
        if flat_shape_evidence(bgr):
            self.synthetic += 1
        elif has_content(bgr):
            self.real += 1
        if self.synthetic >= self.needed:
            self.decided = False
        elif self.synthetic + self.real >= self.frames:
            self.decided = True
            return True
        return False

    def finish(self) -> bool:
        """At the end of a source shorter than ``frames``: True if what it showed was real
        footage (and ``add`` has not said so already)."""
        if self.decided is not None or self.real == 0:
            return False
        self.decided = self.synthetic < min(self.needed, self.synthetic + self.real)
        return self.decided
