"""Two real training steps through ``livesegment.shapes.training``, then a verified load."""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
import pytest
from conftest import run_cli

from livesegment import shapes
from livesegment.model.cards import read_weights_file
from livesegment.model.detector import to_model_rgb
from livesegment.model.segmenter import Segmenter
from livesegment.shapes import training


def test_two_steps_train_and_load_verified(tmp_path):
    out = tmp_path / "tiny.h5"
    # A narrow head and few ROIs keep the graph cheap; the code path is the real one.
    spec = dataclasses.replace(
        training.shapes_spec(out, input_size=128), pyramid_size=16, fc_layers_size=32
    )
    settings = training.TrainSettings(
        steps=2, seed=5, batch=1, train_rois_per_image=8, log_every=1, class_loss_weight=10.0
    )
    lines: list[str] = []

    result = training.train(spec, settings, out, on_log=lines.append)

    assert result.steps == 2
    assert set(training.LOSS_NAMES) <= result.last_losses.keys()
    assert all(math.isfinite(v) for v in result.last_losses.values()), result.last_losses
    # The parts are logged unweighted; the optimised total weighs the classifier's tenfold
    # (plus a weight decay far below the tolerance).
    parts = {name: result.last_losses[name] for name in training.LOSS_NAMES}
    weighted = sum(parts.values()) + 9.0 * parts["mrcnn_class_loss"]
    assert parts["mrcnn_class_loss"] > 0.01
    assert result.last_losses["loss"] == pytest.approx(weighted, abs=0.01), result.last_losses
    assert sum(line.startswith("step ") and "/2 " in line for line in lines) == 2
    assert read_weights_file(out).backbone == "tinynet"
    assert result.spec.sha256 is not None

    # A fresh graph, as in a separate process (training.py has selected tf-keras already).
    training.tf_keras.backend.clear_session()
    segmenter = Segmenter(result.spec)  # raises ModelError unless every layer loaded
    rgb = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    candidates = segmenter(rgb, (480, 640))
    assert candidates.shape_hw == (480, 640)
    assert np.all(candidates.xyxy[:, 2] <= 640) and np.all(candidates.xyxy[:, 3] <= 480)


def test_training_scenes_match_live_resizing():
    # Training sees a scene exactly as the live pipeline would hand it to the model: decoded
    # as BGR, then ``to_model_rgb``.
    rng = np.random.default_rng(11)
    for source_hw in ((480, 640), (640, 480), (600, 800)):
        scene = shapes.render_scene(rng, shape_hw=source_hw, n_shapes=(1, 4))
        rgb, objects = training.resize_scene(scene, 256)
        live = to_model_rgb(cv2.cvtColor(scene.rgb, cv2.COLOR_RGB2BGR), 256)
        np.testing.assert_array_equal(rgb, live)
        for name, mask in objects:
            assert name in shapes.SHAPE_CLASSES
            assert mask.shape == rgb.shape[:2] and mask.any()
    rgb, _ = training.render_training_scene(rng, 256)
    assert rgb.dtype == np.uint8 and max(rgb.shape[:2]) == 256


def test_head_rois_hold_every_truth_object_and_background_from_the_first_step(tmp_path):
    # Random weights propose nothing near the objects; the heads still get a positive ROI for
    # every object, and every other slot (all of them on an empty image) is background.
    spec = dataclasses.replace(
        training.shapes_spec(tmp_path / "x.h5", input_size=128), pyramid_size=16, fc_layers_size=32
    )
    settings = training.TrainSettings(steps=1, seed=5, batch=2, train_rois_per_image=16)
    with training.head_roi_sampling():
        model = training.segmenter.build_model(
            spec, mode="training", images_per_batch=2, **training.train_overrides(settings)
        )
    config = model.config
    anchors = training.pixel_anchors(config)
    rng = np.random.default_rng(3)
    batch = training.make_batch(rng, config, anchors, spec.class_names)
    while not all(batch[4].any(axis=1)):  # every image must hold an object
        batch = training.make_batch(rng, config, anchors, spec.class_names)
    empty = training.make_batch(rng, config, anchors, spec.class_names)
    for key in (4, 5, 6):  # the same scenes' images without their truth
        empty[key] = np.zeros_like(empty[key])
    keras_model = model.keras_model
    rois, class_ids = keras_model.get_layer("proposal_targets").output[:2]
    sampled_rois, sampled_ids = training.tf_keras.backend.function(
        keras_model.inputs, [rois, class_ids]
    )(batch)

    for truth, image_rois, image_ids in zip(batch[4], sampled_rois, sampled_ids, strict=True):
        truth_ids = truth[truth > 0]
        positive_ids = image_ids[image_ids > 0]
        assert set(truth_ids.tolist()) <= set(positive_ids.tolist())
        assert len(positive_ids) >= len(truth_ids)
        # Every slot holds a real box: background proposals fill what positives leave.
        assert image_rois.any(axis=1).all()
    empty_rois, empty_ids = training.tf_keras.backend.function(
        keras_model.inputs, [rois, class_ids]
    )(empty)
    assert not empty_ids.any()
    assert empty_rois.any(axis=2).all(), "an empty image gets background ROIs, not padding"


@pytest.mark.parametrize("command", ["train", "quality"])
def test_developer_commands_keep_tensorflow_off_stderr(command):
    # The README sends people to these two; TensorFlow's import noise is not theirs to read.
    result = run_cli(command, "--help", module="livesegment.shapes")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "Usage:" in result.stdout
