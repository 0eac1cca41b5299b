"""The capture thread: reads frames, resizes and converts them for the model, feeds a queue.

Files keep every frame, in order, and block when the queue is full. The thread always ends the
stream with a sentinel (carrying its exception, if any) so the consumer never waits forever.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from livesegment.sources import VideoSource
from livesegment.structures import Frame


def processing_size_wh(size_wh: tuple[int, int], long_side: int) -> tuple[int, int]:
    """Scale ``size_wh`` so its long side is ``long_side``, keeping the aspect ratio."""
    width, height = size_wh
    scale = long_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def to_model_rgb(bgr: np.ndarray, long_side: int) -> np.ndarray:
    """(H, W, 3) uint8 BGR source frame -> (h, w, 3) uint8 RGB with long side ``long_side``."""
    height, width = bgr.shape[:2]
    size_wh = processing_size_wh((width, height), long_side)
    if size_wh != (width, height):
        shrinking = size_wh[0] < width
        bgr = cv2.resize(bgr, size_wh,
                         interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@dataclass(frozen=True, slots=True)
class _EndOfStream:
    error: BaseException | None


class CaptureThread:
    """Reads ``source`` on a thread named ``livesegment-capture``.

    Use as a context manager; iterate ``frames()`` on the consumer side.
    """

    def __init__(self, source: VideoSource, long_side: int, queue_size: int = 4):
        self.source = source
        self.long_side = long_side
        self._queue: queue.Queue[Frame | _EndOfStream] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="livesegment-capture",
                                        daemon=True)

    def __enter__(self) -> CaptureThread:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _put(self, item: Frame | _EndOfStream) -> bool:
        # Block while the consumer is busy, but wake up regularly to notice a stop request.
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        error: BaseException | None = None
        try:
            while not self._stop.is_set():
                item = self.source.read()
                if item is None:
                    break
                index, time_s, bgr = item
                frame = Frame(index=index, time_s=time_s, bgr=bgr,
                              rgb=to_model_rgb(bgr, self.long_side),
                              captured_at=time.monotonic())
                if not self._put(frame):
                    break
        except BaseException as caught:  # handed to the consumer, never swallowed
            error = caught
        finally:
            self._put(_EndOfStream(error))

    def frames(self, timeout_s: float = 10.0) -> Iterator[Frame]:
        """Yield frames until the end; re-raise the capture thread's exception, if any."""
        waited_s = 0.0
        while True:
            try:
                item = self._queue.get(timeout=0.5)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise RuntimeError("capture thread ended without an end-of-stream marker") from None
                waited_s += 0.5
                if waited_s >= timeout_s:
                    raise TimeoutError("no frame from the capture thread in time") from None
                continue
            waited_s = 0.0
            if isinstance(item, _EndOfStream):
                if item.error is not None:
                    raise item.error
                return
            yield item

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        # Drain so a producer blocked on a full queue can finish.
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self.source.release()
