"""``livesegment run --speed``: explained in --help, checked, and used by a real run."""

from __future__ import annotations

import json

import pytest
from conftest import SAMPLE_VIDEO, invoke_cli

from livesegment.model.cards import SPEEDS


def test_run_help_explains_each_preset_in_one_line():
    result = invoke_cli("run", "--help")
    assert result.returncode == 0, result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    for speed in SPEEDS:
        explained = [line for line in lines if line.startswith(f"{speed} ")]
        assert len(explained) == 1, (speed, result.stdout)
        assert len(explained[0].split()) > 4, explained
    assert "--speed [accurate|balanced|fast]" in result.stdout
    for flag in ("--max-size", "--rois", "--max-instances"):
        assert flag in result.stdout


def test_unknown_speed_is_a_usage_error():
    result = invoke_cli("run", str(SAMPLE_VIDEO), "--speed", "turbo", "--no-display")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--speed" in result.stderr, result.stderr


@pytest.mark.model
@pytest.mark.slow
def test_run_fast_with_expert_overrides_segments_the_sample(tmp_path):
    out = tmp_path / "fast.jsonl"
    result = invoke_cli(
        "run",
        str(SAMPLE_VIDEO),
        "--speed",
        "fast",
        "--rois",
        "40",
        "--max-instances",
        "3",
        "--end",
        "1",
        "--no-display",
        "--json",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    frames = [json.loads(line) for line in out.read_text().splitlines()]
    frames = [frame for frame in frames if "frame" in frame]
    assert len(frames) == 15
    assert all(len(frame["detections"]) <= 3 for frame in frames)
    assert sum(len(frame["detections"]) for frame in frames) > 0
