"""``livesegment batch --ray`` on a Ray instance this test starts: a local one, and a simulated
two-node cluster (``ray.cluster_utils.Cluster``, one CPU per node) the CLI joins by address.

Every JSONL must equal what a sequential ``livesegment run`` writes for the same video.
"""

from __future__ import annotations

import collections
import importlib.util
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import (
    BATCH_SEEDS,
    BATCH_WALL_TIMES,
    ROOT,
    assert_batch_matches_run,
    batch_manifest,
    jsonl_without_timing,
    run_cli,
    running_processes,
    wait_for_frames,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.model,
    # Found, not imported: Ray is imported by the cluster fixture, not at collection.
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None,
        reason="the ray extra is not installed (uv sync installs it with the test tools)",
    ),
]
CLIPS = len(BATCH_SEEDS)


def test_local_ray_instance_writes_what_run_writes(batch_videos, tmp_path):
    folder, expected = batch_videos
    out = tmp_path / "out"
    started = time.monotonic()
    result = run_cli("batch", str(folder), "--output-dir", str(out), "--ray")
    BATCH_WALL_TIMES["batch --ray, a local instance (a new process)"] = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert f"batch: {CLIPS} done ({12 * CLIPS} frames)" in result.stdout
    assert_batch_matches_run(out, expected)
    records = batch_manifest(out)
    assert {record["worker"].split(":")[0] for record in records} == {os.uname().nodename}
    if (os.cpu_count() or 1) > 1:
        assert len({record["worker"] for record in records}) > 1, "actors shared the videos"


@pytest.fixture(scope="module")
def cluster():
    """Two Ray nodes on this machine, one CPU each: one actor fits on each."""
    from ray.cluster_utils import Cluster

    two_nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    two_nodes.add_node(num_cpus=1)
    two_nodes.wait_for_nodes()
    yield two_nodes
    two_nodes.shutdown()


def _node_ids(cluster) -> set[str]:
    return {node.node_id for node in cluster.list_all_nodes()}


def test_two_node_cluster_shares_the_videos_retries_killed_workers_and_isolates_bad_inputs(
    cluster, batch_videos, long_batch_video, tmp_path
):
    """One batch on the cluster: four clips, a longer video whose worker is killed in its
    middle, a corrupt file and a text file (one run, as each costs a cluster start-up)."""
    folder, expected = batch_videos
    video, expected_long = long_batch_video
    corrupt = tmp_path / "corrupt.avi"
    corrupt.write_bytes((folder / "clip5.avi").read_bytes()[:2000])
    text = tmp_path / "notes.txt"
    text.write_text("not a video\n")
    out = tmp_path / "out"
    inputs = [str(video), str(folder), str(corrupt), str(text)]
    batch = subprocess.Popen(
        [sys.executable, "-m", "livesegment", "batch", *inputs, "--output-dir", str(out),
         f"--ray={cluster.address}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        # Inputs go in path order: the folder's clips, the long video, then the bad files.
        wait_for_frames(out / f"{video.stem}.partial.jsonl", 2, batch)
        at_work = _actor_pids_at_work()
        assert at_work, "an actor is at work on the long video"
        for pid in at_work:
            os.kill(pid, signal.SIGKILL)
        stdout, stderr = batch.communicate(timeout=300)
    finally:
        batch.kill()
    assert batch.returncode == 1, stdout + stderr
    assert f"batch: {CLIPS + 1} done ({12 * CLIPS + 40} frames), 0 already complete, 2 failed" in (
        stdout
    )
    assert f"failed: {corrupt}: " in stdout and f"failed: {text}: " in stdout
    assert f"retried: {video}: worker lost mid-video" in stdout
    assert_batch_matches_run(out, expected)
    assert jsonl_without_timing(out / f"{video.stem}.jsonl") == expected_long

    history = collections.defaultdict(list)
    for record in batch_manifest(out):
        history[record["input"]].append(record)
    assert [(r["status"], r["attempts"]) for r in history[str(video)]] == [
        ("lost", 1),
        ("done", 2),
    ]
    assert history[str(video)][0]["node"], "the lost attempt names the node it was on"
    for path in (corrupt, text):
        [record] = history[str(path)]
        assert record["status"] == "failed" and "not a readable video" in record["error"]
    for stem in expected:  # done at once, or under way when the actors were killed
        attempts = [(r["status"], r["attempts"]) for r in history[str(folder / f"{stem}.avi")]]
        assert attempts in ([("done", 1)], [("lost", 1), ("done", 2)]), attempts
    done_nodes = {
        records[-1]["node"].split()[-1]
        for records in history.values()
        if records[-1]["status"] == "done"
    }
    assert done_nodes == _node_ids(cluster), "both nodes segmented videos"


def _actor_pids_at_work() -> list[int]:
    """Ray names a worker process after the actor method it runs."""
    return [
        pid
        for pid, _, command in running_processes()
        if command.startswith(b"ray::VideoActor.process")
    ]
