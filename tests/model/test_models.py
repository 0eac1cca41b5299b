"""Reading weights files and cards without TensorFlow: every broken file names its cause."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from livesegment.errors import ModelError
from livesegment.model.cards import (
    COCO_CLASS_NAMES,
    WeightsFile,
    read_weights_file,
    resolve_model,
    spec_from_card,
    spec_from_weights,
)


def test_reads_layers_and_architecture(tiny_model):
    weights = read_weights_file(tiny_model.with_suffix(".h5"))
    assert weights.backbone == "tinynet"
    assert weights.num_classes == 4
    assert weights.pyramid_size == 16
    assert weights.fc_layers_size == 32
    assert weights.layers["mrcnn_class_logits"][0] == (32, 4)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", r"empty \(0 bytes\)"),
        (np.random.default_rng(1).bytes(4096), "not an HDF5 file"),
        (b"this is a text file\n", "not an HDF5 file"),
    ],
)
def test_broken_files_name_their_cause(tmp_path, content, expected):
    path = tmp_path / "broken.h5"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=expected):
        read_weights_file(path)


def test_truncated_file(tmp_path, tiny_model):
    data = tiny_model.with_suffix(".h5").read_bytes()
    path = tmp_path / "truncated.h5"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="truncated"):
        read_weights_file(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        read_weights_file(tmp_path / "nope.h5")
    with pytest.raises(ModelError, match="folder"):
        read_weights_file(tmp_path)


def test_hdf5_without_keras_layers(tmp_path):
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as h5:
        h5["x"] = np.arange(3)
    with pytest.raises(ModelError, match="no Keras layer weights"):
        read_weights_file(path)


def test_coco_sized_file_gets_coco_names(tmp_path):
    weights = WeightsFile(
        tmp_path / "coco.h5",
        {
            "res4a_branch2a": ((1, 1, 1024, 256), (256,)),
            "mrcnn_class_logits": ((1024, 81), (81,)),
        },
    )
    spec = spec_from_weights(weights)
    assert spec.backbone == "resnet50"
    assert spec.class_names == COCO_CLASS_NAMES
    with pytest.raises(ModelError, match=r"has 81 classes \(BG \+ 80\) but 2 class names"):
        spec_from_weights(weights, ("BG", "a", "b"))


def test_resnet101_detected_by_layer_names(tmp_path):
    weights = WeightsFile(
        tmp_path / "r101.h5",
        {
            "res4a_branch2a": ((1, 1, 1024, 256), (256,)),
            "res4w_branch2a": ((1, 1, 1024, 256), (256,)),
            "mrcnn_class_logits": ((1024, 3), (3,)),
        },
    )
    spec = spec_from_weights(weights)
    assert spec.backbone == "resnet101"
    assert spec.class_names == ("BG", "class_1", "class_2")


def test_card_and_file_class_count_disagree(tmp_path, tiny_model):
    card = json.loads(tiny_model.read_text())
    card["class_names"] = ["BG", *[f"c{i}" for i in range(80)]]
    shutil.copy(tiny_model.with_suffix(".h5"), tmp_path / "tiny.h5")
    (tmp_path / "tiny.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match=r"has 4 classes \(BG \+ 3\) but the card lists 80"):
        resolve_model(str(tmp_path / "tiny.h5"))


def test_card_roundtrip(tiny_model):
    spec = spec_from_card(tiny_model)
    assert spec.class_names == ("BG", "circle", "square", "triangle")
    assert spec.weights == tiny_model.with_suffix(".h5")
    assert spec.rpn_anchor_scales == (8, 16, 32, 64, 128)
    assert resolve_model(str(tiny_model.with_suffix(".h5"))) == spec


def test_unknown_model_name_lists_known():
    with pytest.raises(ModelError, match="unknown model 'nonexistent'; known models:"):
        resolve_model("nonexistent")
