"""The real PixelLib Mask R-CNN: weights are proven loaded, outputs are in source pixels."""

from __future__ import annotations

import dataclasses
import shutil

import h5py
import numpy as np
import pytest
from conftest import remove_layer, tiny_spec

from livesegment.errors import ModelError
from livesegment.model.cards import read_weights_file
from livesegment.model.detector import to_model_rgb, unmold
from livesegment.model.segmenter import (
    Segmenter,
    build_model,
    load_verified,
    weighted_layers,
)


def _layer_values(keras_model, name):
    return keras_model.get_layer(name).get_weights()


def test_saved_weights_load_identically_into_a_fresh_model(tiny_model):
    source = build_model(tiny_spec(tiny_model.with_suffix(".h5")))
    weights = read_weights_file(tiny_model.with_suffix(".h5"))
    load_verified(source.keras_model, weights)
    fresh = build_model(tiny_spec(weights.path))
    before = _layer_values(fresh.keras_model, "mrcnn_mask_conv1")[0].copy()
    load_verified(fresh.keras_model, weights)
    after = _layer_values(fresh.keras_model, "mrcnn_mask_conv1")[0]
    assert not np.array_equal(before, after), "random init should differ from the file"
    for layer in weighted_layers(source.keras_model):
        for a, b in zip(
            layer.get_weights(), fresh.keras_model.get_layer(layer.name).get_weights(), strict=True
        ):
            np.testing.assert_array_equal(a, b)


def test_changed_layer_shows_changed_values(tmp_path, tiny_model):
    path = tmp_path / "changed.h5"
    shutil.copy(tiny_model.with_suffix(".h5"), path)
    with h5py.File(path, "r+") as h5:
        group = h5["mrcnn_mask_conv1"]
        kernel_name = next(
            n
            for n in group.attrs["weight_names"]
            if b"kernel" in (n if isinstance(n, bytes) else n.encode())
        )
        dataset = group[kernel_name]
        changed = dataset[()] + 0.25
        dataset[...] = changed
    model = build_model(tiny_spec(path))
    load_verified(model.keras_model, read_weights_file(path))
    np.testing.assert_array_equal(_layer_values(model.keras_model, "mrcnn_mask_conv1")[0], changed)


def test_removed_layer_is_named(tmp_path, tiny_model):
    path = tmp_path / "removed.h5"
    shutil.copy(tiny_model.with_suffix(".h5"), path)
    remove_layer(path)
    model = build_model(tiny_spec(path))
    with pytest.raises(ModelError, match=r"missing layers: mrcnn_mask_conv1 \(1 of \d+\)"):
        load_verified(model.keras_model, read_weights_file(path))


def test_shape_mismatch_is_reported(tiny_model):
    spec = dataclasses.replace(tiny_spec(tiny_model.with_suffix(".h5")), fc_layers_size=48)
    model = build_model(spec)
    with pytest.raises(ModelError, match="differ in shape"):
        load_verified(model.keras_model, read_weights_file(spec.weights))


def test_outputs_are_in_source_pixels(tiny_model):
    spec = dataclasses.replace(tiny_spec(tiny_model.with_suffix(".h5")), detection_max_instances=8)
    segmenter = Segmenter(spec, score_floor=0.0)
    rng = np.random.default_rng(3)
    bgr = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    rgb = to_model_rgb(bgr, spec.input_size)
    assert rgb.shape == (96, 128, 3)
    candidates = segmenter(rgb, (480, 640))
    assert len(candidates) > 0, "a random model with no floor proposes something"
    assert candidates.shape_hw == (480, 640)
    assert np.all(np.diff(candidates.scores) <= 0)
    assert np.all(candidates.xyxy >= 0)
    assert np.all(candidates.xyxy[:, [0, 2]] <= 640) and np.all(candidates.xyxy[:, [1, 3]] <= 480)
    # Boxes are spread over the source frame, not squeezed into the 128x96 processing size.
    assert candidates.xyxy[:, 2].max() > 128 or candidates.xyxy[:, 3].max() > 96
    assert set(candidates.class_names) <= {"circle", "square", "triangle"}
    detections = unmold(candidates, np.arange(min(2, len(candidates))))
    assert detections.masks.shape == (len(detections), 480, 640)
    for box, mask in zip(detections.xyxy, detections.masks, strict=True):
        ys, xs = np.nonzero(mask)
        if len(xs):
            assert xs.min() >= np.floor(box[0]) - 1 and xs.max() <= np.ceil(box[2]) + 1
            assert ys.min() >= np.floor(box[1]) - 1 and ys.max() <= np.ceil(box[3]) + 1


def test_rejects_non_rgb_input(tiny_model):
    segmenter = Segmenter(tiny_spec(tiny_model.with_suffix(".h5")))
    with pytest.raises(ValueError, match=r"expected \(h, w, 3\) uint8 RGB"):
        segmenter(np.zeros((96, 128), np.uint8), (96, 128))
