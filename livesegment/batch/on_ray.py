"""``--ray``: a batch's videos as tasks on Ray actors that each hold a loaded model.

One actor per model copy (a GPU each when the cluster has GPUs, else a CPU), one task per video:
the driver gives each idle actor the next video, so a fast node takes more of them. An actor whose
process dies is restarted by Ray (loading its model again) and the video it had is given out again,
up to ``max_retries`` times; the lost attempt is a manifest line of its own, so the final line
says how many attempts the video took. Workers write straight into the output folder, which
every node must reach at the same path; each checks that before writing (``OutputMarker``).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from livesegment.batch.jobs import VideoJob, partial_path
from livesegment.batch.manifest import Record
from livesegment.batch.worker import (
    INTERRUPTED,
    BatchSettings,
    OutputMarker,
    VideoWorker,
    node_name,
    one_line,
    prepare_process,
)
from livesegment.errors import ClusterError, UsageError
from livesegment.pipeline.interrupts import StopRequest

log = logging.getLogger(__name__)

STARTUP_WARNING_S = 120.0
INSTALL_HINT = "install the extra: pip install 'livesegment[ray]' (in a clone: uv sync --extra ray)"


def _import_ray():
    try:
        import ray
    except ImportError as error:
        raise UsageError(f"Ray is not installed; {INSTALL_HINT}", parameter="ray") from error
    return ray


def check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """Fail fast on a ``HOST:PORT`` nobody listens at: Ray itself retries for minutes.

    Raises:
        ClusterError: naming the address and what to do.
    """
    if not address or address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(
            "expected HOST:PORT (the address `ray start --head` prints), auto or ray://HOST:PORT",
            parameter="ray",
            value=address,
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ClusterError(
            f"no Ray cluster answers at {address} ({reason}); start one with `ray start "
            "--head` on the head node and give the address it prints"
        ) from error


def connect(address: str | None, verbose: bool = False):
    """Join the cluster at ``address`` (``HOST:PORT``, ``auto`` for one already running on this
    machine, or ``ray://…``), or start a new Ray instance on this machine when it is None;
    returns the ``ray`` module.

    Raises:
        UsageError: Ray is not installed.
        ClusterError: no cluster answers at ``address``.
    """
    ray = _import_ray()
    try:
        ray.init(
            # "local": a new instance even when one already runs here (join that with "auto").
            address=address or "local",
            include_dashboard=False,
            log_to_driver=verbose,
            logging_level=logging.INFO if verbose else logging.WARNING,
        )
    except (ConnectionError, RuntimeError, ValueError) as error:
        if not address:
            raise ClusterError(
                f"cannot start a Ray instance on this machine ({one_line(error)})"
            ) from error
        # Ray only logs the reason; a cluster with token authentication is the common one.
        raise ClusterError(
            f"cannot join the Ray cluster at {address} ({one_line(error)}); if it uses token "
            "authentication (ray start says so), set RAY_AUTH_MODE=token and its token "
            "(RAY_AUTH_TOKEN, or the head node's ~/.ray/auth_token)"
        ) from error
    return ray


def _actor_class(ray):
    @ray.remote
    class VideoActor:
        """A worker process of the cluster with the batch's model loaded once."""

        def __init__(self, settings: BatchSettings, marker: OutputMarker | None):
            prepare_process(settings.verbose)
            self.worker = VideoWorker(settings, marker=marker)
            self.worker.load()

        def node(self) -> str:
            return node_name()

        def process(self, job: VideoJob) -> Record:
            return self.worker(job)

    return VideoActor


@dataclasses.dataclass(slots=True)
class _Attempt:
    job: VideoJob
    number: int  # this run's attempt at the job, from 1
    actor: object


def actor_resources(ray) -> tuple[dict, int]:
    """Each actor's reservation, and how many the cluster holds at once."""
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
    if gpus:
        return {"num_gpus": 1, "num_cpus": 1}, gpus
    return {"num_cpus": 1}, max(cpus, 1)


def run_on_ray(
    jobs: list[VideoJob],
    settings: BatchSettings,
    output_dir: Path,
    address: str | None,
    workers: int | None,
    max_retries: int,
    stop: StopRequest,
) -> Iterator[Record]:
    """Yield one record per attempt as each ends (``attempts`` counts this run's attempts).

    Raises:
        UsageError: Ray is not installed.
        ClusterError: no cluster answers at ``address``.
    """
    ray = connect(address, settings.verbose)
    try:
        with OutputMarker.placed(output_dir) as marker:
            resources, capacity = actor_resources(ray)
            count = min(workers or capacity, len(jobs))
            log.info("Ray: %d actors (%s each) for %d videos", count, resources, len(jobs))
            actor_class = _actor_class(ray).options(
                max_restarts=-1, max_task_retries=0, **resources
            )
            actors = [actor_class.remote(settings, marker) for _ in range(count)]
            yield from _schedule(ray, jobs, actors, max_retries, stop)
    finally:
        ray.shutdown()


def _schedule(ray, jobs: list[VideoJob], actors: list, max_retries: int, stop) -> Iterator[Record]:
    """Give each idle actor the next video, as each finishes one."""
    from ray.exceptions import ActorUnavailableError, RayActorError

    waiting = collections.deque(_Attempt(job, 1, None) for job in jobs)
    running: dict[object, _Attempt] = {}
    # Each actor gets its first video at once (Ray queues it until the model is loaded), so
    # an actor that starts slowly still gets work; asking ``node()`` first says where it is.
    asking = {actor.node.remote(): (actor, False) for actor in actors}
    resting: list[tuple[float, object]] = []  # restarting actors, asked again after a pause
    idle: list = list(actors)
    nodes: dict[int, str] = {}
    started = time.monotonic()
    while waiting or running:
        if stop.is_set():
            yield from _abandon(ray, running, actors)
            return
        if not (running or asking or resting or idle):
            for attempt in waiting:
                yield _failed(attempt, "no Ray worker is left to process it")
            return
        now = time.monotonic()
        for when, actor in [pair for pair in resting if pair[0] <= now]:
            resting.remove((when, actor))
            asking[actor.node.remote()] = (actor, True)
        while idle and waiting:
            attempt = waiting.popleft()
            attempt.actor = idle.pop()
            running[attempt.actor.process.remote(attempt.job)] = attempt
        if not nodes and now - started > STARTUP_WARNING_S:
            log.warning(
                "no Ray worker has started in %.0f s: does the cluster have free CPUs (or GPUs)?",
                now - started,
            )
            started = float("inf")
        ready, _ = ray.wait([*running, *asking], num_returns=1, timeout=0.2)
        for reference in ready:
            if reference in asking:
                actor, idle_when_up = asking.pop(reference)
                try:
                    nodes[id(actor)] = ray.get(reference)
                    if idle_when_up:
                        idle.append(actor)
                except ActorUnavailableError:
                    resting.append((time.monotonic() + 0.5, actor))
                except RayActorError as error:
                    log.warning("a Ray worker is gone for good: %s", one_line(error))
                continue
            attempt = running.pop(reference)
            try:
                record = ray.get(reference)
            except RayActorError as error:
                if stop.is_set():
                    continue
                yield _lost(attempt, error, max_retries, nodes.get(id(attempt.actor), ""))
                if attempt.number <= max_retries:
                    waiting.appendleft(_Attempt(attempt.job, attempt.number + 1, None))
                # Ray restarts its process, loading the model; a call made while it restarts
                # fails without being an attempt, so it is asked until it answers.
                asking[attempt.actor.node.remote()] = (attempt.actor, True)
                continue
            except Exception as error:  # a bug in a worker must not cost the other inputs
                idle.append(attempt.actor)
                yield _failed(attempt, f"internal error: {one_line(error)}")
                continue
            idle.append(attempt.actor)
            yield dataclasses.replace(record, attempts=attempt.number)


def _lost(attempt: _Attempt, error: Exception, max_retries: int, node: str) -> Record:
    # Ray's message is a paragraph about possible causes; the kind is what the line needs.
    cause = type(error).__name__
    if attempt.number <= max_retries:
        return _failed(attempt, f"worker lost mid-video, retrying ({cause})", "lost", node)
    return _failed(
        attempt, f"worker lost mid-video {attempt.number} times; giving up ({cause})", node=node
    )


def _failed(attempt: _Attempt, error: str, status: str = "failed", node: str = "") -> Record:
    return Record(
        input=str(attempt.job.source),
        status=status,
        attempts=attempt.number,
        error=error,
        worker="ray",
        node=node,
    )


def _abandon(ray, running: dict, actors: list) -> Iterator[Record]:
    """Ctrl-C: actors cannot be interrupted between frames, so they are ended; the videos
    they had leave no partial file and are done again by a rerun."""
    for actor in actors:
        ray.kill(actor, no_restart=True)
    for attempt in running.values():
        for path in attempt.job.outputs.values():
            Path(partial_path(path)).unlink(missing_ok=True)
        yield Record(input=str(attempt.job.source), status=INTERRUPTED, attempts=attempt.number)
