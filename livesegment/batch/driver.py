"""``run_batch``: skip what is complete and verified, segment the rest, record every attempt.

Only the driver writes the manifest (workers return records), so appends never interleave.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from livesegment.batch.jobs import VideoJob, frame_count
from livesegment.batch.manifest import MANIFEST_NAME, ManifestWriter, Record, read_manifest
from livesegment.batch.worker import (
    INTERRUPTED,
    BatchSettings,
    VideoWorker,
    init_process,
    node_name,
    process_in_worker,
    worker_name,
)
from livesegment.errors import OutputError
from livesegment.model.cards import sha256_of
from livesegment.paths import check_no_overwrite
from livesegment.pipeline.interrupts import StopRequest

log = logging.getLogger(__name__)


@dataclass(slots=True)
class BatchReport:
    """What a batch did: records of this run's attempts and the inputs skipped as complete."""

    done: list[Record] = field(default_factory=list)
    failed: list[Record] = field(default_factory=list)
    lost: list[Record] = field(default_factory=list)  # attempts a dead worker took along
    skipped: list[Path] = field(default_factory=list)
    interrupted: bool = False
    elapsed_s: float = 0.0
    manifest: Path | None = None

    def format(self) -> str:
        frames = sum(record.frames for record in self.done)
        lines = [
            f"batch: {len(self.done)} done ({frames} frames), {len(self.skipped)} already "
            f"complete, {len(self.failed)} failed in {self.elapsed_s:.1f} s"
        ]
        for record in self.lost:
            lines.append(f"retried: {record.input}: {record.error}")
        for record in self.failed:
            # Source errors already start with the path.
            error = record.error or ""
            lines.append(
                f"failed: {'' if error.startswith(record.input) else record.input + ': '}{error}"
            )
        if self.interrupted:
            lines.append("interrupted: rerun the same command to finish the rest")
        if self.manifest is not None:
            lines.append(f"manifest: {self.manifest}")
        return "\n".join(lines)


class _Progress:
    """Two bars: videos, and frames (counted as each video ends; the total is what the
    containers claim, so it is approximate for files that do not say)."""

    def __init__(self, pending: list[VideoJob], total: int, skipped: int, enabled: bool):
        frames = sum(frame_count(job.source) or 0 for job in pending) if enabled else 0
        self.videos = tqdm(
            total=total, initial=skipped, unit="video", disable=not enabled, position=0
        )
        self.frames = tqdm(total=frames or None, unit="frame", disable=not enabled, position=1)

    def finished(self, record: Record) -> None:
        self.videos.update()
        self.frames.update(record.frames)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.frames.close()
        self.videos.close()


def is_complete(job: VideoJob, record: Record | None, settings: BatchSettings) -> bool:
    """Done with these settings, and every output is there with the sha256 recorded."""
    if record is None or record.status != "done" or record.settings != settings.fingerprint():
        return False
    expected = {kind: str(path) for kind, path in job.outputs.items()}
    if {kind: output.path for kind, output in record.outputs.items()} != expected:
        return False
    for output in record.outputs.values():
        path = Path(output.path)
        if not path.is_file() or sha256_of(path) != output.sha256:
            log.info("%s is missing or changed since it was recorded; redoing it", path)
            return False
    return True


def check_outputs(jobs: list[VideoJob], settings: BatchSettings, manifest: Path) -> None:
    """Refuse a batch whose outputs would replace an input, the model or each other.

    Raises:
        SameFileError: naming both files.
    """
    inputs = [("inputs", job.source) for job in jobs]
    inputs.append(("model", settings.spec.weights))
    outputs = [("output_dir", path) for job in jobs for path in job.outputs.values()]
    check_no_overwrite(inputs, [*outputs, ("output_dir", manifest)])


def _in_process(
    jobs: list[VideoJob], settings: BatchSettings, stop: StopRequest
) -> Iterator[Record]:
    worker = VideoWorker(settings)
    worker.load()
    for job in jobs:
        if stop.is_set():
            return
        record = worker(job)
        yield record
        if record.status == INTERRUPTED:
            return


def _in_pool(
    jobs: list[VideoJob],
    settings: BatchSettings,
    workers: int,
    stop: StopRequest,
    max_retries: int,
) -> Iterator[Record]:
    """Local worker processes. A process that dies (killed, out of memory) breaks the whole
    pool; a new one takes the videos not done, and the ones under way count a lost attempt."""
    # spawn, not fork: TensorFlow's threads do not survive a fork, and each worker loads its
    # own model once in init_process.
    context = multiprocessing.get_context("spawn")
    stop_workers = context.Event()
    attempt_numbers = {job.source: 1 for job in jobs}
    remaining = list(jobs)
    while remaining:
        started = context.Queue()  # sources as workers start them: who was under way
        unfinished: list[VideoJob] = []
        with ProcessPoolExecutor(
            workers, context, initializer=init_process, initargs=(settings, stop_workers, started)
        ) as pool:
            pending = {pool.submit(process_in_worker, job): job for job in remaining}
            try:
                while pending:
                    # Polled, so a stop request reaches the workers while they work.
                    finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    if stop.is_set() and not stop_workers.is_set():
                        _stop_workers(pool, pending, stop_workers)
                    for future in finished:
                        job = pending.pop(future)
                        if future.cancelled():
                            continue
                        try:
                            record = future.result()
                        except BrokenProcessPool:
                            unfinished.append(job)
                            continue
                        yield dataclasses.replace(record, attempts=attempt_numbers[job.source])
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        under_way = _drain(started)
        remaining = []
        for job in unfinished:
            if str(job.source) not in under_way:
                remaining.append(job)  # never started: not an attempt
                continue
            number = attempt_numbers[job.source]
            retry = number <= max_retries and not stop.is_set()
            yield _lost_in_pool(job, settings, number, retry)
            if retry:
                attempt_numbers[job.source] = number + 1
                remaining.append(job)
        if stop.is_set():
            return


def _drain(queue) -> set[str]:
    seen = set()
    with contextlib.suppress(Exception):  # queue.Empty, or a queue a dead writer left torn
        while True:
            seen.add(queue.get(timeout=0.1))
    return seen


def _lost_in_pool(job: VideoJob, settings: BatchSettings, number: int, retry: bool) -> Record:
    reason = (
        "a worker process died mid-video, retrying"
        if retry
        else f"a worker process died mid-video {number} times; giving up"
    )
    return Record(
        str(job.source),
        "lost" if retry else "failed",
        number,
        error=reason,
        settings=settings.fingerprint(),
        worker=worker_name(),
        node=node_name(),
    )


def _stop_workers(pool: ProcessPoolExecutor, pending: dict, stop_workers) -> None:
    """Jobs not started are cancelled or handed back undone; videos under way get the Ctrl-C
    the workers' own process groups kept from them, and stop between frames."""
    stop_workers.set()
    for future in pending:
        future.cancel()
    # The pool has no public list of its processes; signalling them is the only way in.
    for process in list(getattr(pool, "_processes", {}).values()):
        with contextlib.suppress(OSError):
            os.kill(process.pid, signal.SIGINT)


@dataclass(frozen=True, slots=True)
class RayPlan:
    """Run the batch on Ray: join ``address``, or start an instance here when it is None."""

    address: str | None = None


def _records(
    pending: list[VideoJob],
    settings: BatchSettings,
    workers: int | None,
    ray: RayPlan | None,
    output_dir: Path,
    stop: StopRequest,
    max_retries: int,
) -> Iterator[Record]:
    if ray is not None:
        from livesegment.batch.on_ray import run_on_ray

        return run_on_ray(pending, settings, output_dir, ray.address, workers, max_retries, stop)
    workers = workers or 1
    if workers <= 1 or len(pending) == 1:
        return _in_process(pending, settings, stop)
    return _in_pool(pending, settings, min(workers, len(pending)), stop, max_retries)


def run_batch(
    jobs: list[VideoJob],
    settings: BatchSettings,
    output_dir: Path,
    workers: int | None = None,
    progress: bool = True,
    ray: RayPlan | None = None,
    max_retries: int = 2,
) -> BatchReport:
    """Segment every job not already complete; one manifest line per attempt.

    ``workers`` is how many copies of the model segment at once: local processes (default
    one, in this process), or Ray actors (default: as many as the cluster has GPUs, or CPUs).
    A video whose worker process dies is given out again up to ``max_retries`` times.

    Raises:
        OutputError: the output folder cannot be created or the manifest written.
        SameFileError: an output would replace an input.
        UsageError: Ray was asked for and is not installed.
        ClusterError: the Ray cluster cannot be started or joined.
    """
    started = time.monotonic()
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(
            f"cannot create the folder ({error.strerror})", parameter="output_dir", value=output_dir
        ) from error
    manifest_path = output_dir / MANIFEST_NAME
    check_outputs(jobs, settings, manifest_path)
    previous = read_manifest(manifest_path)
    report = BatchReport(manifest=manifest_path)
    pending = []
    for job in jobs:
        if is_complete(job, previous.get(str(job.source)), settings):
            report.skipped.append(job.source)
        else:
            pending.append(job)
    bars = _Progress(pending, len(jobs), len(report.skipped), progress)
    # Ctrl-C between videos stops before the next one; during a video, run() stops it between
    # frames; the manifest only ever gets whole records of finished attempts.
    with (
        StopRequest().installed() as stop,
        bars,
        ManifestWriter(manifest_path) as manifest,
    ):
        if pending:
            records = _records(pending, settings, workers, ray, output_dir, stop, max_retries)
            try:
                for record in records:
                    if record.status == INTERRUPTED:
                        report.interrupted = True
                        continue
                    earlier = previous.get(record.input)
                    # Records count this run's attempts; the manifest counts every run's.
                    attempts = (earlier.attempts if earlier else 0) + record.attempts
                    record = dataclasses.replace(record, attempts=attempts)
                    manifest.append(record)
                    if record.status == "lost":
                        report.lost.append(record)
                        continue
                    (report.done if record.status == "done" else report.failed).append(record)
                    bars.finished(record)
            except KeyboardInterrupt:  # a second Ctrl-C
                report.interrupted = True
        report.interrupted |= stop.is_set()
    report.elapsed_s = time.monotonic() - started
    return report
