"""Open a video source — camera index, device path, stream URL, file, image, folder or glob of
images — and sanitise what OpenCV reports about it."""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from livesegment.errors import SourceError
from livesegment.structures import VideoInfo
from livesegment.video.images import IMAGE_SUFFIXES, ImageEntry, is_glob, list_images, read_upright
from livesegment.video.media import DecodedFrame, MediaReader

log = logging.getLogger(__name__)

STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
# Above this a reported frame rate is a container default or garbage, not a real rate.
MAX_PLAUSIBLE_FPS = 1000.0
CAMERA_PROBE_INDICES = range(10)
# A driver can block inside open(); a probe gives up on it after this.
CAMERA_TIMEOUT_S = 3.0
STREAM_OPEN_TIMEOUT_S = 5.0
# FFmpeg gives up on a silent stream after this, so a dead server cannot hang the reader.
STREAM_READ_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class SourceRequest:
    """What ``SOURCE`` on the command line asks for.

    Attributes:
        kind: "camera" (index), "device" (/dev/video*), "stream" (URL), "image" (one still
            image), "images" (a folder or glob pattern of still images) or "file" (video).
        target: the index, path, pattern or URL.
        realtime: replay a file at its own frame rate, dropping frames like a camera.
        camera_size_wh: requested camera resolution, read back after setting.
        camera_fps: requested camera frame rate, read back after setting.
    """

    kind: str
    target: str | int
    realtime: bool = False
    camera_size_wh: tuple[int, int] | None = None
    camera_fps: float | None = None
    start_s: float = 0.0
    end_s: float | None = None
    stride: int = 1

    @property
    def is_live(self) -> bool:
        return self.kind in ("camera", "device", "stream") or self.realtime

    @property
    def can_reconnect(self) -> bool:
        return self.kind in ("camera", "device", "stream")

    @property
    def is_still(self) -> bool:
        """Still images: each is one frame, and annotated copies are images."""
        return self.kind in ("image", "images")


def parse_source(
    text: str,
    *,
    realtime: bool = False,
    camera_size_wh: tuple[int, int] | None = None,
    camera_fps: float | None = None,
    start_s: float = 0.0,
    end_s: float | None = None,
    stride: int = 1,
) -> SourceRequest:
    """Classify ``text``: a bare integer is a camera index, a URL a stream, a folder or a glob
    pattern (``photos/*.jpg``, not an existing file) a set of images, else a file."""
    text = text.strip()
    extra = {
        "realtime": realtime,
        "camera_size_wh": camera_size_wh,
        "camera_fps": camera_fps,
        "start_s": start_s,
        "end_s": end_s,
        "stride": stride,
    }
    if re.fullmatch(r"\d{1,3}", text):
        return SourceRequest("camera", int(text), **extra)
    if text.lower().startswith(STREAM_SCHEMES):
        return SourceRequest("stream", text, **extra)
    if text.startswith("/dev/video"):
        return SourceRequest("device", text, **extra)
    path = Path(text).expanduser()
    if path.is_dir() or (is_glob(text) and not path.exists()):
        return SourceRequest("images", text, **extra)
    suffix = path.suffix.lower()
    return SourceRequest("image" if suffix in IMAGE_SUFFIXES else "file", text, **extra)


class VideoSource:
    """An opened source whose first frame has already been read (so opening proves reading).

    ``read()`` returns (index, time_s, bgr) or None at the end or on a failed read; live
    sources can ``reopen()``. Close with ``release()``.
    """

    def __init__(
        self,
        request: SourceRequest,
        info: VideoInfo,
        capture: cv2.VideoCapture | None,
        first_bgr: np.ndarray,
        media: MediaReader | None = None,
        first: DecodedFrame | None = None,
    ):
        self.request = request
        self.info = info
        self.capture = capture
        self.media = media
        self._pending: np.ndarray | None = first_bgr
        self._pending_decoded = first
        self._index = 0
        self._started = time.monotonic()

    @property
    def undecodable(self) -> int:
        return self.media.undecodable if self.media is not None else 0

    @property
    def decoded(self) -> int:
        return self.media.decoded if self.media is not None else self._index

    def read(self) -> tuple[int, float, np.ndarray] | None:
        """Next (index, time_s, bgr); bgr is (H, W, 3) uint8 BGR at source resolution,
        upright as a player shows it (a file's display rotation and mirroring applied).

        For files, ``index`` is the frame's position in the source and ``time_s`` comes from
        the stream's timestamps (variable frame rates keep their timing).
        """
        if self.media is not None:
            decoded, self._pending_decoded = self._pending_decoded, None
            decoded = decoded or self.media.read()
            if decoded is None:
                return None
            self._index += 1
            return decoded.index, decoded.time_s, decoded.bgr
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
        # Cameras and streams have no file timestamps: a frame's time is when it arrived.
        return index, time.monotonic() - self._started, _as_bgr(bgr)

    def reopen(self) -> bool:
        """Reconnect a camera or stream; True when a frame could be read again."""
        self.release()
        try:
            capture, first = _open_capture(self.request)
        except SourceError as error:
            log.info("reconnect failed: %s", error)
            return False
        self.capture, self._pending = capture, first
        return True

    def release(self) -> None:
        if self.capture is not None:
            self.capture.release()
            self.capture = None
        if self.media is not None:
            self.media.close()


class ImageSource(VideoSource):
    """Still images as frames: frame ``i`` is ``entries[i]`` at time 0, read upright.

    An image that cannot be read is skipped and listed in ``unreadable``; the run goes on with
    the others and reports them at the end.
    """

    def __init__(self, request: SourceRequest, entries: list[ImageEntry]):
        self.entries = entries
        self.unreadable: list[tuple[ImageEntry, str]] = []
        self._next = 0
        first = self._read_next()
        if first is None:
            if len(entries) == 1:
                raise SourceError(self.unreadable[0][1])
            raise SourceError(
                f"{request.target}: none of its {len(entries)} images could be "
                f"read (first: {self.unreadable[0][1]})"
            )
        bgr = first[2]
        height, width = bgr.shape[:2]
        name = entries[0].name if len(entries) == 1 else str(request.target)
        info = VideoInfo(
            name=name, size_wh=(width, height), fps=0.0, frame_count=len(entries), is_live=False
        )
        super().__init__(request, info, None, bgr)
        self._first = first
        self._read_ok = 1

    @property
    def decoded(self) -> int:
        return self._read_ok

    def name_of(self, index: int) -> str:
        """The name input ``index`` is known by in outputs (``a.png``)."""
        return self.entries[index].name

    def _read_next(self) -> tuple[int, float, np.ndarray] | None:
        while self._next < len(self.entries):
            index, self._next = self._next, self._next + 1
            entry = self.entries[index]
            try:
                return index, 0.0, read_upright(entry.path)
            except SourceError as error:
                log.info("skipped: %s", error)
                self.unreadable.append((entry, str(error)))
        return None

    def read(self) -> tuple[int, float, np.ndarray] | None:
        """Next (index, 0.0, bgr): ``index`` is the image's position in ``entries``; bgr is
        (H, W, 3) uint8 BGR, upright, at the image's own resolution."""
        if self._first is not None:
            first, self._first = self._first, None
            return first
        item = self._read_next()
        if item is not None:
            self._read_ok += 1
        return item

    def unreadable_report(self) -> str | None:
        """One line naming the images that could not be read, or None."""
        if not self.unreadable:
            return None
        shown = [
            f"{entry.name} ({reason.removeprefix(f'{entry.path}: ')})"
            for entry, reason in self.unreadable[:3]
        ]
        more = len(self.unreadable) - len(shown)
        return (
            f"{len(self.unreadable)} of {len(self.entries)} images could not be read and "
            f"were skipped: {'; '.join(shown)}" + (f"; and {more} more" if more else "")
        )

    def reopen(self) -> bool:
        return False

    def release(self) -> None:
        pass


def _as_bgr(frame: np.ndarray) -> np.ndarray:
    # Greyscale or BGRA decoders exist; the pipeline promises (H, W, 3) BGR.
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


def sanitised_fps(reported: float) -> float:
    if not np.isfinite(reported) or reported <= 0 or reported > MAX_PLAUSIBLE_FPS:
        return 0.0
    return float(reported)


def probe_camera(index: int, timeout_s: float = CAMERA_TIMEOUT_S) -> str:
    """ "delivers frames", "opens but gives no frame", "absent", or a timeout note."""
    outcome: list[str] = []

    def probe() -> None:
        try:
            capture = cv2.VideoCapture(index)
            try:
                if not capture.isOpened():
                    outcome.append("absent")
                else:
                    outcome.append(
                        "delivers frames" if capture.read()[0] else "opens but gives no frame"
                    )
            finally:
                capture.release()
        except cv2.error as error:
            outcome.append(f"OpenCV error ({error.msg.strip()})")

    # A driver can block in open(); the probe thread is abandoned rather than waited for.
    thread = threading.Thread(target=probe, name=f"livesegment-camera-probe-{index}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    return outcome[0] if outcome else f"no answer within {timeout_s:.0f} s"


def cameras_that_open(indices=CAMERA_PROBE_INDICES) -> list[int]:
    """Camera indices that open and deliver a frame (each probe returns quickly if absent)."""
    return [index for index in indices if probe_camera(index) == "delivers frames"]


def _open_capture(request: SourceRequest) -> tuple[cv2.VideoCapture, np.ndarray]:
    target = request.target
    if request.kind == "stream":
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(STREAM_OPEN_TIMEOUT_S * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(STREAM_READ_TIMEOUT_S * 1000),
        ]
        capture = cv2.VideoCapture(str(target), cv2.CAP_FFMPEG, params)
        # A stream (an MP4 over HTTP from a phone) can carry a display rotation; OpenCV's
        # FFmpeg backend applies it when asked (right angles only, no mirroring). It is not
        # accepted among the open parameters above.
        capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    else:
        capture = cv2.VideoCapture(target if request.kind == "camera" else str(target))
    if capture.isOpened() and request.kind in ("camera", "device"):
        _apply_camera_settings(capture, request)
    if not capture.isOpened():
        capture.release()
        raise SourceError(_open_failure(request))
    ok, first = capture.read()
    if not ok or first is None:
        capture.release()
        raise SourceError(
            f"{_describe(request)} opened but delivered no frame "
            "(in use by another program, or no signal?)"
        )
    return capture, first


def _describe(request: SourceRequest) -> str:
    return {
        "camera": f"camera {request.target}",
        "device": f"camera {request.target}",
        "stream": f"stream {request.target}",
    }.get(request.kind, str(request.target))


def _open_failure(request: SourceRequest) -> str:
    if request.kind == "camera":
        others = [i for i in cameras_that_open() if i != request.target]
        hint = (
            f"cameras that open: {', '.join(map(str, others))}"
            if others
            else "no camera opens on this machine (checked indices "
            f"{CAMERA_PROBE_INDICES.start}-{CAMERA_PROBE_INDICES.stop - 1})"
        )
        return f"could not open camera {request.target} (missing or in use?); {hint}"
    if request.kind == "device":
        return f"could not open camera {request.target} (missing or in use?)"
    return (
        f"could not open stream {request.target} within {STREAM_OPEN_TIMEOUT_S:.0f} s "
        "(server down, wrong URL, or a format FFmpeg cannot read)"
    )


def _apply_camera_settings(capture: cv2.VideoCapture, request: SourceRequest) -> None:
    if request.camera_size_wh:
        width, height = request.camera_size_wh
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        got = (
            int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        if got != (width, height):
            log.warning(
                "camera ignored --camera-size %dx%d and delivers %dx%d", width, height, *got
            )
    if request.camera_fps:
        capture.set(cv2.CAP_PROP_FPS, request.camera_fps)
        got_fps = capture.get(cv2.CAP_PROP_FPS)
        if abs(got_fps - request.camera_fps) > 0.5:
            log.warning(
                "camera ignored --camera-fps %g and reports %g fps", request.camera_fps, got_fps
            )


def _check_path(request: SourceRequest) -> None:
    path = Path(str(request.target)).expanduser()
    if not path.exists():
        raise SourceError(f"{request.target}: no such file; check the path")
    if path.is_dir():
        raise SourceError(f"{request.target}: is a folder; pass a video or image file")
    if path.stat().st_size == 0:
        raise SourceError(f"{request.target}: file is empty (0 bytes); nothing to segment")


def open_source(request: SourceRequest | str) -> VideoSource:
    """Open a source and read its first frame.

    Raises:
        SourceError: missing, unreadable, or not a video/image, with what to do about it.
    """
    if isinstance(request, str):
        request = parse_source(request)
    if request.kind in ("file", "image"):
        _check_path(request)
    if request.kind == "image":
        path = Path(str(request.target))
        return ImageSource(request, [ImageEntry(path, path.name)])
    if request.kind == "images":
        return ImageSource(request, list_images(str(request.target)))
    if request.kind == "file":
        return _open_file(request)
    capture, first = _open_capture(request)
    height, width = first.shape[:2]
    info = VideoInfo(
        name=_describe(request),
        size_wh=(width, height),
        fps=sanitised_fps(capture.get(cv2.CAP_PROP_FPS)),
        frame_count=None,
        is_live=request.is_live,
    )
    log.info(
        "opened %s: %dx%d, %.3f fps, %s frames",
        info.name,
        width,
        height,
        info.fps,
        info.frame_count,
    )
    return VideoSource(request, info, capture, first)


def _open_file(request: SourceRequest) -> VideoSource:
    media = MediaReader(Path(str(request.target)), request.start_s, request.end_s, request.stride)
    first = media.read()
    if first is None:
        media.close()
        where = f" after {request.start_s:g} s" if request.start_s else ""
        raise SourceError(
            f"{request.target}: no frame could be decoded{where} "
            "(corrupt, truncated or not a video)"
        )
    height, width = first.bgr.shape[:2]
    info = VideoInfo(
        name=Path(str(request.target)).name,
        size_wh=(width, height),
        fps=float(media.rate) if media.rate else 0.0,
        frame_count=media.claimed_frames,
        is_live=request.is_live,
        rate=media.rate,
        has_audio=media.has_audio,
    )
    log.info(
        "opened %s: %dx%d, %s fps, %s frames claimed, audio: %s, display: %s",
        info.name,
        width,
        height,
        media.rate,
        info.frame_count,
        info.has_audio,
        media.orientation.describe(),
    )
    return VideoSource(request, info, None, None, media=media, first=first)
