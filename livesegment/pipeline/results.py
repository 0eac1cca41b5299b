"""``stream()``: the product's spine. A source in, one ``FrameResult`` per processed frame out.

The CLI's ``run``, ``doctor``, the quality checks and the Python API all iterate it::

    with livesegment.stream("clip.mp4", model="shapes", threshold=0.6) as results:
        for result in results:
            print(result.frame.index, result.detections.class_names)

A capture thread reads, resizes and converts the next frame while the model works on this one;
files give every frame in order, live sources the newest (see ``capture``). With ``carry``,
a live source's frames captured while the model was busy come out too, after the inferred frame
before them, with its detections moved onto them by optical flow (``carry.py``; their
``FrameResult.carried_from`` says so): every captured frame is shown, none dropped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from livesegment.model.cards import ModelSpec
from livesegment.model.detector import Detector
from livesegment.pipeline.carry import Carrier
from livesegment.pipeline.tracking import Tracker
from livesegment.structures import FrameResult, VideoInfo
from livesegment.video.capture import CapturePolicy, CaptureStats, CaptureThread
from livesegment.video.sources import SourceRequest, VideoSource, open_source, parse_source


def tracks(track: bool | None, request: SourceRequest) -> bool:
    """Whether a run tracks: as asked, else every source but still images."""
    return track if track is not None else not request.is_still


class ResultStream:
    """An iterator of ``FrameResult`` that owns its source and capture thread.

    Use it in a ``with`` block or just loop: the capture thread stops and the source is
    released when the loop ends, breaks, raises, or ``close()`` is called.

    Args:
        source: an opened source (see ``sources.open_source``).
        detector: the loaded model; its ``threshold`` and ``classes`` may change between
            frames (window keys, the web view) and apply from the next frame.
        reconnect_timeout_s: how long a lost camera or stream is retried.
        until: an event that ends the stream between frames (Ctrl-C, a quit key).
        track: give detections persistent ``track_ids``; None tracks videos, cameras and
            streams, not still images (which are unrelated pictures).
        carry: live sources only: yield the frames captured while the model was busy too,
            with the latest detections moved onto them (``FrameResult.carried_from``) instead
            of dropping them. Only inferred frames feed the tracker.
    """

    # Frames kept for carrying: three seconds of the source, within a memory budget.
    CARRY_SECONDS = 3.0
    CARRY_BUDGET_BYTES = 256 * 1024 * 1024

    def __init__(
        self,
        source: VideoSource,
        detector: Detector,
        *,
        reconnect_timeout_s: float = 10.0,
        until: threading.Event | None = None,
        track: bool | None = None,
        carry: bool = False,
    ):
        self._results: Iterator[FrameResult] | None = None
        self._closed = False
        self.source = source
        self.detector = detector
        self.carry = carry and source.info.is_live
        policy = CapturePolicy.for_source(
            source, reconnect_timeout_s, self._frames_kept(source) if self.carry else 0
        )
        self._capture = CaptureThread(source, detector.max_size, policy)
        self._until = until
        self.tracker = Tracker(fps=source.info.fps) if tracks(track, source.request) else None
        if self.tracker is not None:
            # Before the first frame is captured, so the import never shows as a frame's latency.
            self.tracker.wait_until_ready()

    @classmethod
    def _frames_kept(cls, source: VideoSource) -> int:
        width, height = source.info.size_wh
        # A frame holds its BGR picture and the model's smaller RGB input.
        frame_bytes = max(1, width * height * 3 * 2)
        wanted = round(cls.CARRY_SECONDS * (source.info.fps or 30.0))
        return max(1, min(wanted, cls.CARRY_BUDGET_BYTES // frame_bytes))

    @property
    def info(self) -> VideoInfo:
        return self.source.info

    @property
    def stats(self) -> CaptureStats:
        """Frames captured and dropped, capture FPS, reconnect attempts (updated live)."""
        return self._capture.stats

    def __iter__(self) -> ResultStream:
        return self

    def __next__(self) -> FrameResult:
        if self._closed:
            raise StopIteration
        if self._results is None:
            self._results = _results(
                self._capture,
                self.detector,
                self._until,
                getattr(self.source, "name_of", None),
                self.tracker,
                Carrier() if self.carry else None,
            )
        try:
            return next(self._results)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop the capture thread and release the source; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._results is not None:
            self._results.close()  # runs the capture thread's exit: stop, join, release
        self.source.release()

    def __enter__(self) -> ResultStream:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self) -> None:
        # A loop that breaks without ``with`` drops its last reference here.
        self.close()


def _results(
    capture: CaptureThread,
    detector: Detector,
    until: threading.Event | None,
    name_of: Callable[[int], str] | None,
    tracker: Tracker | None,
    carrier: Carrier | None = None,
) -> Iterator[FrameResult]:
    # A function, not a method: a generator holding its ResultStream would keep it alive past
    # a ``break``, and its capture thread with it.
    inferred: int | None = None
    inferred_threshold: float | None = None
    with capture:
        for frame in capture.frames(until=until):
            if carrier is not None and inferred is not None:
                # Before the first inference there is nothing to carry: those count as dropped.
                for age, older in enumerate(capture.take_skipped(), start=1):
                    started = time.perf_counter()
                    moved = carrier.carry(older)
                    yield FrameResult(
                        older,
                        moved,
                        source_name=name_of(older.index) if name_of else None,
                        carried_from=inferred,
                        carried_age=age,
                        carry_ms=(time.perf_counter() - started) * 1000,
                        threshold=inferred_threshold,
                    )
            # Read before the call: the viewer may change it between frames, never during one.
            threshold = detector.threshold
            detections = detector.detect_resized(frame.rgb, frame.shape_hw)
            timings = detector.timings
            track_ms = 0.0
            if tracker is not None:
                started = time.perf_counter()
                # The frame's time, not its count: dropped frames are time the objects moved.
                detections = tracker.update(detections, frame.time_s)
                track_ms = (time.perf_counter() - started) * 1000
            if carrier is not None:
                carrier.start(frame, detections)
                inferred, inferred_threshold = frame.index, threshold
            yield FrameResult(
                frame,
                detections,
                timings.network_ms,
                timings.select_ms,
                name_of(frame.index) if name_of else None,
                track_ms,
                threshold=threshold,
            )


def stream(
    source: str | Path | SourceRequest | VideoSource,
    *,
    model: str | ModelSpec | Detector | None = None,
    threshold: float | None = None,
    classes: Iterable[str] | None = None,
    max_size: int | None = None,
    realtime: bool = False,
    reconnect_timeout_s: float = 10.0,
    until: threading.Event | None = None,
    track: bool | None = None,
    carry: bool = False,
) -> ResultStream:
    """Segment ``source`` frame by frame.

    Args:
        source: a video or image file, a camera index (``0`` or ``"0"``), a device
            (``/dev/video0``), a stream URL, a parsed request, or an opened source.
        model: a bundled or downloaded model name, an ``.h5`` path, a spec, or a loaded
            ``Detector`` (reused as it is; ``threshold``/``classes``/``max_size`` then change it).
        threshold: minimum score; None uses the model card's.
        classes: class names to keep; None keeps all.
        max_size: long side the network sees; None uses the model's input size.
        realtime: replay a file at its own frame rate, dropping frames like a camera.
        track: give each detection a persistent ``track_id`` across frames
            (``result.detections.track_ids``); None: on for videos, cameras and streams, off
            for still images.
        carry: live sources and ``realtime`` replays: also yield the frames captured while
            the model was busy, with the latest detections moved onto them by optical flow
            (``result.carried``, ``result.carried_age``), so no frame is dropped.

    Raises:
        SourceError: the source cannot be opened or read (checked before the model loads).
        ModelError: the model cannot be loaded.
    """
    if not isinstance(source, VideoSource):
        if not isinstance(source, SourceRequest):
            source = parse_source(str(source), realtime=realtime)
        source = open_source(source)
    try:
        if isinstance(model, Detector):
            detector = model
            if threshold is not None:
                detector.threshold = threshold
            if classes is not None:
                detector.classes = classes
            if max_size is not None:
                detector.max_size = max_size
        else:
            detector = Detector.load(model, threshold=threshold, classes=classes, max_size=max_size)
    except BaseException:
        source.release()
        raise
    return ResultStream(
        source,
        detector,
        reconnect_timeout_s=reconnect_timeout_s,
        until=until,
        track=track,
        carry=carry,
    )
