"""Where annotated frames and detections go: a video file, a JSON Lines file, a window."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from livesegment.errors import DisplayError, OutputError
from livesegment.evaluate import encode_masks
from livesegment.paths import check_output_path
from livesegment.structures import Detections, FrameResult, RunSummary
from livesegment.video.media import CONTAINER_SUFFIXES, FALLBACK_FPS, MediaWriter

if TYPE_CHECKING:
    from livesegment.pipeline.controls import ViewState

log = logging.getLogger(__name__)


def detections_to_json(detections: Detections) -> list[dict]:
    """The JSONL ``detections`` of one frame; masks as COCO RLE, encoded box by box.

    A tracked run adds ``"track_id"`` to each (null for a detection no track took).
    """
    masks = encode_masks(detections.masks, detections.mask_bounds())
    records = [
        {
            "class": str(name),
            "score": round(float(score), 4),
            "box": [round(float(v), 1) for v in box],
            "mask": mask,
        }
        for name, score, box, mask in zip(
            detections.class_names, detections.scores, detections.xyxy, masks, strict=True
        )
    ]
    if detections.track_ids is not None:
        for record, track_id in zip(records, detections.track_ids.tolist(), strict=True):
            record["track_id"] = track_id if track_id >= 0 else None
    return records


class Sink(Protocol):
    """Where processed frames go. ``picture`` is the annotated (H, W, 3) uint8 BGR frame.

    A sink may say it needs no picture now with a ``wants_picture`` attribute that is False
    (a JSONL; a recording not running): it is then given None, and a frame that no sink
    wants drawn is not drawn.
    """

    paths: list[Path]

    def write(self, result: FrameResult, picture: np.ndarray | None) -> None: ...

    def close(self) -> None: ...


class JsonlSink:
    """One JSON object per processed frame, flushed as it is written, then a summary line.

    Args:
        path: the file (created now, truncated if it exists).
        summary: the run's summary, written as the last line on ``close()``.
        follows: a video sink whose ``frames_durable`` a line waits for, so a killed run's
            JSONL never lists a frame its video lacks; None writes every line at once.
    """

    wants_picture = False

    def __init__(self, path: Path, summary: RunSummary | None = None, follows=None):
        self.path = Path(path)
        check_output_path(self.path, "json_path")
        self.summary = summary
        self.follows = follows
        self.paths = [self.path]
        self._pending: list[FrameResult] = []
        self._queued_total = 0
        try:
            self._file = self.path.open("w", encoding="utf-8")
        except OSError as error:
            raise OutputError(
                f"cannot write ({error.strerror})", parameter="json_path", value=self.path
            ) from error

    def write(self, result: FrameResult, picture: np.ndarray | None = None) -> None:
        """Queue ``result``; write the queued lines whose frames are durable in the video."""
        durable = self.follows.frames_durable if self.follows is not None else None
        self._pending.append(result)
        keep = 0 if durable is None else max(0, self._queued_total + 1 - durable)
        self._queued_total += 1
        while len(self._pending) > keep:
            self._write_line(self._pending.pop(0))

    def _write_line(self, result: FrameResult) -> None:
        height, width = result.frame.shape_hw
        record: dict = {"frame": result.frame.index}
        if result.source_name is not None:
            record["source"] = result.source_name
        record |= {
            "time_s": round(result.frame.time_s, 6),
            "width": width,
            "height": height,
        }
        if result.carried:
            # Not inferred: the detections of frame ``carried_from`` moved onto this one.
            record |= {"carried": True, "carried_from": result.carried_from}
        if result.threshold is not None:
            # The viewer may change it during a run (keys, the web view).
            record["threshold"] = round(result.threshold, 4)
        record["detections"] = detections_to_json(result.detections)
        self._append(record)

    def _append(self, record: dict) -> None:
        try:
            self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
            self._file.flush()
        except OSError as error:
            raise OutputError(
                f"write failed ({error.strerror})", parameter="json_path", value=self.path
            ) from error

    def close(self) -> None:
        """Write what is still queued and the summary line, whose presence marks a complete
        file; safe to call twice."""
        if self._file.closed:
            return
        try:
            while self._pending:
                self._write_line(self._pending.pop(0))
            if self.summary is not None:
                self._append({"summary": self.summary.to_json()})
        finally:
            try:
                self._file.close()
            except OSError as error:  # what a failed write left in the buffer
                raise OutputError(
                    f"write failed ({error.strerror})", parameter="json_path", value=self.path
                ) from error


MAX_WINDOW_WH = (1600, 900)
SYSTEM_FONT_DIRS = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/truetype",
    "/usr/share/fonts",
    "/usr/local/share/fonts",
)


def _point_qt_at_system_fonts() -> None:
    # opencv-python points Qt at a font folder its wheel does not ship, and Qt then warns on
    # stderr at every window; a system font folder, when there is one, keeps it quiet.
    if Path(os.environ.get("QT_QPA_FONTDIR", "")).is_dir():
        return
    for folder in SYSTEM_FONT_DIRS:
        if Path(folder).is_dir():
            os.environ["QT_QPA_FONTDIR"] = folder
            return


def _x_server_reachable(display: str, timeout_s: float = 1.0) -> bool:
    # Qt aborts the whole process when it cannot reach the X server, so look first.
    match = re.fullmatch(r"(?P<host>[^:]*):(?P<number>\d+)(\.\d+)?", display)
    if not match:
        return False
    host, number = match["host"], int(match["number"])
    try:
        if host in ("", "unix"):
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(timeout_s)
                sock.connect(f"/tmp/.X11-unix/X{number}")
        else:
            with socket.create_connection((host, 6000 + number), timeout=timeout_s):
                pass
    except OSError:
        return False
    return True


def display_problem() -> str | None:
    """Why no HighGUI window can be opened here, or None when one can."""
    if not sys.platform.startswith("linux"):
        return None
    if os.environ.get("WAYLAND_DISPLAY"):
        return None
    display = os.environ.get("DISPLAY")
    if not display:
        return "no display available (DISPLAY is not set)"
    if not _x_server_reachable(display):
        return f"no display available (cannot reach the X server at DISPLAY={display})"
    return None


def display_available() -> bool:
    """Whether a HighGUI window can be opened here."""
    return display_problem() is None


class WindowSink:
    """A HighGUI window showing each annotated picture; its keys change ``controls``.

    Raises:
        DisplayError: no display, or the window cannot be created.
    """

    def __init__(self, controls: ViewState, title: str = "livesegment"):
        if (problem := display_problem()) is not None:
            raise DisplayError(problem, parameter="display")
        self.controls = controls
        self.title = title
        self.paths: list[Path] = []
        _point_qt_at_system_fonts()
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
        except cv2.error as error:
            raise DisplayError(
                f"cannot open a window ({error.msg.strip()})", parameter="display"
            ) from error
        self._sized = False

    def write(self, result: FrameResult, picture: np.ndarray) -> None:
        """Show the (H, W, 3) uint8 BGR picture and apply the key pressed, if any."""
        if not self._sized:
            height, width = picture.shape[:2]
            scale = min(1.0, MAX_WINDOW_WH[0] / width, MAX_WINDOW_WH[1] / height)
            cv2.resizeWindow(self.title, round(width * scale), round(height * scale))
            self._sized = True
        cv2.imshow(self.title, picture)
        self._apply(cv2.waitKey(1))

    def poll(self, wait_ms: int = 30) -> None:
        """Keep the window responsive while no new picture comes (paused)."""
        self._apply(cv2.waitKey(wait_ms))

    def _apply(self, key: int) -> None:
        if note := self.controls.handle_key(key):
            log.info("key: %s", note)

    def close(self) -> None:
        cv2.destroyWindow(self.title)
        cv2.waitKey(1)


class PacedRecorder:
    """Records a live source so it plays back at real speed.

    The frame rate is ``fps`` when given, else the rate frames are actually processed, measured
    over the first frames (held meanwhile). Each frame is then written as many times as the
    wall clock says, so pauses and slow frames keep their real duration.
    """

    MEASURE_FRAMES = 12
    MEASURE_S = 2.0

    def __init__(
        self, path: Path, size_wh: tuple[int, int], fps: float | None = None, codec: str = "h264"
    ):
        self.path = Path(path)
        check_output_path(self.path, "output", CONTAINER_SUFFIXES)
        self.size_wh = size_wh
        self.codec = codec
        self._fps = fps
        self._held: list[tuple[float, np.ndarray]] = []
        self._sink: MediaWriter | None = None
        self._started_at: float | None = None
        self._last: np.ndarray | None = None

    @property
    def frames_written(self) -> int:
        return self._sink.frames_written if self._sink else 0

    @property
    def frames_durable(self) -> None:
        # Frames wait here until the rate is measured; a JSONL need not wait for them.
        return None

    def write(self, bgr: np.ndarray, at_s: float) -> None:
        """Add a picture shown at monotonic time ``at_s``."""
        if self._sink is None:
            self._held.append((at_s, bgr))
            span = at_s - self._held[0][0]
            if (
                self._fps is None
                and len(self._held) < self.MEASURE_FRAMES
                and span < self.MEASURE_S
            ):
                return
            self._open()
            return
        self._write_until(at_s, bgr)

    def _open(self) -> None:
        held, self._held = self._held, []
        if self._fps is None:
            span = held[-1][0] - held[0][0]
            self._fps = (len(held) - 1) / span if len(held) > 1 and span > 0 else FALLBACK_FPS
        self._sink = MediaWriter(
            self.path, self.size_wh, Fraction(self._fps).limit_denominator(1000), self.codec
        )
        self._started_at = held[0][0]
        for at_s, bgr in held:
            self._write_until(at_s, bgr)

    def _write_until(self, at_s: float, bgr: np.ndarray) -> None:
        assert self._sink is not None and self._started_at is not None
        due = int((at_s - self._started_at) * float(self._sink.rate)) + 1
        if self._sink.frames_written == 0:
            due = max(due, 1)
        while self._sink.frames_written < due:
            self._sink.write(bgr)
        self._last = bgr

    def close(self, at_s: float | None = None) -> None:
        """Finish the file; the last picture stays on screen until ``at_s`` (default: now)."""
        if self._sink is None and self._held:
            self._open()
        if self._sink is not None:
            if self._last is not None:
                self._write_until(time.monotonic() if at_s is None else at_s, self._last)
            self._sink.close()
