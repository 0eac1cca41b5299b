"""The CLI as a user runs it: real files, real TensorFlow; a real subprocess where the whole
stderr of a fresh process is the point."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import ROOT, invoke_cli, remove_layer, run_cli, tiny_spec
from pycocotools import mask as mask_utils

from livesegment.cli import main
from livesegment.model.cards import write_card


def _one_line_error(result, code: int, *needles: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert "Traceback" not in output, output
    error_lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(error_lines) == 1, output
    for needle in needles:
        assert needle in error_lines[0], output


def test_run_writes_video_and_jsonl_matching_the_input(tmp_path, video_factory, tiny_model):
    source = video_factory(15, (200, 150), 23.976)
    out, dets = tmp_path / "out.mp4", tmp_path / "dets.jsonl"
    result = run_cli(
        "run",
        str(source),
        "--model",
        str(tiny_model.with_suffix(".h5")),
        "--output",
        str(out),
        "--json",
        str(dets),
        "--no-display",
        "--threshold",
        "0.0",
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", "a default run prints nothing on stderr (no TensorFlow logs)"
    assert "frames processed: 15" in result.stdout
    assert f"wrote: {out}" in result.stdout and f"wrote: {dets}" in result.stdout

    video = cv2.VideoCapture(str(out))
    count = 0
    while video.read()[0]:
        count += 1
    assert count == 15
    assert (video.get(cv2.CAP_PROP_FRAME_WIDTH), video.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (200, 150)
    assert video.get(cv2.CAP_PROP_FPS) == pytest.approx(23.976, abs=0.01)
    video.release()

    *lines, last = [json.loads(line) for line in dets.read_text().splitlines()]
    assert last["summary"]["frames_processed"] == 15, "a summary line marks a complete file"
    assert [line["frame"] for line in lines] == list(range(15))
    assert lines[1]["time_s"] == pytest.approx(1 / 23.976, abs=1e-4)
    total = 0
    for line in lines:
        assert (line["width"], line["height"]) == (200, 150)
        assert set(line) == {"frame", "time_s", "threshold", "width", "height", "detections"}
        assert line["threshold"] == 0.0, "the threshold each frame was kept at"
        for det in line["detections"]:
            total += 1
            assert set(det) == {"class", "score", "box", "mask", "track_id"}  # tracked video
            assert det["class"] in {"circle", "square", "triangle"}
            rle = {"size": det["mask"]["size"], "counts": det["mask"]["counts"].encode()}
            assert mask_utils.decode(rle).shape == (150, 200)
            x1, y1, x2, y2 = det["box"]
            assert 0 <= x1 <= x2 <= 200 and 0 <= y1 <= y2 <= 150
    assert total > 0, "threshold 0 keeps the random model's proposals"


def _broken_copy(tmp_path, tiny_model, name: str, breaker) -> str:
    path = tmp_path / f"{name}.h5"
    shutil.copy(tiny_model.with_suffix(".h5"), path)
    breaker(path)
    return str(path)


def _wrong_classes(tmp_path, tiny_model):
    from livesegment.model.segmenter import build_model

    spec = tiny_spec(tmp_path / "wrong.h5", ("BG", "a", "b", "c", "d", "e"))
    build_model(spec).keras_model.save_weights(str(spec.weights))
    card = json.loads(tiny_model.read_text())
    card["weights"] = "wrong.h5"
    (tmp_path / "wrong.json").write_text(json.dumps(card))
    return str(spec.weights)


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("wrong_classes", "has 6 classes (BG + 5) but the card lists 3"),
        ("layer_removed", "missing layers: mrcnn_mask_conv1"),
        ("random_bytes", "not an HDF5 file"),
        ("truncated", "truncated weights file"),
        ("empty", "weights file is empty"),
    ],
)
def test_bad_model_files_exit_1_with_one_line(tmp_path, video_factory, tiny_model, case, needle):
    source = video_factory(3)
    if case == "wrong_classes":
        model = _wrong_classes(tmp_path, tiny_model)
    elif case == "layer_removed":
        model = _broken_copy(tmp_path, tiny_model, case, remove_layer)
        write_card(tiny_spec(tmp_path / f"{case}.h5"), tmp_path / f"{case}.json")
    else:
        path = tmp_path / f"{case}.h5"
        data = tiny_model.with_suffix(".h5").read_bytes()
        path.write_bytes(
            {
                "random_bytes": np.random.default_rng(0).bytes(50_000),
                "truncated": data[: len(data) // 3],
                "empty": b"",
            }[case]
        )
        model = str(path)
    out = tmp_path / "out.mp4"
    result = invoke_cli("run", str(source), "--model", model, "--no-display", "--output", str(out))
    _one_line_error(result, 1, needle)
    assert not out.exists(), "nothing is written when the model cannot load"


def test_unknown_class_is_a_usage_error_with_suggestions(video_factory, tiny_model):
    result = invoke_cli(
        "run",
        str(video_factory(3)),
        "--model",
        str(tiny_model.with_suffix(".h5")),
        "--classes",
        "circel",
        "--no-display",
    )
    assert result.returncode == 2
    assert "unknown class 'circel'" in result.stderr and "did you mean circle" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "missing.avi"], "missing.avi: no such file"),
        (["run", "{text}"], "not a readable video (Invalid data"),
        (["run", "{video}", "--output", "/nonexistent-dir/out.mp4"], "does not exist"),
        (["run", "{video}", "--json", "{tmp}"], "is a folder"),
        (["run", "{video}", "--model", "no-such-model"], "unknown model 'no-such-model'"),
    ],
)
def test_bad_input_exits_1_fast(tmp_path, video_factory, tiny_model, args, needle):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    args = [a.format(text=text, video=video_factory(3), tmp=tmp_path) for a in args]
    if "--model" not in args:
        args += ["--model", str(tiny_model.with_suffix(".h5"))]
    result = CliRunner().invoke(main, [*args, "--no-display"])
    assert result.exit_code == 1, result.output
    assert needle in result.output
    assert "Traceback" not in result.output


def test_threshold_out_of_range_is_usage_error(video_factory):
    result = CliRunner().invoke(main, ["run", str(video_factory(3)), "--threshold", "1.5"])
    assert result.exit_code == 2
    assert "1.5 is not in the range" in result.output


@pytest.mark.parametrize("display", [None, ":1999"])
def test_display_without_a_screen_fails_fast(video_factory, tiny_model, monkeypatch, display):
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if display is None:
        monkeypatch.delenv("DISPLAY", raising=False)
    else:  # set but unreachable: Qt would abort the process, so we must refuse first
        monkeypatch.setenv("DISPLAY", display)
    result = CliRunner().invoke(
        main,
        ["run", str(video_factory(3)), "--display", "--model", str(tiny_model.with_suffix(".h5"))],
    )
    assert result.exit_code == 1
    assert "no display available" in result.output and "--no-display" in result.output


def test_eval_command_scores_truth_against_itself():
    truth = ROOT / "sample_videos" / "shapes.truth.jsonl"
    result = CliRunner().invoke(main, ["eval", str(truth), str(truth)])
    assert result.exit_code == 0, result.output
    assert "recall" in result.output.lower() and "1.000" in result.output

    as_json = CliRunner().invoke(main, ["eval", str(truth), str(truth), "--json"])
    report = json.loads(as_json.output)
    assert report["recall"] == report["precision"] == report["mean_iou"] == 1.0
    assert report["truth_objects"] == report["matched"] > 0
