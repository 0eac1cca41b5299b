"""Open a video source and sanitise what OpenCV reports about it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from livesegment.errors import SourceError
from livesegment.structures import VideoInfo

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
# Above this a reported frame rate is a container default or garbage, not a real rate.
MAX_PLAUSIBLE_FPS = 1000.0


@dataclass(slots=True)
class VideoSource:
    """An opened source whose first frame has already been read (so opening proves reading).

    Iterate ``read()`` until it returns None. Close with ``release()``.
    """

    info: VideoInfo
    capture: cv2.VideoCapture | None
    _pending: np.ndarray | None
    _index: int = 0

    def read(self) -> tuple[int, float, np.ndarray] | None:
        """Next (index, time_s, bgr) or None at the end; bgr is (H, W, 3) uint8 BGR."""
        if self._pending is not None:
            bgr, self._pending = self._pending, None
        elif self.capture is None:
            return None
        else:
            ok, bgr = self.capture.read()
            if not ok or bgr is None:
                return None
        index = self._index
        self._index += 1
        return index, self._time_of(index), _as_bgr(bgr)

    def _time_of(self, index: int) -> float:
        fps = self.info.fps
        return index / fps if fps > 0 else 0.0

    def release(self) -> None:
        if self.capture is not None:
            self.capture.release()
            self.capture = None


def _as_bgr(frame: np.ndarray) -> np.ndarray:
    # Greyscale or BGRA decoders exist; the pipeline promises (H, W, 3) BGR.
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


def _sanitised_fps(reported: float) -> float:
    if not np.isfinite(reported) or reported <= 0 or reported > MAX_PLAUSIBLE_FPS:
        return 0.0
    return float(reported)


def open_source(source: str) -> VideoSource:
    """Open a video or image file and read its first frame.

    Raises:
        SourceError: missing, unreadable, or not a video/image, with what to do about it.
    """
    path = Path(source).expanduser()
    if not path.exists():
        raise SourceError(f"{source}: no such file; check the path")
    if path.is_dir():
        raise SourceError(f"{source}: is a folder; pass a video or image file")
    if path.stat().st_size == 0:
        raise SourceError(f"{source}: file is empty (0 bytes); nothing to segment")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SourceError(f"{source}: not a readable image; check the file")
        height, width = image.shape[:2]
        info = VideoInfo(name=path.name, size_wh=(width, height), fps=0.0, frame_count=1,
                         is_live=False)
        return VideoSource(info=info, capture=None, _pending=image)
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise SourceError(f"{source}: OpenCV cannot open this file as video "
                          "(not a video, or a codec FFmpeg lacks)")
    ok, first = capture.read()
    if not ok or first is None:
        capture.release()
        raise SourceError(f"{source}: no frame could be decoded (corrupt or not a video)")
    height, width = first.shape[:2]
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    info = VideoInfo(
        name=path.name,
        size_wh=(width, height),
        fps=_sanitised_fps(capture.get(cv2.CAP_PROP_FPS)),
        frame_count=count if count > 0 else None,
        is_live=False,
    )
    log.info("opened %s: %dx%d, %.3f fps, %s frames", source, width, height, info.fps,
             info.frame_count)
    return VideoSource(info=info, capture=capture, _pending=first)
