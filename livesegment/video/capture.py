"""The capture thread: reads frames, resizes and converts them for the model, feeds a queue.

Buffer policy follows the source: files keep every frame, in order, and block when the queue
is full; live sources (cameras, streams, ``--realtime`` replays) keep only the newest frame and
count what they drop, so what is shown stays current however slow the model is. With
``keep_skipped`` they keep the frames the newest replaced too (bounded) and hand them over with
it (``take_skipped``), for results carried onto them (``pipeline/carry.py``). The thread
always ends the stream with a sentinel carrying its exception, if any, so the consumer never
waits forever.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from livesegment.errors import SourceError
from livesegment.model.detector import to_model_rgb
from livesegment.structures import Frame
from livesegment.timing import FpsMeter
from livesegment.video.sources import VideoSource

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CapturePolicy:
    """How the capture thread treats its source.

    Attributes:
        newest_wins: keep only the newest frame (live) instead of every frame (files).
        realtime: pace reading to the file's own frame rate, as if it were a camera.
        reconnect: reopen the source when it fails or stalls (cameras, streams).
        watchdog_s: a live source that delivers no new frame for this long has stalled.
        reconnect_timeout_s: give up when reconnecting has not worked for this long.
        keep_skipped: live sources only: up to this many frames the newest one replaced are
            kept (not dropped) and handed over with it (``take_skipped``), so the results can
            show them with carried detections; 0 drops them. Beyond it the oldest are dropped.
    """

    newest_wins: bool = False
    realtime: bool = False
    reconnect: bool = False
    watchdog_s: float = 2.0
    reconnect_timeout_s: float = 10.0
    keep_skipped: int = 0

    @classmethod
    def for_source(
        cls, source: VideoSource, reconnect_timeout_s: float = 10.0, keep_skipped: int = 0
    ) -> CapturePolicy:
        request = source.request
        return cls(
            newest_wins=request.is_live,
            realtime=request.realtime,
            reconnect=request.can_reconnect,
            reconnect_timeout_s=reconnect_timeout_s,
            keep_skipped=keep_skipped if request.is_live else 0,
        )


class CaptureStats:
    """Counters the capture thread updates and the HUD reads."""

    def __init__(self) -> None:
        self.captured = 0
        self.dropped = 0
        # Frames the newest replaced but kept for carried results (``keep_skipped``).
        self.skipped = 0
        self.reconnect_attempts = 0
        self.fps = FpsMeter()


@dataclass(frozen=True, slots=True)
class _EndOfStream:
    error: BaseException | None


class CaptureThread:
    """Reads ``source`` on a thread named ``livesegment-capture``.

    Use as a context manager; iterate ``frames()`` on the consumer side.
    """

    def __init__(
        self,
        source: VideoSource,
        long_side: int,
        policy: CapturePolicy | None = None,
        queue_size: int = 4,
    ):
        self.source = source
        self.long_side = long_side
        self.policy = policy or CapturePolicy()
        self.stats = CaptureStats()
        size = 1 if self.policy.newest_wins else queue_size
        self._queue: queue.Queue[Frame | _EndOfStream] = queue.Queue(maxsize=size)
        self._lock = threading.Lock()
        # Frames replaced by a newer one and kept (``policy.keep_skipped``), oldest first.
        self._skipped: deque[Frame] = deque()
        self._handed: list[Frame] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="livesegment-capture", daemon=True)

    def __enter__(self) -> CaptureThread:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def name(self) -> str:
        return self.source.info.name

    def _put_blocking(self, item: Frame | _EndOfStream) -> bool:
        # Block while the consumer is busy, but wake up regularly to notice a stop request.
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _put_newest(self, frame: Frame) -> None:
        with self._lock:
            try:
                replaced = self._queue.get_nowait()
            except queue.Empty:
                pass
            else:
                if self.policy.keep_skipped > 0 and isinstance(replaced, Frame):
                    self._skipped.append(replaced)
                    self.stats.skipped += 1
                    if len(self._skipped) > self.policy.keep_skipped:
                        self._skipped.popleft()
                        self.stats.skipped -= 1
                        self.stats.dropped += 1
                else:
                    self.stats.dropped += 1
            self._queue.put_nowait(frame)

    def _reconnect(self, why: str) -> None:
        """Reopen with backoff until it works or ``reconnect_timeout_s`` passes.

        Raises:
            SourceError: the source did not come back in time.
        """
        timeout_s = self.policy.reconnect_timeout_s
        log.warning("%s %s; reconnecting (giving up after %.0f s)", self.name, why, timeout_s)
        deadline = time.monotonic() + timeout_s
        delay_s = 0.25
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.stats.reconnect_attempts += 1
            if self.source.reopen():
                log.warning("%s is back", self.name)
                return
            self._stop.wait(min(delay_s, max(0.0, deadline - time.monotonic())))
            delay_s = min(delay_s * 2, 2.0)
        if not self._stop.is_set():
            raise SourceError(
                f"{self.name} {why} and did not come back within "
                f"{timeout_s:.0f} s; check the camera or server and run again"
            )

    def _run(self) -> None:
        error: BaseException | None = None
        policy = self.policy
        started = time.monotonic()
        previous: np.ndarray | None = None
        last_new_at = started
        try:
            while not self._stop.is_set():
                item = self.source.read()
                now = time.monotonic()
                if item is None:
                    if not policy.reconnect:
                        break
                    self._reconnect("stopped delivering frames")
                    previous, last_new_at = None, time.monotonic()
                    continue
                index, time_s, bgr = item
                if policy.reconnect:
                    # Some drivers keep returning the last buffer when the camera is gone.
                    if previous is not None and np.array_equal(previous, bgr):
                        if now - last_new_at > policy.watchdog_s:
                            self._reconnect(f"repeated one frame for {policy.watchdog_s:.0f} s")
                            previous, last_new_at = None, time.monotonic()
                        continue
                    previous, last_new_at = bgr, now
                if policy.realtime:
                    # Replay at the file's own pace; the wait is interruptible by stop().
                    self._stop.wait(max(0.0, started + time_s - time.monotonic()))
                frame = Frame(
                    index=index,
                    time_s=time_s,
                    bgr=bgr,
                    rgb=to_model_rgb(bgr, self.long_side),
                    captured_at=time.monotonic(),
                )
                self.stats.captured += 1
                self.stats.fps.tick(frame.captured_at)
                if policy.newest_wins:
                    self._put_newest(frame)
                elif not self._put_blocking(frame):
                    break
        except BaseException as caught:  # handed to the consumer, never swallowed
            error = caught
        finally:
            self._put_blocking(_EndOfStream(error))

    def frames(
        self, timeout_s: float | None = None, until: threading.Event | None = None
    ) -> Iterator[Frame]:
        """Yield frames until the end or until ``until`` is set; re-raise the capture
        thread's exception, if any. Frames still queued then count as dropped at ``stop()``.

        Raises:
            SourceError: no frame for ``timeout_s`` (a reader stuck inside the driver).
        """
        if timeout_s is None:
            timeout_s = self.policy.watchdog_s + self.policy.reconnect_timeout_s + 5.0
        waited_s = 0.0
        warned = False
        while until is None or not until.is_set():
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise RuntimeError(
                        "capture thread ended without an end-of-stream marker"
                    ) from None
                waited_s += 0.1
                if self.policy.reconnect and not warned and waited_s >= self.policy.watchdog_s:
                    warned = True
                    log.warning("%s: no new frame for %.0f s", self.name, waited_s)
                if waited_s >= timeout_s:
                    raise SourceError(
                        f"{self.name} delivered no frame for {timeout_s:.0f} s; "
                        "check the camera or stream"
                    ) from None
                continue
            waited_s, warned = 0.0, False
            if isinstance(item, Frame) and self.policy.keep_skipped > 0:
                self._hand_skipped(item)
            if isinstance(item, _EndOfStream):
                if item.error is not None:
                    raise item.error
                return
            yield item

    def _hand_skipped(self, frame: Frame) -> None:
        # Under the lock: the frames ``frame`` replaced are all kept by now, and none newer.
        with self._lock:
            # Frames handed with the previous frame and never taken are dropped after all.
            self.stats.dropped += len(self._handed)
            self.stats.skipped -= len(self._handed)
            handed = []
            while self._skipped and self._skipped[0].captured_at <= frame.captured_at:
                handed.append(self._skipped.popleft())
            self._handed = handed

    def take_skipped(self) -> list[Frame]:
        """The frames (oldest first) the frame just yielded by ``frames()`` replaced while the
        consumer was busy, when ``policy.keep_skipped``; each is handed over once. Frames not
        taken before the next one is yielded count as dropped."""
        handed, self._handed = self._handed, []
        return handed

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop reading, count unprocessed frames as dropped, join the thread, release."""
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        while self._thread.is_alive() and time.monotonic() < deadline:
            self._drain()
            self._thread.join(0.05)
        self._drain()
        if self._thread.is_alive():
            log.warning("capture thread did not stop within %.0f s", timeout_s)
        else:
            self.source.release()

    def _drain(self) -> None:
        with self._lock:
            self.stats.dropped += len(self._skipped) + len(self._handed)
            self.stats.skipped -= len(self._skipped) + len(self._handed)
            self._skipped.clear()
            self._handed = []
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    return
                if isinstance(item, Frame):
                    self.stats.dropped += 1
