"""``livesegment batch`` as a user runs it: the CLI (in this process, or a new one where
processes matter), the bundled model, tiny videos.

Every JSONL a batch writes must equal what ``livesegment run --json`` writes for the same video
(apart from the summary's elapsed time), in one process or in worker processes.
"""

from __future__ import annotations

import collections
import os
import shutil
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
    invoke_cli,
    jsonl_without_timing,
    run_cli,
    running_processes,
    wait_for_frames,
)

CLIPS = len(BATCH_SEEDS)


@pytest.mark.slow
@pytest.mark.model
def test_batch_matches_run_then_resumes_only_what_is_missing(batch_videos, tmp_path):
    folder, expected = batch_videos
    out = tmp_path / "out"
    started = time.monotonic()
    result = invoke_cli("batch", str(folder), "--output-dir", str(out))
    BATCH_WALL_TIMES["batch, sequential (in this process)"] = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert f"batch: {CLIPS} done ({12 * CLIPS} frames), 0 already complete, 0 failed" in (
        result.stdout
    )
    assert_batch_matches_run(out, expected)
    records = batch_manifest(out)
    assert [(r["status"], r["attempts"], r["frames"]) for r in records] == [("done", 1, 12)] * CLIPS
    for record in records:
        for output in record["outputs"].values():
            from livesegment.model.cards import sha256_of

            assert sha256_of(output["path"]) == output["sha256"]

    again = invoke_cli("batch", f"{folder}/*.avi", "--output-dir", str(out))
    assert again.returncode == 0, again.stderr
    assert f"batch: 0 done (0 frames), {CLIPS} already complete, 0 failed" in again.stdout
    assert len(batch_manifest(out)) == CLIPS, "a rerun with nothing to do records nothing"

    (out / "clip8.jsonl").unlink()
    redo = invoke_cli("batch", str(folder), "--output-dir", str(out))
    assert redo.returncode == 0, redo.stderr
    assert f"batch: 1 done (12 frames), {CLIPS - 1} already complete, 0 failed" in redo.stdout
    last = batch_manifest(out)[-1]
    assert (last["input"], last["status"], last["attempts"]) == (
        str(folder / "clip8.avi"),
        "done",
        2,
    )
    assert_batch_matches_run(out, expected)


@pytest.mark.slow
@pytest.mark.model
def test_two_workers_write_what_run_writes(batch_videos, tmp_path):
    folder, expected = batch_videos
    out = tmp_path / "out"
    started = time.monotonic()
    result = run_cli("batch", str(folder), "--output-dir", str(out), "--workers", "2")
    BATCH_WALL_TIMES["batch --workers 2 (a new process)"] = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert f"batch: {CLIPS} done ({12 * CLIPS} frames)" in result.stdout
    assert_batch_matches_run(out, expected)
    workers = {record["worker"] for record in batch_manifest(out)}
    assert len(workers) == 2, f"two worker processes shared the videos: {workers}"


@pytest.mark.slow
@pytest.mark.model
def test_a_corrupt_video_and_a_text_file_fail_alone(batch_videos, tmp_path):
    folder, expected = batch_videos
    good = folder / "clip5.avi"
    corrupt = tmp_path / "corrupt.avi"
    corrupt.write_bytes(good.read_bytes()[:2000])
    text = tmp_path / "notes.txt"
    text.write_text("not a video\n")
    out = tmp_path / "out"
    result = invoke_cli("batch", str(good), str(corrupt), str(text), "--output-dir", str(out))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "batch: 1 done (12 frames), 0 already complete, 2 failed" in result.stdout
    assert f"failed: {corrupt}: " in result.stdout and f"failed: {text}: " in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert errors == [
        f"Error: 2 of 3 inputs failed: corrupt.avi, notes.txt (reasons above and in "
        f"{out / 'manifest.jsonl'})"
    ]
    by_input = {record["input"]: record for record in batch_manifest(out)}
    for path in (corrupt, text):
        record = by_input[str(path)]
        assert record["status"] == "failed" and record["outputs"] == {}
        assert "not a readable video" in record["error"] and "\n" not in record["error"]
    assert by_input[str(good)]["status"] == "done"
    assert jsonl_without_timing(out / "clip5.jsonl") == expected["clip5"]
    assert sorted(path.name for path in out.iterdir()) == [
        "clip5.jsonl",
        "clip5.mp4",
        "clip5.summary.json",
        "manifest.jsonl",
    ]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["missing.avi"], "INPUTS missing.avi: no such file or folder"),
        (["nothing/*.avi"], "INPUTS nothing/*.avi: no file matches this pattern"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(tmp_path, args, needle):
    result = invoke_cli("batch", *args, "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert lines[0].endswith(" batch --help)"), "names where to find help"
    assert not (tmp_path / "out").exists(), "nothing is created before the inputs are checked"


def test_an_output_that_would_replace_an_input_is_refused(tmp_path, video_factory):
    source = shutil.copy(video_factory(4), tmp_path / "clip.mp4")
    result = invoke_cli("batch", str(source), "--output-dir", str(tmp_path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "would destroy the input" in result.stderr
    assert source.stat().st_size > 0


@pytest.mark.slow
@pytest.mark.model
def test_an_interrupted_batch_restarted_does_only_the_rest(batch_videos, tmp_path):
    folder, expected = batch_videos
    workers = "1"
    out = tmp_path / "out"
    command = [sys.executable, "-m", "livesegment", "batch", str(folder), "--output-dir", str(out)]
    batch = subprocess.Popen(
        [*command, "--workers", workers], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 300
        manifest = out / "manifest.jsonl"
        while not (manifest.exists() and manifest.read_text()) and batch.poll() is None:
            assert time.monotonic() < deadline, "no video finished in 300 s"
            time.sleep(0.05)
        batch.send_signal(signal.SIGINT)
        stdout, _ = batch.communicate(timeout=120)
    finally:
        batch.kill()
    assert batch.returncode == 130, stdout
    assert "interrupted: rerun the same command to finish the rest" in stdout
    finished = [record["input"] for record in batch_manifest(out)]  # every line whole
    assert 1 <= len(finished) < CLIPS, "stopped after the first video and before the last"
    assert not list(out.glob("*.partial.*")), "an interrupted video leaves no partial file"

    again = invoke_cli("batch", str(folder), "--output-dir", str(out), "--workers", workers)
    assert again.returncode == 0, again.stderr
    assert f"{CLIPS - len(finished)} done" in again.stdout
    assert f"{len(finished)} already complete" in again.stdout
    redone = [record["input"] for record in batch_manifest(out)[len(finished) :]]
    assert sorted(redone + finished) == sorted(str(folder / f"clip{s}.avi") for s in BATCH_SEEDS)
    assert_batch_matches_run(out, expected)


@pytest.mark.parametrize(
    ("ray", "code", "needle"),
    [
        ("--ray=127.0.0.1:1", 1, "no Ray cluster answers at 127.0.0.1:1 (Connection refused)"),
        ("--ray=head-node", 2, "--ray head-node: expected HOST:PORT"),
    ],
)
def test_a_cluster_that_cannot_be_reached_is_one_line_before_any_output(
    batch_videos, tmp_path, ray, code, needle
):
    folder, _ = batch_videos
    result = invoke_cli("batch", str(folder), "--output-dir", str(tmp_path / "out"), ray)
    assert result.returncode == code, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert not (tmp_path / "out").exists()


def test_an_input_after_a_bare_ray_flag_is_not_taken_for_an_address(batch_videos, tmp_path):
    folder, _ = batch_videos
    clip = folder / "clip5.avi"
    result = invoke_cli("batch", "--ray", str(clip), "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "is a file, not a cluster address: write --ray=HOST:PORT" in result.stderr


def _worker_processes(parent: int) -> list[int]:
    """The pool's spawned workers: children of ``parent`` started by multiprocessing."""
    return [
        pid
        for pid, ppid, command in running_processes()
        if ppid == parent and b"spawn_main" in command
    ]


@pytest.mark.slow
@pytest.mark.model
def test_local_workers_killed_mid_video_are_replaced_and_the_video_redone(
    batch_videos, long_batch_video, tmp_path
):
    folder, expected = batch_videos
    video, expected_long = long_batch_video
    clip = folder / "clip5.avi"
    out = tmp_path / "out"
    command = [sys.executable, "-m", "livesegment", "batch", str(video), str(clip)]
    batch = subprocess.Popen(
        [*command, "--output-dir", str(out), "--workers", "2"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_frames(out / f"{video.stem}.partial.jsonl", 2, batch)
        workers = _worker_processes(batch.pid)
        assert len(workers) == 2, workers
        for pid in workers:  # one of them is under way with the long video
            os.kill(pid, signal.SIGKILL)
        stdout, stderr = batch.communicate(timeout=300)
    finally:
        batch.kill()
    assert batch.returncode == 0, stdout + stderr
    assert "batch: 2 done (52 frames)" in stdout, stdout
    records = batch_manifest(out)
    by_input = collections.defaultdict(list)
    for record in records:
        by_input[record["input"]].append((record["status"], record["attempts"]))
    assert by_input[str(video)] == [("lost", 1), ("done", 2)], records
    # The short clip was done before the kill, or under way (then lost once, like the video).
    assert by_input[str(clip)] in ([("done", 1)], [("lost", 1), ("done", 2)]), records
    assert jsonl_without_timing(out / f"{video.stem}.jsonl") == expected_long
    assert jsonl_without_timing(out / "clip5.jsonl") == expected["clip5"]
    assert not list(out.glob("*.partial.*"))
