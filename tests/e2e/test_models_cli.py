"""``models list`` and ``models verify`` on real weights files, and custom models in ``run``."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import BUNDLED_CARD, needs_bundled_model, remove_layer, run_cli, tiny_spec

from livesegment.cli import main
from livesegment.model.cards import ModelSpec, resolve_model, write_card


@pytest.fixture(scope="module")
def resnet50_file(tmp_path_factory) -> Path:
    """A real PixelLib ResNet-50 Mask R-CNN with 2 object classes (not COCO's 80), saved by
    Keras. Narrow heads keep it to ~100 MB; the backbone is the full ResNet-50.

    Built in its own graph and session so its 25M variables do not slow down every later
    session in this process (PixelLib runs TensorFlow in graph mode)."""
    import tensorflow as tf

    from livesegment.model.segmenter import build_model

    path = tmp_path_factory.mktemp("resnet50") / "r50.h5"
    spec = ModelSpec(
        name="r50",
        weights=path,
        backbone="resnet50",
        class_names=("BG", "cat", "dog"),
        input_size=128,
        detection_max_instances=4,
        post_nms_rois_inference=50,
        pyramid_size=16,
        fc_layers_size=32,
        rpn_anchor_scales=(8, 16, 32, 64, 128),
    )
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session, session.as_default():
        build_model(spec).keras_model.save_weights(str(path))
    return path


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def _error_line(output: str) -> str:
    errors = [line for line in output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, output
    return errors[0]


def _copy_tiny(tiny_model: Path, folder: Path, name: str, card: bool = True, **card_fields) -> Path:
    path = folder / f"{name}.h5"
    shutil.copy(tiny_model.with_suffix(".h5"), path)
    if card:
        write_card(tiny_spec(path), path.with_suffix(".json"), **card_fields)
    return path


def test_verify_bundled_model():
    card = needs_bundled_model()
    for target in (str(card.with_suffix(".h5")), "shapes"):
        result = invoke("models", "verify", target)
        assert result.exit_code == 0, result.output
        assert "tinynet backbone, 3 classes: circle, square, triangle" in result.output
        assert "sha256 matches the card" in result.output
        assert "loads:  yes, completely" in result.output


def test_verify_resnet50_file_with_its_own_class_count(resnet50_file):
    result = invoke("models", "verify", str(resnet50_file))
    assert result.exit_code == 0, result.output
    assert "resnet50 backbone, 2 classes: class_1, class_2" in result.output
    assert "class names are placeholders" in result.output
    assert "loads:  yes, completely" in result.output
    assert "of the resnet50 network" in result.output


def test_verify_sidecar_card_with_another_class_count_fails_with_both_numbers(
    tmp_path, resnet50_file
):
    mine = tmp_path / "mine.h5"
    os.link(resnet50_file, mine)
    card = {
        "weights": "mine.h5",
        "class_names": ["a", "b", "c", "d"],
        "architecture": {"backbone": "resnet50"},
    }
    mine.with_suffix(".json").write_text(json.dumps(card))
    result = invoke("models", "verify", str(mine))
    assert result.exit_code == 1
    assert "has 3 classes (BG + 2) but the card lists 4" in _error_line(result.output)
    assert "loads:  NO" in result.output


def test_verify_file_with_a_layer_removed(tmp_path, tiny_model):
    path = _copy_tiny(tiny_model, tmp_path, "cut")
    remove_layer(path)
    result = invoke("models", "verify", str(path))
    assert result.exit_code == 1
    assert "missing layers: mrcnn_mask_conv1 (1 of 45)" in _error_line(result.output)
    assert "44 weighted layers" in result.output


def test_verify_card_with_another_sha256(tmp_path, tiny_model):
    path = _copy_tiny(tiny_model, tmp_path, "changed")
    card = json.loads(path.with_suffix(".json").read_text())
    card["sha256"] = "0" * 64
    path.with_suffix(".json").write_text(json.dumps(card))
    result = invoke("models", "verify", str(path))
    assert result.exit_code == 1
    assert "sha256 differs from the one in changed.json" in _error_line(result.output)


def test_verify_end_to_end(tmp_path, tiny_model):
    good = run_cli("models", "verify", str(tiny_model.with_suffix(".h5")))
    assert good.returncode == 0, good.stderr
    assert good.stderr == "", "no TensorFlow noise on stderr"
    assert "loads:  yes, completely: all 45 weighted layers" in good.stdout

    text = tmp_path / "notes.h5"
    text.write_text("not weights\n")
    bad = run_cli("models", "verify", str(text))
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "not an HDF5 file" in bad.stderr


@pytest.fixture
def user_models(tmp_path, tiny_model, monkeypatch) -> Path:
    """A models folder with a carded model, a bare .h5, a broken one and an unfinished
    download."""
    folder = tmp_path / "models"
    folder.mkdir()
    _copy_tiny(tiny_model, folder, "mine")
    _copy_tiny(tiny_model, folder, "bare", card=False)
    broken = _copy_tiny(tiny_model, folder, "broken")
    broken.write_bytes(broken.read_bytes()[:100_000])
    (folder / "mask_rcnn_coco.h5.part").write_bytes(b"\0" * 2_000_000)
    monkeypatch.setenv("LIVESEGMENT_HOME", str(tmp_path))
    return folder


def test_list_shows_every_model_with_its_verdict(user_models):
    result = invoke("models", "list")
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"mine (user) {user_models / 'mine.h5'}" in out
    assert "tinynet, 3 classes: circle, square, triangle, 10.0 MB; verified (file, card)" in out
    assert "bare (user)" in out and "3 classes: class_1, class_2, class_3" in out
    assert f"broken (user) {user_models / 'broken.h5'}" in out
    assert "FAILED: " in out and "truncated weights file" in out
    assert "2.0 MB so far; re-run `livesegment models download coco` to resume" in out
    assert f"1 of {3 + BUNDLED_CARD.exists()} models failed verification" in out
    if BUNDLED_CARD.exists():
        assert "shapes (bundled)" in out


def test_list_full_builds_each_network(user_models):
    result = invoke("models", "list", "--full")
    assert result.exit_code == 0, result.output
    assert result.output.count("verified: loads completely") == 2 + BUNDLED_CARD.exists()


def test_list_end_to_end(tmp_path):
    result = run_cli("models", "list", env={"LIVESEGMENT_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert f"models folder: {tmp_path / 'models'} (not created yet)" in result.stdout


# --- custom PixelLib-trained models in `run` -------------------------------------------------


def test_run_class_names_count_mismatch_names_both_numbers(tmp_path, tiny_model, video_factory):
    bare = _copy_tiny(tiny_model, tmp_path, "bare", card=False)
    result = invoke(
        "run", str(video_factory(3)), "--model", str(bare), "--class-names", "a,b", "--no-display"
    )
    assert result.exit_code == 1
    assert "has 4 classes (BG + 3) but 2 class names were given" in _error_line(result.output)


def test_run_uses_the_sidecar_cards_class_names(tmp_path, shapes_video_factory):
    # A trained model (random weights may propose nothing at all) under a card of its own.
    needs_bundled_model()
    path = tmp_path / "custom.h5"
    bundled = resolve_model("shapes")
    shutil.copy(bundled.weights, path)
    write_card(
        dataclasses.replace(
            bundled, name="custom", weights=path, class_names=("BG", "alpha", "beta", "gamma")
        ),
        path.with_suffix(".json"),
    )
    detections = tmp_path / "dets.jsonl"
    video, _truth = shapes_video_factory(seed=4242, n_frames=3)
    result = invoke(
        "run",
        str(video),
        "--model",
        str(path),
        "--threshold",
        "0.05",
        "--json",
        str(detections),
        "--no-display",
    )
    assert result.exit_code == 0, result.output
    found = {
        det["class"]
        for line in detections.read_text().splitlines()
        for det in json.loads(line).get("detections", [])
    }
    assert found and found <= {"alpha", "beta", "gamma"}


def test_run_class_names_name_a_bare_file(tmp_path, tiny_model, video_factory):
    bare = _copy_tiny(tiny_model, tmp_path, "bare", card=False)
    detections = tmp_path / "dets.jsonl"
    result = invoke(
        "run",
        str(video_factory(3)),
        "--model",
        str(bare),
        "--class-names",
        "red,green,blue",
        "--threshold",
        "0",
        "--json",
        str(detections),
        "--no-display",
    )
    assert result.exit_code == 0, result.output
    found = {
        det["class"]
        for line in detections.read_text().splitlines()
        for det in json.loads(line).get("detections", [])
    }
    assert found and found <= {"red", "green", "blue"}
