"""``run()``: the driver behind ``livesegment run``. stream -> annotate -> sinks.

Cheap checks (outputs, source, display) come first and the model after; output files are
created only once the model is ready; every sink is opened under one ``ExitStack`` and closed,
playable, whatever happens. The main thread runs the model and the window; drawing and the
files are done by the writer thread (``writer.py``) while the next frame is inferred.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
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

from livesegment.errors import LivesegmentError, OutputError, UsageError
from livesegment.model.cards import ModelSpec
from livesegment.model.detector import Detector
from livesegment.output.overlay import OverlayStyle
from livesegment.output.sinks import (
    JsonlSink,
    PacedRecorder,
    Sink,
    WindowSink,
    display_available,
)
from livesegment.paths import Named, check_no_overwrite, check_output_path, clash
from livesegment.pipeline import tracking
from livesegment.pipeline.controls import RemoteControls, ViewState
from livesegment.pipeline.interrupts import StopRequest
from livesegment.pipeline.results import ResultStream, tracks
from livesegment.pipeline.writer import FrameWriter, Job
from livesegment.serve.security import ServeAddress, serve_token
from livesegment.structures import FrameResult, RunSummary, StopReason, unique_objects
from livesegment.timing import FpsMeter
from livesegment.video import footage
from livesegment.video.images import (
    IMAGE_SUFFIXES,
    ImageOutputs,
    ImageWriter,
    check_image_outputs,
    plan_image_outputs,
)
from livesegment.video.media import CONTAINER_SUFFIXES, FALLBACK_FPS, MediaWriter
from livesegment.video.sources import (
    ImageSource,
    SourceRequest,
    VideoSource,
    open_source,
    parse_source,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What ``livesegment run`` was asked to do.

    Attributes:
        source: what to read (see ``sources.parse_source``), or an already parsed request.
        display: True/False as asked; None shows a window only where a display exists.
        threshold: None uses the model card's default.
        classes: class names to keep; None keeps all.
        speed: speed preset (accurate, balanced, fast); None uses the model's default.
        max_size: long side in pixels used for inference; None uses the preset's.
        rois, max_instances: ROIs scored and mask-head slots; None uses the preset's.
        output_fps: frame rate of recordings from live sources; None measures the real rate.
        snapshot_dir: where ``s`` snapshots and ``r`` recordings without ``--output`` go.
        default_model: the model is the bundled demo because none was asked for; the run says
            so (one warning) when the source does not look like the demo's synthetic shapes.
        track: give detections persistent track ids (labels ``#12 circle 0.93``, colours per
            track, unique objects per class); None tracks every source but still images.
        carry: live sources and realtime replays: frames captured while the model is busy are
            shown, recorded and written with the latest detections moved onto them by optical
            flow (HUD ``carried 2``, JSONL ``"carried": true``) instead of being dropped; None
            carries for live sources.
        serve: serve the browser view (live video, figures, detections, controls) there.
        serve_token: the token the view asks for; None: none on 127.0.0.1, else a random one.
        announce: called with the view's URL (token included) once it listens; None logs it.
    """

    source: str | SourceRequest
    output: Path | None = None
    json_path: Path | None = None
    display: bool | None = None
    threshold: float | None = None
    classes: frozenset[str] | None = None
    max_size: int | None = None
    speed: str | None = None
    rois: int | None = None
    max_instances: int | None = None
    style: OverlayStyle = field(default_factory=OverlayStyle)
    verbose: bool = False
    progress: bool = True
    output_fps: float | None = None
    reconnect_timeout_s: float = 10.0
    snapshot_dir: Path = Path(".")
    codec: str = "h264"
    audio: bool = True
    default_model: bool = False
    track: bool | None = None
    carry: bool | None = None
    serve: ServeAddress | None = None
    serve_token: str | None = None
    announce: Callable[[str], None] | None = None


# (spec, options) -> a loaded Detector; tests pass engines of their own here.
Loader = Callable[[ModelSpec, RunOptions], Detector]


def load_detector(spec: ModelSpec, options: RunOptions) -> Detector:
    """Build the network and load verified weights (TensorFlow is imported here)."""
    if options.track:
        # The tracker's library is imported while the network builds, TensorFlow first.
        from livesegment.model import segmenter  # noqa: F401

        tracking.preload()
    return Detector.load(
        spec,
        threshold=options.threshold,
        classes=options.classes,
        speed=options.speed,
        max_size=options.max_size,
        rois=options.rois,
        max_instances=options.max_instances,
    )


class _DemoModelCheck:
    """Says once, on stderr, when the bundled demo model (used because no model was asked for)
    is pointed at something that does not look like its synthetic shapes."""

    def __init__(self, spec: ModelSpec, frames: int):
        self.scene = footage.SceneCheck(frames)
        self.message = (
            f"the default model '{spec.name}' is a demo that knows only "
            f"{', '.join(spec.object_classes)} in synthetic flat-colour scenes, and this "
            "source does not look like one, so its detections mean nothing here; for real "
            "footage run `livesegment models download coco` once, then add `--model coco`"
        )

    def add(self, bgr: np.ndarray) -> None:
        if self.scene.add(bgr):
            log.warning(self.message)

    def finish(self) -> None:
        if self.scene.finish():
            log.warning(self.message)


def _stamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]


def _numbered(path: Path, first: int = 1) -> Iterator[Path]:
    """``path``, then ``stem-1``, ``stem-2``… beside it."""
    yield path
    for number in itertools.count(first):
        yield path.with_name(f"{path.stem}-{number}{path.suffix}")


def free_path(candidates: Iterable[Path], protected: list[Named]) -> Path:
    """The first of ``candidates`` that is none of the ``protected`` files."""
    for path in candidates:
        label = clash(path, protected)
        if label is None:
            return path
        log.warning("%s is %s; not writing over it", path, label)
    raise AssertionError("candidates ran out")  # they are endless


class RecordingSink:
    """The annotated video: ``--output`` from the start, or takes started and stopped with the
    ``r`` key. Files keep every frame at its source time (with the source's audio); live
    sources are paced by the wall clock so they play back at real speed."""

    def __init__(self, options: RunOptions, source: VideoSource, protected: list[Named]):
        self.options, self.source = options, source
        # Inputs and outputs a later take or a timestamped recording must never land on.
        self.protected = protected
        self.paths: list[Path] = []
        self.writer: MediaWriter | PacedRecorder | None = None
        self._takes = 0
        # The clock of the latest frame written; a carrying run's take ends there.
        self._last_at: float | None = None
        self._ends_at_last = source.info.is_live and carries(options, source)
        if self._ends_at_last:
            # Carried frames come in bursts after each inference: each is due when captured.
            self._clock = lambda result: result.frame.captured_at
        elif source.info.is_live:
            self._clock = lambda result: time.monotonic()
        else:
            self._clock = lambda result: result.frame.time_s - source.request.start_s
        if options.output is not None:
            self.start()

    def _next_path(self) -> Path:
        self._takes += 1
        output = self.options.output
        if output is None:
            return free_path(
                _numbered(self.options.snapshot_dir / f"livesegment-{_stamp()}.mp4"), self.protected
            )
        if self._takes > 1:
            # out-2.mp4 may be the very file being read: then the next free number.
            takes = _numbered(Path(output), first=self._takes)
            next(takes)
            return free_path(takes, self.protected)
        return Path(output)

    def _open_writer(self, path: Path) -> MediaWriter | PacedRecorder:
        info, request, options = self.source.info, self.source.request, self.options
        if info.is_live:
            return PacedRecorder(path, info.size_wh, options.output_fps, options.codec)
        check_output_path(path, "output", CONTAINER_SUFFIXES)
        audio = info.has_audio and options.audio and request.kind == "file"
        return MediaWriter(
            path,
            info.size_wh,
            info.rate or Fraction(FALLBACK_FPS),
            options.codec,
            audio_from=Path(str(request.target)) if audio else None,
            audio_start_s=request.start_s,
            audio_end_s=request.end_s,
        )

    @property
    def recording(self) -> bool:
        return self.writer is not None

    @property
    def wants_picture(self) -> bool:
        return self.recording

    @property
    def frames_durable(self) -> int | None:
        """Frames certainly in the file, when that differs from frames written."""
        return self.writer.frames_durable if self.writer is not None else None

    def start(self) -> None:
        path = self._next_path()
        self.writer = self._open_writer(path)
        log.info("recording to %s", path)

    def toggle(self) -> None:
        if self.writer is None:
            self.start()
        else:
            self.close()

    def write(self, result: FrameResult, picture: np.ndarray) -> None:
        if self.writer is not None:
            self._last_at = self._clock(result)
            self.writer.write(picture, self._last_at)

    def close(self) -> None:
        """Finish the current take, if any (the run may start another)."""
        if self.writer is None:
            return
        writer, self.writer = self.writer, None
        if isinstance(writer, PacedRecorder) and self._ends_at_last:
            # Every frame was written at its capture time; the last one ends the take.
            writer.close(self._last_at)
        else:
            writer.close()
        self.paths.append(writer.path)


class ImageSink:
    """Still images in, annotated copies out: one file per input image."""

    def __init__(self, outputs: ImageOutputs):
        self._writer = ImageWriter(outputs)
        self.folder = outputs.folder
        self.paths = self._writer.written

    def write(self, result: FrameResult, picture: np.ndarray) -> None:
        self._writer.write(picture, result.frame.index)

    def close(self) -> None:
        """Each image was complete once written."""


def _close_images(summary: RunSummary, sink: ImageSink) -> None:
    if sink.folder is not None and len(sink.paths) != 1:
        summary.images_folder, summary.images_written = sink.folder, len(sink.paths)
    else:
        summary.files_written.extend(sink.paths)


def _close_into(summary: RunSummary, sink: Sink) -> None:
    sink.close()
    summary.files_written.extend(path for path in sink.paths if path not in summary.files_written)


def _model_files(spec: ModelSpec) -> list[Named]:
    return [
        ("the model weights", spec.weights),
        *([("the model card", spec.card)] if spec.card is not None else []),
    ]


def _check_outputs(options: RunOptions, request: SourceRequest, spec: ModelSpec) -> list[Named]:
    """Refuse outputs that are inputs (the source, the model's files) or each other, and outputs
    that cannot be written, before anything is opened; returns the files no later recording
    or snapshot may land on."""
    source = Path(str(request.target)) if request.kind == "file" else None
    protected = [*_model_files(spec), *([("source", source)] if source else [])]
    outputs = [("output", options.output), ("json_path", options.json_path)]
    check_no_overwrite(protected, outputs)
    output = options.output
    if output is not None and not request.is_still:
        if Path(output).suffix.lower() in IMAGE_SUFFIXES:
            raise UsageError(
                f"the source {request.target} is a video, so the output is a video "
                f"too; use {', '.join(CONTAINER_SUFFIXES)} (an image output needs "
                "an image, folder or glob source)",
                parameter="output",
                value=output,
            )
        check_output_path(output, "output")
    if options.json_path is not None:
        check_output_path(options.json_path, "json_path")
    return protected + [(name, Path(path)) for name, path in outputs if path is not None]


def _plan_images(
    options: RunOptions, source: ImageSource, protected: list[Named]
) -> ImageOutputs | None:
    """Where each input image's annotated copy goes, refusing any that overwrites an input."""
    request = source.request
    images = None
    if options.output is not None:
        images = plan_image_outputs(
            source.entries,
            Path(options.output),
            str(request.target),
            single=request.kind == "image",
        )
    model_files = [named for named in protected if named[0] not in ("output", "json_path")]
    check_image_outputs(
        source.entries, images or ImageOutputs((), None), options.json_path, model_files
    )
    return images


def _open_outputs(
    options: RunOptions,
    source: VideoSource,
    summary: RunSummary,
    stack: contextlib.ExitStack,
    protected: list[Named],
    images: ImageOutputs | None,
) -> tuple[list[Sink], RecordingSink | None]:
    """The file sinks, in the order they close: the video before the JSONL that follows it."""
    recorder = (
        None if isinstance(source, ImageSource) else RecordingSink(options, source, protected)
    )
    sinks: list[Sink] = []
    if options.json_path is not None:
        sinks.append(JsonlSink(options.json_path, summary, follows=recorder))
        stack.callback(_close_into, summary, sinks[-1])
    if recorder is not None:
        stack.callback(_close_into, summary, recorder)
        sinks.append(recorder)
    if images is not None:
        sinks.append(ImageSink(images))
        stack.callback(_close_images, summary, sinks[-1])
    return sinks, recorder


def run(options: RunOptions, spec: ModelSpec, load: Loader = load_detector) -> RunSummary:
    """Segment ``options.source`` until it ends, the user quits or the source fails.

    A source that fails mid-run ends the run with ``summary.failure`` set rather than an
    exception, so the caller can still print what was done.

    Raises:
        LivesegmentError: a source, model, output or display problem found before the run, or
            an output that cannot be written.
    """
    request = (
        options.source
        if isinstance(options.source, SourceRequest)
        else parse_source(options.source)
    )
    protected = _check_outputs(options, request, spec)
    token = serve_token(options.serve, options.serve_token) if options.serve else None
    # Decided now, so the loader imports the tracker's library only for a run that tracks.
    options = dataclasses.replace(options, track=tracks(options.track, request))
    source = open_source(request)
    summary = RunSummary(is_live=source.info.is_live)
    # From here on Ctrl-C/SIGTERM ask the loop to stop, so outputs close in order.
    with StopRequest().installed() as stop, contextlib.ExitStack() as stack:
        stack.callback(source.release)
        images = (
            _plan_images(options, source, protected) if isinstance(source, ImageSource) else None
        )
        show = display_available() if options.display is None else options.display
        controls = ViewState(threshold=0.0, classes=None, style=options.style)
        window = stack.enter_context(contextlib.closing(WindowSink(controls))) if show else None
        remote = RemoteControls()
        # Listening before the model loads: a taken port costs no wait.
        web = _open_web(options, spec, source, token, remote, stack)
        detector = load(spec, options)
        if stop.is_set():
            # Interrupted while the model loaded: stop before creating any output.
            summary.stop_reason = StopReason.INTERRUPTED
            return summary
        controls.threshold, controls.classes = detector.threshold, detector.classes
        sinks, recorder = _open_outputs(options, source, summary, stack, protected, images)
        if web is not None:
            sinks.append(web)
        results = stack.enter_context(
            ResultStream(
                source,
                detector,
                reconnect_timeout_s=options.reconnect_timeout_s,
                until=stop.event,
                track=options.track,
                carry=carries(options, source),
            )
        )
        session = _Session(
            controls,
            recorder,
            window,
            summary,
            options,
            stop,
            protected,
            _demo_check(options, spec, request),
            remote=remote,
        )
        if web is not None:
            from livesegment.serve.status import run_status

            web.show_status(functools.partial(run_status, results, session))
        try:
            _drive(results, sinks, session)
        finally:
            results.close()  # the capture thread's queued frames count as dropped from here
            _finish_summary(summary, results, controls)
            if (
                isinstance(source, ImageSource)
                and summary.stop_reason is StopReason.END
                and (report := source.unreadable_report())
            ):
                summary.fail(report)
    return summary


def _open_web(
    options: RunOptions,
    spec: ModelSpec,
    source: VideoSource,
    token: str | None,
    remote: RemoteControls,
    stack: contextlib.ExitStack,
):
    """The browser view, listening, or None when not asked for."""
    if options.serve is None:
        return None
    from livesegment.serve.view import WebView  # the web stack only for runs that serve

    web = WebView(options.serve, token, spec.object_classes, remote, title=source.info.name)
    stack.callback(web.close)
    if options.announce is not None:
        options.announce(web.url)
    else:
        log.info("browser view: %s", web.url)
    return web


def carries(options: RunOptions, source: VideoSource) -> bool:
    """Whether the run carries detections onto the frames the model has no time for."""
    if not source.info.is_live or isinstance(source, ImageSource):
        return False
    return options.carry is None or options.carry


def _demo_check(
    options: RunOptions, spec: ModelSpec, request: SourceRequest
) -> _DemoModelCheck | None:
    if not options.default_model:
        return None
    return _DemoModelCheck(spec, frames=1 if request.kind == "image" else 10)


def _finish_summary(summary: RunSummary, results: ResultStream, controls: ViewState) -> None:
    stats, source = results.stats, results.source
    summary.frames_captured = stats.captured
    summary.frames_dropped = stats.dropped
    summary.reconnect_attempts = stats.reconnect_attempts
    summary.final_threshold = controls.threshold
    summary.frames_undecodable = source.undecodable
    summary.frames_decoded = source.decoded
    request = source.request
    if request.kind == "file" and request.start_s == 0 and request.end_s is None:
        summary.frames_claimed = source.info.frame_count


@dataclass(slots=True)
class _Session:
    """What the loop reads and changes besides the results: the viewer's controls, the
    recording that ``r`` toggles, the window, the summary and the stop request.

    ``recording`` is whether the recording runs as of the latest frame handed to the writer
    (the writer starts and stops it in order with the frames), for the HUD.
    """

    controls: ViewState
    recorder: RecordingSink | None
    window: WindowSink | None
    summary: RunSummary
    options: RunOptions
    stop: StopRequest
    protected: list[Named]
    demo: _DemoModelCheck | None = None
    remote: RemoteControls | None = None
    inference_fps: FpsMeter = field(default_factory=FpsMeter)
    recording: bool = False

    def __post_init__(self) -> None:
        self.recording = self.recorder is not None and self.recorder.recording


def _drive(results: ResultStream, sinks: list[Sink], session: _Session) -> None:
    """Infer on this thread; draw and write on the writer thread (the window, if any, is
    drawn here, where it is shown)."""
    summary, options = session.summary, session.options
    started = time.monotonic()
    progress = tqdm(
        total=results.info.frame_count,
        unit="frame",
        leave=False,
        disable=not options.progress or None,
        dynamic_ncols=True,
    )
    try:
        # A frame counts as processed once every file has it.
        with progress, FrameWriter(sinks, on_written=summary.add) as writer:
            for result in results:
                if session.demo is not None and not result.carried:
                    session.demo.add(result.frame.bgr)
                if not result.carried:
                    session.inference_fps.tick()
                _hand_over(result, results, writer, session)
                progress.update()
                _between_frames(results, writer, session)
                if session.controls.quit:
                    summary.stop_reason = StopReason.QUIT
                    break
                if session.stop.is_set():
                    break
        if session.demo is not None:
            session.demo.finish()
        if session.stop.is_set():
            summary.stop_reason = StopReason.INTERRUPTED
            log.info(
                "%s received: stopped between frames, outputs closed", session.stop.signal_name
            )
    except KeyboardInterrupt:
        # A second signal: the run was stuck somewhere it could not check ``stop``.
        summary.stop_reason = StopReason.INTERRUPTED
    except OutputError:
        raise
    except LivesegmentError as error:
        summary.fail(str(error))
    finally:
        summary.elapsed_s = time.monotonic() - started


def _hand_over(
    result: FrameResult, results: ResultStream, writer: FrameWriter, session: _Session
) -> None:
    """Show ``result`` in the window, if any, and queue it for the files."""
    # A segmented photo shows what was found, not the live HUD's rates.
    hud = tuple(_hud_lines(results, result, session)) if session.recorder else ()
    job = Job(result, hud, session.controls.style)
    if session.window is not None:
        job = Job(result, hud, job.style, job.draw())
        session.window.write(result, job.picture)
    writer.submit(job)
    if not result.carried:  # the model's latency: a carried frame waited for an inference
        session.summary.latencies_ms.append((time.monotonic() - result.frame.captured_at) * 1000)


def _between_frames(results: ResultStream, writer: FrameWriter, session: _Session) -> None:
    """Apply what the viewer asked for; while paused, wait here without new frames."""
    controls = session.controls
    while True:
        if session.remote is not None:
            session.remote.apply(controls)
        results.detector.threshold = controls.threshold
        results.detector.classes = controls.classes
        if controls.snapshot_requested:
            controls.snapshot_requested = False
            path = free_path(
                _numbered(session.options.snapshot_dir / f"livesegment-{_stamp()}.png"),
                session.protected,
            )
            writer.call(functools.partial(_save_snapshot, writer, path, session.summary))
        if controls.record_toggle_requested:
            controls.record_toggle_requested = False
            if session.recorder is None:
                log.info("r records videos; for a still image use s (snapshot) or an output")
            else:
                writer.call(session.recorder.toggle)
                session.recording = not session.recording
        if not controls.paused or controls.quit or session.stop.is_set():
            return
        writer.check()
        if session.window is not None:
            session.window.poll()
        else:
            time.sleep(0.03)


def _save_snapshot(writer: FrameWriter, path: Path, summary: RunSummary) -> None:
    """On the writer thread: the picture of the latest frame written, as a PNG."""
    picture = writer.last_picture()
    if picture is None:
        return
    if not cv2.imwrite(str(path), picture):
        raise OutputError(f"snapshot {path}: could not be written")
    summary.files_written.append(path)


def _hud_lines(results: ResultStream, result: FrameResult, session: _Session) -> list[str]:
    controls, stats = session.controls, results.stats
    latency_ms = (time.monotonic() - result.frame.captured_at) * 1000
    classes = ",".join(sorted(controls.classes)) if controls.classes else "all"
    flags = (
        (f"  carried {result.carried_age}" if result.carried else "")
        + ("  REC" if session.recording else "")
        + ("  PAUSED" if controls.paused else "")
    )
    lines = [
        f"inference {session.inference_fps.fps:4.1f} FPS ({result.inference_ms:.0f} ms)  "
        f"capture {stats.fps.fps:4.1f} FPS",
        f"latency {latency_ms:.0f} ms  dropped {stats.dropped}{flags}",
        f"threshold {controls.threshold:.2f}  classes: {classes}",
    ]
    if results.tracker is not None and results.tracker.count_per_class:
        lines.append(unique_objects(results.tracker.count_per_class))
    return lines
