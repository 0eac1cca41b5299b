"""Tracks through the CLI with the bundled model: one shape keeps one id over a whole clip, a
shape that leaves and the newcomer that enters get different ids, and --no-track leaves the
JSONL as it was."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke_cli, needs_bundled_model
from pycocotools import mask as mask_utils

from livesegment.evaluate import load_jsonl_frames
from livesegment.shapes.world import simulate_video, write_truth, write_video

pytestmark = [pytest.mark.model, pytest.mark.slow]

# One shape at a time, no empty frames: seed 1's shape stays all along (it bounces); seed 11's
# leaves the frame and a newcomer enters from an edge at frame 22.
ONE_SHAPE = {"n_shapes": (1, 1), "empty_fraction": 0.0}
N_FRAMES = 45


def _clip(folder: Path, seed: int) -> tuple[Path, Path]:
    video, truth = folder / f"one-{seed}.avi", folder / f"one-{seed}.truth.jsonl"
    write_video(video, simulate_video(seed, N_FRAMES, (480, 640), 15.0, **ONE_SHAPE), 15.0)
    write_truth(truth, simulate_video(seed, N_FRAMES, (480, 640), 15.0, **ONE_SHAPE))
    return video, truth


def _track_ids_by_truth(dets: Path, truth: Path) -> dict[int, list[int | None]]:
    """Per truth object id, the track ids of the detections that outline it (same class,
    mask IoU >= 0.5), frame by frame."""
    found: dict[int, list[int | None]] = {}
    truth_frames = {f.frame: f for f in load_jsonl_frames(truth)}
    for frame in load_jsonl_frames(dets):
        (obj,) = truth_frames[frame.frame].instances
        for det in frame.instances:
            iou = mask_utils.iou([det.rle], [obj.rle], [0])[0][0]
            if det.class_name == obj.class_name and iou >= 0.5:
                found.setdefault(obj.identity, []).append(det.identity)
    return found


def _run(video: Path, dets: Path, *flags: str) -> str:
    result = invoke_cli("run", str(video), "--no-display", "--json", str(dets), *flags)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def test_one_moving_shape_keeps_one_track_id_over_the_clip(tmp_path: Path) -> None:
    needs_bundled_model()
    video, truth = _clip(tmp_path, seed=1)
    dets = tmp_path / "run.jsonl"
    stdout = _run(video, dets)
    tracks = _track_ids_by_truth(dets, truth)
    assert list(tracks) == [0]
    assert len(tracks[0]) >= 0.9 * N_FRAMES, "the model missed the shape too often"
    assert set(tracks[0]) == {1}, tracks
    lines = [json.loads(x) for x in dets.read_text().splitlines()]
    assert all("track_id" in d for line in lines[:-1] for d in line["detections"])
    assert lines[-1]["summary"]["unique_objects_per_class"], lines[-1]
    assert "unique objects: " in stdout


def test_a_shape_that_leaves_and_a_newcomer_get_different_ids(tmp_path: Path) -> None:
    needs_bundled_model()
    video, truth = _clip(tmp_path, seed=11)
    dets = tmp_path / "run.jsonl"
    _run(video, dets)
    tracks = _track_ids_by_truth(dets, truth)
    assert sorted(tracks) == [0, 1]
    for object_id, ids in tracks.items():
        # Its own id all along (the frame it is first seen included).
        assert len(set(ids)) == 1 and None not in ids, (object_id, ids)
    assert tracks[0][0] != tracks[1][0]

    untracked = tmp_path / "untracked.jsonl"
    stdout = _run(video, untracked, "--no-track")
    assert "unique" not in stdout
    lines = [json.loads(x) for x in untracked.read_text().splitlines()]
    assert not any("track_id" in d for line in lines[:-1] for d in line["detections"])
    assert np.sum([len(line["detections"]) for line in lines[:-1]]) > 0
