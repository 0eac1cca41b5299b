"""Segment one video with an already loaded ``Detector``: the unit of work of a batch.

``VideoWorker`` holds the model and processes one ``VideoJob`` per call, through the same
``pipeline.run`` as ``livesegment run``, so its files are the ones ``run`` writes. It never
raises for a bad input: the result is a failed ``Record`` with a one-line reason. The local
process pool keeps one per process; a Ray actor can hold one the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from livesegment.batch.jobs import VideoJob, partial_path
from livesegment.batch.manifest import OutputFile, Record
from livesegment.errors import LivesegmentError
from livesegment.model.cards import ModelSpec, sha256_of
from livesegment.model.detector import Detector
from livesegment.output.overlay import OverlayStyle
from livesegment.structures import StopReason

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted"  # a status never written to the manifest: the input is redone


@dataclass(frozen=True, slots=True)
class BatchSettings:
    """The model and drawing options every video of a batch shares (``run``'s meanings)."""

    spec: ModelSpec
    threshold: float | None = None
    classes: frozenset[str] | None = None
    speed: str | None = None
    max_size: int | None = None
    rois: int | None = None
    max_instances: int | None = None
    style: OverlayStyle = field(default_factory=OverlayStyle)
    video: bool = True
    default_model: bool = False
    verbose: bool = False

    def run_options(self, source, output: Path | None = None, json_path: Path | None = None):
        from livesegment.pipeline.runner import RunOptions

        return RunOptions(
            source=source,
            output=output,
            json_path=json_path,
            display=False,
            threshold=self.threshold,
            classes=self.classes,
            speed=self.speed,
            max_size=self.max_size,
            rois=self.rois,
            max_instances=self.max_instances,
            style=self.style,
            verbose=self.verbose,
            progress=False,  # the batch shows one bar over its inputs
            default_model=self.default_model,
        )

    def fingerprint(self) -> dict:
        """What the outputs depend on; a done input whose settings differ is redone."""
        return {
            "model": self.spec.name,
            "weights": str(self.spec.weights),
            "threshold": self.threshold,
            "classes": sorted(self.classes) if self.classes is not None else None,
            "speed": self.speed,
            "max_size": self.max_size,
            "rois": self.rois,
            "max_instances": self.max_instances,
            "style": dataclasses.asdict(self.style),
            "video": self.video,
        }


def one_line(text: str) -> str:
    return " ".join(str(text).split()) or "unknown error"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def node_name() -> str:
    """The machine: its host name, or inside Ray the node's address and id (nodes of one
    machine, as in a simulated cluster, share a host name but not an id)."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        node_id = ray.get_runtime_context().get_node_id()
        return f"{ray.util.get_node_ip_address()} {node_id}"
    return socket.gethostname()


@dataclass(frozen=True, slots=True)
class OutputMarker:
    """A file the driver writes in the output folder: a worker that sees it with this content
    writes to the same storage as the driver, not to a same-named folder of its own machine."""

    path: Path
    token: str

    @classmethod
    @contextlib.contextmanager
    def placed(cls, folder: Path) -> Iterator[OutputMarker]:
        """Write a fresh marker in ``folder``; removed when the batch ends."""
        marker = cls(folder / f".livesegment-batch-{secrets.token_hex(6)}", secrets.token_hex(16))
        marker.path.write_text(marker.token, encoding="utf-8")
        try:
            yield marker
        finally:
            marker.path.unlink(missing_ok=True)

    def problem(self) -> str | None:
        """Why this machine cannot write the batch's outputs, or None."""
        folder = self.path.parent
        try:
            seen = self.path.read_text(encoding="utf-8")
        except OSError:
            seen = None
        if seen != self.token:
            return (
                f"output folder {folder} is not the batch's folder on node {node_name()} (the "
                "driver's marker file is not there): the output folder must be storage every "
                "node mounts at the same path (NFS, a cluster file system)"
            )
        probe = folder / f".livesegment-write-{os.getpid()}-{time.monotonic_ns()}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            return (
                f"output folder {folder} is not writable on node {node_name()} "
                f"({error.strerror}): give every node's workers write access"
            )
        return None


class VideoWorker:
    """A loaded model that segments one video per call."""

    def __init__(
        self,
        settings: BatchSettings,
        detector: Detector | None = None,
        marker: OutputMarker | None = None,
    ):
        self.settings = settings
        self.detector = detector
        self.marker = marker
        self.load_error: str | None = None

    def load(self) -> None:
        """Load the model once (``run``'s loader: verified weights, the tracker preloaded)."""
        from livesegment.pipeline.runner import load_detector

        try:
            self.detector = load_detector(self.settings.spec, self.settings.run_options(""))
        except LivesegmentError as error:
            self.load_error = one_line(str(error))

    def __call__(self, job: VideoJob) -> Record:
        if self.detector is None:
            return self._record(job, "failed", 0, 0.0, f"model not loaded: {self.load_error}")
        if self.marker is not None and (problem := self.marker.problem()):
            return self._record(job, "failed", 0, 0.0, problem)
        return process_video(job, self.detector, self.settings)

    def _record(self, job, status, frames, seconds, error) -> Record:
        return _record(job, self.settings, status, frames, seconds, error)


def _record(
    job: VideoJob,
    settings: BatchSettings,
    status: str,
    frames: int,
    seconds: float,
    error: str | None = None,
    outputs: dict[str, OutputFile] | None = None,
) -> Record:
    return Record(
        input=str(job.source),
        status=status,
        attempts=1,  # the driver counts earlier attempts in
        frames=frames,
        seconds=round(seconds, 3),
        error=error,
        outputs=outputs or {},
        settings=settings.fingerprint(),
        worker=worker_name(),
        node=node_name(),
    )


def _remove(paths) -> None:
    for path in paths:
        Path(path).unlink(missing_ok=True)


def process_video(job: VideoJob, detector: Detector, settings: BatchSettings) -> Record:
    """Segment ``job.source`` with ``detector`` into ``job``'s outputs.

    Every output is written under its partial name and renamed once all are complete, so a
    file with a final name is always whole; an earlier attempt's files are removed first, so
    the folder never pairs a new video with old detections.

    Returns:
        A "done" record with each output's sha256, a "failed" one with a one-line reason, or
        one with status ``INTERRUPTED`` (Ctrl-C; its partial files are removed).
    """
    from livesegment import pipeline

    started = time.monotonic()
    _remove(job.outputs.values())
    partials = {kind: partial_path(path) for kind, path in job.outputs.items()}
    options = settings.run_options(str(job.source), partials.get("video"), partials["jsonl"])
    try:
        summary = pipeline.run(options, settings.spec, load=lambda *_: detector)
    except KeyboardInterrupt:  # a second Ctrl-C: stop now, leave no partial file behind
        _remove(partials.values())
        raise
    except LivesegmentError as error:
        _remove(partials.values())
        return _record(job, settings, "failed", 0, time.monotonic() - started, one_line(error))
    except Exception as error:  # a bug must not cost the other inputs their results
        log.debug("processing %s failed", job.source, exc_info=True)
        _remove(partials.values())
        reason = f"internal error: {type(error).__name__}: {one_line(error)}"
        return _record(job, settings, "failed", 0, time.monotonic() - started, reason)
    frames = summary.frames_processed
    if summary.stop_reason is StopReason.INTERRUPTED:
        _remove(partials.values())
        return _record(job, settings, INTERRUPTED, frames, time.monotonic() - started)
    if summary.stop_reason is StopReason.FAILED:
        _remove(partials.values())
        reason = one_line(summary.failure or "failed")
        return _record(job, settings, "failed", frames, time.monotonic() - started, reason)
    record = {"input": str(job.source), "summary": summary.to_json()}
    partials["summary"].write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    outputs = {}
    for kind, partial in partials.items():
        outputs[kind] = OutputFile(str(job.outputs[kind]), sha256_of(partial))
        os.replace(partial, job.outputs[kind])
    return _record(job, settings, "done", frames, time.monotonic() - started, None, outputs)


# One per local worker process, set by its initializer (a process pool calls plain functions),
# with the batch's stop event: a job taken after a stop request is handed back undone.
_worker: VideoWorker | None = None
_stop = None
_started = None


def prepare_process(verbose: bool) -> None:
    """A worker process (local or a Ray actor) logs and quiets TensorFlow as the CLI does."""
    from livesegment.model import tfenv

    tfenv.quiet_tensorflow(verbose)
    tfenv.quiet_opencv(verbose)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def init_process(settings: BatchSettings, stop, started=None) -> None:
    """A spawned worker process: quiet TensorFlow like the CLI, load the model once.

    The worker leaves its terminal's process group, so Ctrl-C reaches only the batch, which
    passes it on exactly once (a second signal would abort a video instead of stopping it
    between frames); a run under way stops between frames.
    """
    global _worker, _stop, _started
    if hasattr(os, "setpgrp"):
        os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    prepare_process(settings.verbose)
    _stop, _started = stop, started
    _worker = VideoWorker(settings)
    _worker.load()


def process_in_worker(job: VideoJob) -> Record:
    assert _worker is not None, "init_process runs first"
    if _stop is not None and _stop.is_set():
        return _record(job, _worker.settings, INTERRUPTED, 0, 0.0)
    if _started is not None:  # so the driver knows what was under way if this process dies
        _started.put(str(job.source))
    return _worker(job)
