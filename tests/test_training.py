"""Two real training steps through ``livesegment.training``, then a verified load for inference."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from livesegment import training
from livesegment.models import read_weights_file
from livesegment.segmenter import Segmenter


def test_two_steps_train_and_load_verified(tmp_path):
    out = tmp_path / "tiny.h5"
    # A narrow head and few ROIs keep the graph cheap; the code path is the real one.
    spec = dataclasses.replace(training.shapes_spec(out, input_size=128), pyramid_size=16,
                               fc_layers_size=32)
    settings = training.TrainSettings(steps=2, seed=5, batch=1, train_rois_per_image=8,
                                      log_every=1)
    lines: list[str] = []

    result = training.train(spec, settings, out, on_log=lines.append)

    assert result.steps == 2
    assert set(training.LOSS_NAMES) <= result.last_losses.keys()
    assert all(math.isfinite(v) for v in result.last_losses.values()), result.last_losses
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
    rng = np.random.default_rng(11)
    for _ in range(5):
        rgb, objects = training.render_training_scene(rng, 256)
        assert rgb.dtype == np.uint8 and max(rgb.shape[:2]) == 256
        for name, mask in objects:
            assert name in training.shapes.SHAPE_CLASSES
            assert mask.shape == rgb.shape[:2] and mask.any()
