"""The writer thread: drawing, encoding and writing files overlap the next inference.

The main thread owns the model and the window (Keras graph models want the thread that built
them; HighGUI wants the main thread). It hands each processed frame to ``FrameWriter.submit``
and goes on with the next one, while a thread named ``livesegment-writer`` draws the frame
(unless the main thread already did, for the window) and writes it to every file sink.

- Bounded: at most ``queue_size`` frames wait. ``submit`` blocks while the files are slower
  than the model; a live source then drops frames at capture, as it does for a slow model.
- Ordered: frames, and actions such as starting a recording, are done in the order they were
  submitted, on one thread, so a JSONL still waits for its video's durable frames.
- Failures come back: an exception in a sink stops all writing, and the next ``submit``,
  ``check`` or ``close`` raises it on the main thread, which ends the run.
- Complete: ``close`` ends the queue with a sentinel and waits until every frame submitted
  before it is written; ``close(abandon=True)`` (a second Ctrl-C) drops what still waits.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from livesegment.errors import OutputError
from livesegment.output.overlay import OverlayStyle, annotate
from livesegment.output.sinks import Sink
from livesegment.structures import FrameResult

log = logging.getLogger(__name__)

QUEUE_SIZE = 3


@dataclass(frozen=True, slots=True)
class Job:
    """One processed frame for the file sinks.

    Attributes:
        result: the frame and its detections.
        hud: the live HUD's lines as they were when the frame was processed (empty: no HUD).
        style: the overlay style in force for this frame.
        picture: the annotated (H, W, 3) uint8 BGR picture if the main thread drew it (for
            the window); None: drawn on the writer thread, if a sink wants it.
    """

    result: FrameResult
    hud: tuple[str, ...] = ()
    style: OverlayStyle = field(default_factory=OverlayStyle)
    picture: np.ndarray | None = None

    def draw(self) -> np.ndarray:
        """The annotated picture: (H, W, 3) uint8 BGR, the frame itself left untouched."""
        result = self.result
        return annotate(
            result.frame.bgr, result.detections, result.empty_reason, list(self.hud), self.style
        )


@dataclass(frozen=True, slots=True)
class _Call:
    action: Callable[[], None]


_END = object()  # the sentinel: everything before it is written, then the thread ends


def wants_picture(sink: Sink) -> bool:
    """Whether ``sink`` needs the annotated picture now (a JSONL does not; a recording that
    is not running does not); sinks that do not say always do."""
    return bool(getattr(sink, "wants_picture", True))


class FrameWriter:
    """Writes processed frames to ``sinks`` on a thread named ``livesegment-writer``.

    Use as a context manager around the loop that submits frames: leaving it waits until
    every submitted frame is written (or drops them when leaving with ``KeyboardInterrupt``)
    and raises the writer's exception, if any. Sinks are closed by their owner, after this.

    Args:
        sinks: where each frame goes, in this order, as ``sink.write(result, picture)``.
        on_written: called on the writer thread with each result once every sink has it.
        queue_size: frames that may wait for the writer before ``submit`` blocks.
    """

    CLOSE_TIMEOUT_S = 60.0
    ABANDON_TIMEOUT_S = 5.0

    def __init__(
        self,
        sinks: Sequence[Sink],
        *,
        on_written: Callable[[FrameResult], None] | None = None,
        queue_size: int = QUEUE_SIZE,
    ):
        self.sinks = list(sinks)
        self._on_written = on_written
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._error_raised = False
        self._last: Job | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="livesegment-writer", daemon=True)

    def __enter__(self) -> FrameWriter:
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        self.close(
            abandon=exc_type is not None and issubclass(exc_type, KeyboardInterrupt),
            raise_error=exc_type is None,
        )

    # The main thread's side.

    def submit(self, job: Job) -> None:
        """Queue one frame, blocking while the queue is full.

        Raises:
            BaseException: what a sink raised on the writer thread (an ``OutputError``...).
        """
        self._put(job)

    def call(self, action: Callable[[], None]) -> None:
        """Run ``action`` on the writer thread once the frames submitted so far are written
        (starting or stopping a recording must fall between the same frames as the key)."""
        self._put(_Call(action))

    def check(self) -> None:
        """Raise the writer's exception, once, if it has one."""
        if self._error is not None and not self._error_raised:
            self._error_raised = True
            raise self._error

    def _put(self, item: Job | _Call) -> None:
        if self._closed:
            raise RuntimeError("the writer is closed")
        while True:
            self.check()
            if not self._thread.is_alive():
                raise RuntimeError("the writer thread is not running")
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def close(self, *, abandon: bool = False, raise_error: bool = True) -> None:
        """Write what is queued (or drop it, ``abandon``), end the thread and wait for it.

        Safe to call twice. A second Ctrl-C while waiting drops what is still queued.

        Raises:
            BaseException: the writer's exception not raised yet, if ``raise_error``.
            OutputError: the writer did not finish within ``CLOSE_TIMEOUT_S``.
        """
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            try:
                self._finish(abandon)
            except KeyboardInterrupt:
                self._stop.set()
                self._thread.join(self.ABANDON_TIMEOUT_S)
                raise
        if raise_error:
            self.check()

    def _finish(self, abandon: bool) -> None:
        if abandon:
            self._stop.set()
        timeout_s = self.ABANDON_TIMEOUT_S if abandon else self.CLOSE_TIMEOUT_S
        deadline = time.monotonic() + timeout_s
        sent = False
        while self._thread.is_alive() and time.monotonic() < deadline:
            if not sent:
                try:
                    self._queue.put(_END, timeout=0.1)
                    sent = True
                except queue.Full:
                    continue
            self._thread.join(0.1)
        if self._thread.is_alive():
            self._stop.set()
            raise OutputError(
                f"the outputs were still being written after {timeout_s:.0f} s "
                "(a stuck disk or network share?)"
            )

    # The writer thread's side.

    def last_picture(self) -> np.ndarray | None:
        """The annotated picture of the latest written frame, drawn now if it was not yet;
        None before the first. For actions run by ``call`` (they run on the writer thread)."""
        job = self._last
        if job is None:
            return None
        if job.picture is None:
            job = self._last = Job(job.result, job.hud, job.style, job.draw())
        return job.picture

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _END:
                return
            try:
                if isinstance(item, _Call):
                    item.action()
                else:
                    self._write(item)
            except BaseException as error:  # handed to the main thread, never swallowed
                self._error = error
                # Nothing more is written, and the queue stays full, so the main thread's next
                # submit raises instead of computing more frames.
                return

    def _write(self, job: Job) -> None:
        if job.picture is None and any(wants_picture(sink) for sink in self.sinks):
            job = Job(job.result, job.hud, job.style, job.draw())
        for sink in self.sinks:
            sink.write(job.result, job.picture)
        self._last = job
        if self._on_written is not None:
            self._on_written(job.result)
