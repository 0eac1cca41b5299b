"""The newest annotated frame, JPEG-encoded once, for every viewer of the browser view.

The run publishes each frame from its writer thread; viewers are coroutines on the server's
event loop. A viewer waits for a frame newer than the one it sent last and then sends the
newest, so a slow viewer skips frames instead of queueing them, and nobody waits for it: the
run never does, and other viewers read the same shared bytes.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from livesegment.structures import FrameResult

JPEG_QUALITY = 80


@dataclass(frozen=True, slots=True)
class Published:
    """One frame as viewers get it.

    Attributes:
        serial: 1 for the first frame published, then +1 per frame.
        jpeg: the annotated picture as JPEG bytes.
        picture_bgr: the annotated (H, W, 3) uint8 BGR picture (snapshots); never written to.
        info: the frame's index, time, detections (class, score, track id) and empty reason,
            as JSON-ready values.
    """

    serial: int
    jpeg: bytes
    picture_bgr: np.ndarray
    info: dict


def frame_info(result: FrameResult, latency_ms: float) -> dict:
    """What the page lists for one frame: its detections, or why there are none."""
    detections = result.detections
    track_ids = (
        detections.track_ids.tolist()
        if detections.track_ids is not None
        else [None] * len(detections)
    )
    return {
        "index": result.frame.index,
        "time_s": round(result.frame.time_s, 3),
        "carried": result.carried,
        "threshold": result.threshold,
        "inference_ms": round(result.inference_ms, 1),
        "latency_ms": round(latency_ms, 1),
        "detections": [
            {
                "class": str(name),
                "score": round(float(score), 3),
                "track_id": track_id if track_id is not None and track_id >= 0 else None,
            }
            for name, score, track_id in zip(
                detections.class_names, detections.scores, track_ids, strict=True
            )
        ],
        "empty_reason": result.empty_reason if len(detections) == 0 else None,
    }


class FrameHub:
    """The newest-frame slot shared by the viewers."""

    def __init__(self, jpeg_quality: int = JPEG_QUALITY):
        self._params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
        self._latest: Published | None = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self.closed = False
        self.viewers = 0

    @property
    def latest(self) -> Published | None:
        return self._latest

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake viewers waiting on ``loop`` (the server's) when a frame comes."""
        self._loop = loop

    def publish(self, result: FrameResult, picture_bgr: np.ndarray) -> None:
        """Encode the (H, W, 3) uint8 BGR ``picture_bgr`` of ``result`` and make it the newest
        (the run's writer thread)."""
        latency_ms = (time.monotonic() - result.frame.captured_at) * 1000
        ok, jpeg = cv2.imencode(".jpg", picture_bgr, self._params)
        if not ok:
            return  # a frame the viewers miss; the next one comes
        with self._lock:
            serial = self._latest.serial + 1 if self._latest is not None else 1
            self._latest = Published(
                serial, jpeg.tobytes(), picture_bgr, frame_info(result, latency_ms)
            )
        self._wake()

    def close(self) -> None:
        """End every viewer's stream (the run is over)."""
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._notify)
            except RuntimeError:  # the loop closed in between: nobody is waiting
                pass

    def _notify(self) -> None:
        # On the loop: everyone waiting on the current event wakes, later waiters get a new one.
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    async def newer_than(self, serial: int, timeout_s: float = 5.0) -> Published | None:
        """The newest frame once it is newer than ``serial``; None when the view closes or
        nothing newer came within ``timeout_s`` (the run is paused: the caller may ask again)."""
        deadline = time.monotonic() + timeout_s
        while not self.closed:
            latest = self._latest
            if latest is not None and latest.serial > serial:
                return latest
            if self._changed is None:
                self._changed = asyncio.Event()
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                return None
            try:
                await asyncio.wait_for(self._changed.wait(), remaining_s)
            except asyncio.TimeoutError:
                return None
        return None
