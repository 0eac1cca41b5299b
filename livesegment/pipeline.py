"""Wires source -> capture thread -> segmenter -> filters -> overlay -> sinks."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from livesegment import footage, tfenv
from livesegment.capture import CapturePolicy, CaptureThread
from livesegment.controls import ViewState
from livesegment.errors import LivesegmentError, OutputError, UsageError
from livesegment.filters import select
from livesegment.images import (
    IMAGE_SUFFIXES,
    ImageOutputs,
    ImageWriter,
    check_image_outputs,
    plan_image_outputs,
)
from livesegment.interrupts import StopRequest
from livesegment.media import CONTAINER_SUFFIXES, MediaWriter
from livesegment.models import ModelSpec
from livesegment.overlay import OverlayStyle, annotate
from livesegment.paths import Named, check_no_overwrite, clash
from livesegment.sinks import (
    JsonlSink,
    PacedRecorder,
    WindowSink,
    check_output_path,
    display_available,
)
from livesegment.sources import (
    ImageSource,
    SourceRequest,
    VideoSource,
    open_source,
    parse_source,
)
from livesegment.structures import Candidates, Detections, Frame, FrameResult, RunSummary
from livesegment.timing import FpsMeter, Stopwatch

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What ``livesegment run`` was asked to do.

    Attributes:
        source: what to read (see ``sources.parse_source``), or an already parsed request.
        display: True/False as asked; None shows a window only where a display exists.
        threshold: None uses the model card's default.
        classes: class names to keep; None keeps all.
        max_size: long side in pixels used for inference; None uses the model's input size.
        output_fps: frame rate of recordings from live sources; None measures the real rate.
        snapshot_dir: where ``s`` snapshots and ``r`` recordings without ``--output`` go.
        default_model: the model is the bundled demo because none was asked for; the run says
            so (one warning) when the source does not look like the demo's synthetic shapes.
    """

    source: str | SourceRequest
    output: Path | None = None
    json_path: Path | None = None
    display: bool | None = None
    threshold: float | None = None
    classes: frozenset[str] | None = None
    max_size: int | None = None
    style: OverlayStyle = field(default_factory=OverlayStyle)
    verbose: bool = False
    progress: bool = True
    output_fps: float | None = None
    reconnect_timeout_s: float = 10.0
    snapshot_dir: Path = Path(".")
    codec: str = "h264"
    audio: bool = True
    default_model: bool = False


Segment = Callable[[np.ndarray, tuple[int, int]], Candidates]
Unmold = Callable[[Candidates, np.ndarray], Detections]
Loader = Callable[[ModelSpec, bool], tuple[Segment, Unmold]]


def load_segmenter(spec: ModelSpec, verbose: bool = False) -> tuple[Segment, Unmold]:
    """Import TensorFlow, build the network and load verified weights, quietly."""
    with tfenv.silenced_stderr(not verbose):
        from livesegment import segmenter

        model = segmenter.Segmenter(spec)
    return model, segmenter.unmold


def _stamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]


def _inputs(request: SourceRequest, spec: ModelSpec) -> list[Named]:
    """Every file the run reads, none of which it may write."""
    named: list[Named] = []
    if request.kind in ("file", "image"):
        named.append(("SOURCE", Path(str(request.target))))
    named.append(("the model weights", spec.weights))
    if spec.card is not None:
        named.append(("the model card", spec.card))
    return named


def check_outputs(options: RunOptions, spec: ModelSpec, request: SourceRequest) -> list[Named]:
    """Refuse an ``--output`` or ``--json`` that is an input or the other output (any spelling,
    symlink or hard link), before anything is opened; returns the files no recording may
    overwrite.

    Raises:
        UsageError: naming both.
    """
    inputs = _inputs(request, spec)
    outputs = [("--output", options.output), ("--json", options.json_path)]
    check_no_overwrite(inputs, outputs)
    return inputs + [(label, Path(path)) for label, path in outputs if path is not None]


def free_path(candidates: Iterable[Path], protected: list[Named]) -> Path:
    """The first of ``candidates`` that is none of the ``protected`` files."""
    for path in candidates:
        label = clash(path, protected)
        if label is None:
            return path
        log.warning("%s is %s; not writing over it", path, label)
    raise AssertionError("candidates ran out")  # they are endless


def _numbered(path: Path, first: int = 1) -> Iterator[Path]:
    """``path``, then ``stem-1``, ``stem-2``… beside it."""
    yield path
    for number in itertools.count(first):
        yield path.with_name(f"{path.stem}-{number}{path.suffix}")


class _DemoModelCheck:
    """Says once, on stderr, when the bundled demo model (used because no ``--model`` was
    given) is pointed at something that does not look like its synthetic shapes."""

    def __init__(self, spec: ModelSpec, frames: int):
        self.scene = footage.SceneCheck(frames)
        self.message = (
            f"the default model '{spec.name}' is a demo that knows only "
            f"{', '.join(spec.object_classes)} in synthetic flat-colour scenes, and this "
            "source does not look like one, so its detections mean nothing here; for real "
            "footage run `livesegment models download coco` once, then add `--model coco`")

    def add(self, bgr: np.ndarray) -> None:
        if self.scene.add(bgr):
            log.warning(self.message)

    def finish(self) -> None:
        if self.scene.finish():
            log.warning(self.message)


class _Recorder:
    """The annotated output: every frame at its source time for files (with the source's
    audio), wall-clock paced for live sources, one image per input for still images."""

    def __init__(self, options: RunOptions, source: VideoSource,
                 images: ImageOutputs | None = None, protected: list[Named] | None = None):
        self.options, self.source = options, source
        # Inputs and outputs a later take or timestamped recording must never land on.
        self.protected = protected or []
        self.live = source.info.is_live
        self.images = images
        self.sink: MediaWriter | PacedRecorder | ImageWriter | None = None
        self.closed: list[Path] = []
        self.images_folder: Path | None = None
        self.images_written = 0
        self._takes = 0
        if options.output is not None:
            self.start()

    def start(self) -> None:
        if self.images is not None:
            self.sink = ImageWriter(self.images)
            return
        self._takes += 1
        output = self.options.output
        if output is None:
            path = free_path(_numbered(self.options.snapshot_dir
                                       / f"livesegment-{_stamp()}.mp4"), self.protected)
        elif self._takes > 1:
            # out-2.mp4 may be the very file being read: then the next free number.
            takes = _numbered(Path(output), first=self._takes)
            next(takes)
            path = free_path(takes, self.protected)
        else:
            path = Path(output)
        info, request = self.source.info, self.source.request
        if self.live:
            self.sink = PacedRecorder(path, info.size_wh, self.options.output_fps,
                                      self.options.codec)
        else:
            check_output_path(path, "--output", CONTAINER_SUFFIXES)
            audio = info.has_audio and self.options.audio and request.kind == "file"
            self.sink = MediaWriter(path, info.size_wh, info.rate or Fraction(30),
                                    self.options.codec,
                                    audio_from=Path(str(request.target)) if audio else None,
                                    audio_start_s=request.start_s, audio_end_s=request.end_s)
        log.info("recording to %s", path)

    def toggle(self) -> None:
        if isinstance(self.source, ImageSource):
            log.info("r records videos; for a still image use s (snapshot) or --output")
            return
        if self.sink is None:
            self.start()
        else:
            self.stop()

    def write(self, picture: np.ndarray, frame: Frame) -> None:
        if isinstance(self.sink, ImageWriter):
            self.sink.write(picture, frame.index)
        elif isinstance(self.sink, PacedRecorder):
            self.sink.write(picture, time.monotonic())
        elif self.sink is not None:
            self.sink.write(picture, frame.time_s - self.source.request.start_s)

    def frames_durable(self) -> int | None:
        """Frames certainly in the file, when that differs from frames written."""
        return self.sink.frames_durable if isinstance(self.sink, MediaWriter) else None

    def stop(self) -> None:
        if self.sink is None:
            return
        sink, self.sink = self.sink, None
        if isinstance(sink, ImageWriter):
            if sink.folder is not None and len(sink.written) != 1:
                self.images_folder, self.images_written = sink.folder, len(sink.written)
            else:
                self.closed.extend(sink.written)
            return
        if isinstance(sink, PacedRecorder):
            sink.close(time.monotonic())
        else:
            sink.close()
        self.closed.append(sink.path)


def _hud_lines(state: ViewState, capture: CaptureThread, inference: FpsMeter,
               stopwatch: Stopwatch, latency_ms: float, recording: bool) -> list[str]:
    classes = ",".join(sorted(state.classes)) if state.classes else "all"
    flags = ("  REC" if recording else "") + ("  PAUSED" if state.paused else "")
    return [
        f"inference {inference.fps:4.1f} FPS ({stopwatch.last_ms:.0f} ms)  "
        f"capture {capture.stats.fps.fps:4.1f} FPS",
        f"latency {latency_ms:.0f} ms  dropped {capture.stats.dropped}{flags}",
        f"threshold {state.threshold:.2f}  classes: {classes}",
    ]


def run(options: RunOptions, spec: ModelSpec, load: Loader = load_segmenter) -> RunSummary:
    """Segment ``options.source`` until it ends, the user quits or the source fails.

    Cheap checks (outputs, source, display) come first, the model after; output files are
    created only once the model is ready, and closed (playable) whatever happens. A source
    that fails mid-run ends the run with ``summary.failure`` set rather than an exception, so
    the caller can still print what was done.

    Raises:
        LivesegmentError: a source, model, output or display problem found before the run.
    """
    request = options.source if isinstance(options.source, SourceRequest) \
        else parse_source(options.source)
    protected = check_outputs(options, spec, request)
    output = Path(options.output) if options.output is not None else None
    if output is not None and not request.is_still:
        if output.suffix.lower() in IMAGE_SUFFIXES:
            raise UsageError(f"--output {output}: SOURCE {request.target} is a video, so "
                             f"--output is a video; use {', '.join(CONTAINER_SUFFIXES)} "
                             "(an image output needs an image, folder or glob SOURCE)")
        check_output_path(output, "--output")
    if options.json_path is not None:
        check_output_path(options.json_path, "--json")
    source = open_source(request)
    images: ImageOutputs | None = None
    if isinstance(source, ImageSource):
        try:
            if output is not None:
                images = plan_image_outputs(source.entries, output, str(request.target),
                                            single=request.kind == "image")
                check_image_outputs(source.entries, images, options.json_path)
            elif options.json_path is not None:
                check_image_outputs(source.entries, ImageOutputs((), None), options.json_path)
        except LivesegmentError:
            source.release()
            raise
    window: WindowSink | None = None
    jsonl: JsonlSink | None = None
    recorder: _Recorder | None = None
    summary = RunSummary(is_live=source.info.is_live)
    # From here on Ctrl-C/SIGTERM ask the loop to stop, so outputs close in order.
    with StopRequest().installed() as stop:
        try:
            show = display_available() if options.display is None else options.display
            window = WindowSink() if show else None
            segment, unmold = load(spec, options.verbose)
            if stop.is_set():
                # Interrupted while the model loaded: stop before creating any output.
                summary.stopped_early = "interrupted"
                return summary
            state = ViewState(
                threshold=spec.default_threshold if options.threshold is None
                else options.threshold,
                classes=options.classes, style=options.style)
            info = source.info
            recorder = _Recorder(options, source, images, protected)
            if options.json_path is not None:
                jsonl = JsonlSink(options.json_path)
            policy = CapturePolicy.for_source(source, options.reconnect_timeout_s)
            capture = CaptureThread(source, options.max_size or spec.input_size, policy)
            demo = _DemoModelCheck(spec, frames=1 if request.kind == "image" else 10) \
                if options.default_model else None
            _loop(capture, segment, unmold, state, window, jsonl, recorder, summary, options,
                  info.frame_count, stop, demo)
            summary.frames_captured = capture.stats.captured
            summary.frames_dropped = capture.stats.dropped
            summary.reconnect_attempts = capture.stats.reconnect_attempts
            summary.final_threshold = state.threshold
        finally:
            summary.frames_undecodable = source.undecodable
            summary.frames_decoded = source.decoded
            if isinstance(source, ImageSource) and not summary.failure \
                    and not summary.stopped_early:
                summary.failure = source.unreadable_report()
            if request.kind == "file" and request.start_s == 0 and request.end_s is None:
                summary.frames_claimed = source.info.frame_count
            try:
                if recorder is not None:
                    recorder.stop()
                    summary.files_written.extend(recorder.closed)
                    summary.images_folder = recorder.images_folder
                    summary.images_written = recorder.images_written
            finally:
                if jsonl is not None:
                    jsonl.flush_pending()
                    jsonl.write_summary(summary.to_json())
                    jsonl.close()
                    summary.files_written.append(jsonl.path)
            if window is not None:
                window.close()
            source.release()
    return summary


def _loop(capture: CaptureThread, segment: Segment, unmold: Unmold, state: ViewState,
          window: WindowSink | None, jsonl: JsonlSink | None, recorder: _Recorder,
          summary: RunSummary, options: RunOptions, frame_count: int | None,
          stop: StopRequest, demo: _DemoModelCheck | None = None) -> None:
    stills = recorder.source if isinstance(recorder.source, ImageSource) else None
    inference_fps = FpsMeter()
    stopwatch = Stopwatch()
    started = time.monotonic()
    first_call = True
    progress = tqdm(total=frame_count, unit="frame", disable=not options.progress or None,
                    leave=False, dynamic_ncols=True)
    try:
        with capture, progress:
            for frame in capture.frames(until=stop.event):
                if demo is not None:
                    demo.add(frame.bgr)
                with stopwatch:
                    # TensorFlow logs while it finishes building the graph on the first call.
                    with tfenv.silenced_stderr(first_call and not options.verbose):
                        candidates = segment(frame.rgb, frame.shape_hw)
                    first_call = False
                    selection = select(candidates, state.threshold, state.classes)
                    detections = unmold(candidates, selection.keep)
                inference_fps.tick()
                result = FrameResult(frame, detections, selection.empty_reason,
                                     len(candidates), stopwatch.last_ms,
                                     stills.name_of(frame.index) if stills else None)
                summary.add(result)
                latency_ms = (time.monotonic() - frame.captured_at) * 1000
                # A segmented photo shows what was found, not the live HUD's rates.
                hud = [] if stills else _hud_lines(state, capture, inference_fps, stopwatch,
                                                   latency_ms, recorder.sink is not None)
                picture = annotate(frame.bgr, detections, selection.empty_reason, hud,
                                   state.style)
                recorder.write(picture, frame)
                if jsonl is not None:
                    # A line appears once its frame is in the video, so a killed run's JSONL
                    # never lists a frame its video lacks.
                    jsonl.write(result, durable=recorder.frames_durable())
                summary.latencies_ms.append((time.monotonic() - frame.captured_at) * 1000)
                progress.update()
                if window is not None:
                    _interact(window, picture, state, recorder, summary, options, stop)
                    if state.quit:
                        summary.stopped_early = "quit from the window"
                        break
                if stop.is_set():
                    break
        if demo is not None:
            demo.finish()
        summary.elapsed_s = time.monotonic() - started
        if stop.is_set():
            summary.stopped_early = "interrupted"
            log.info("%s received: stopped between frames, outputs closed", stop.signal_name)
    except KeyboardInterrupt:
        # A second signal: the run was stuck somewhere it could not check ``stop``.
        summary.elapsed_s = time.monotonic() - started
        summary.stopped_early = "interrupted"
    except LivesegmentError as error:
        if isinstance(error, OutputError):
            raise
        summary.elapsed_s = time.monotonic() - started
        summary.failure = str(error)


def _interact(window: WindowSink, picture: np.ndarray, state: ViewState, recorder: _Recorder,
              summary: RunSummary, options: RunOptions, stop: StopRequest) -> None:
    """Show the picture and apply keys; while paused, keep polling without new frames."""
    key = window.show(picture)
    while True:
        note = state.handle_key(key)
        if note:
            log.info("key: %s", note)
        if state.snapshot_requested:
            state.snapshot_requested = False
            path = free_path(_numbered(options.snapshot_dir / f"livesegment-{_stamp()}.png"),
                             recorder.protected)
            if not cv2.imwrite(str(path), picture):
                raise OutputError(f"snapshot {path}: could not be written")
            summary.files_written.append(path)
        if state.record_toggle_requested:
            state.record_toggle_requested = False
            recorder.toggle()
        if not state.paused or state.quit or stop.is_set():
            return
        key = window.show(picture, wait_ms=30)
