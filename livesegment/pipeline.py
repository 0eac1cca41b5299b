"""Wires source -> capture thread -> segmenter -> filters -> overlay -> sinks."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from livesegment import tfenv
from livesegment.capture import CaptureThread
from livesegment.filters import select
from livesegment.models import ModelSpec
from livesegment.overlay import OverlayStyle, annotate
from livesegment.sinks import (
    JsonlSink,
    VideoFileSink,
    WindowSink,
    check_output_path,
    display_available,
)
from livesegment.sources import open_source
from livesegment.structures import Candidates, Detections, FrameResult, RunSummary

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What ``livesegment run`` was asked to do.

    Attributes:
        display: True/False as asked; None shows a window only where a display exists.
        threshold: None uses the model card's default.
        classes: class names to keep; None keeps all.
        max_size: long side in pixels used for inference; None uses the model's input size.
    """

    source: str
    output: Path | None = None
    json_path: Path | None = None
    display: bool | None = None
    threshold: float | None = None
    classes: frozenset[str] | None = None
    max_size: int | None = None
    style: OverlayStyle = field(default_factory=OverlayStyle)
    verbose: bool = False
    progress: bool = True


class FpsMeter:
    """Frames per second over a rolling window of ``time.monotonic()`` stamps."""

    def __init__(self, window: int = 30):
        self._stamps: deque[float] = deque(maxlen=window)

    def tick(self) -> None:
        self._stamps.append(time.monotonic())

    @property
    def fps(self) -> float:
        if len(self._stamps) < 2:
            return 0.0
        span = self._stamps[-1] - self._stamps[0]
        return (len(self._stamps) - 1) / span if span > 0 else 0.0


Segment = Callable[[np.ndarray, tuple[int, int]], Candidates]
Unmold = Callable[[Candidates, np.ndarray], Detections]


def load_segmenter(spec: ModelSpec, verbose: bool = False) -> tuple[Segment, Unmold]:
    """Import TensorFlow, build the network and load verified weights, quietly."""
    with tfenv.silenced_stderr(not verbose):
        from livesegment import segmenter

        model = segmenter.Segmenter(spec)
    return model, segmenter.unmold


def run(options: RunOptions, spec: ModelSpec,
        load: Callable[[ModelSpec, bool], tuple[Segment, Unmold]] = load_segmenter
        ) -> RunSummary:
    """Segment every frame of ``options.source``; returns the run's summary.

    Cheap checks (outputs, source, display) come first, the model after; output files are
    created only once the model is ready, and closed (playable) whatever happens.

    Raises:
        LivesegmentError: a source, model, output or display problem.
    """
    for path, option in ((options.output, "--output"), (options.json_path, "--json")):
        if path is not None:
            check_output_path(path, option)
    source = open_source(options.source)
    show = display_available() if options.display is None else options.display
    window = WindowSink() if show else None
    sinks: list = []
    summary = RunSummary()
    try:
        segment, unmold = load(spec, options.verbose)
        threshold = spec.default_threshold if options.threshold is None else options.threshold
        long_side = options.max_size or spec.input_size
        if options.output is not None:
            sinks.append(VideoFileSink(options.output, source.info.size_wh, source.info.fps))
        if options.json_path is not None:
            sinks.append(JsonlSink(options.json_path))
        fps_meter = FpsMeter()
        started = time.monotonic()
        progress = tqdm(total=source.info.frame_count, unit="frame", disable=not options.progress
                        or None, leave=False, dynamic_ncols=True)
        first_call = True
        with CaptureThread(source, long_side) as capture, progress:
            for frame in capture.frames():
                inference_started = time.monotonic()
                # TensorFlow logs while it finishes building the graph on the first call.
                with tfenv.silenced_stderr(first_call and not options.verbose):
                    candidates = segment(frame.rgb, frame.shape_hw)
                first_call = False
                selection = select(candidates, threshold, options.classes)
                detections = unmold(candidates, selection.keep)
                inference_ms = (time.monotonic() - inference_started) * 1000
                fps_meter.tick()
                result = FrameResult(frame, detections, selection.empty_reason,
                                     len(candidates), inference_ms)
                summary.add(result)
                hud = [f"{fps_meter.fps:5.1f} FPS  {inference_ms:4.0f} ms/frame",
                       f"threshold {threshold:.2f}"
                       + (f"  classes: {','.join(sorted(options.classes))}"
                          if options.classes else "")]
                picture = annotate(frame.bgr, detections, selection.empty_reason, hud,
                                   options.style)
                for sink in sinks:
                    if isinstance(sink, VideoFileSink):
                        sink.write(picture)
                    else:
                        sink.write(result)
                progress.update()
                if window is not None and not window.show(picture):
                    summary.stopped_early = "quit from the window"
                    break
        summary.elapsed_s = time.monotonic() - started
    except KeyboardInterrupt:
        summary.stopped_early = "interrupted (Ctrl-C)"
    finally:
        for sink in sinks:
            sink.close()
            summary.files_written.append(sink.path)
        if window is not None:
            window.close()
        source.release()
    return summary
