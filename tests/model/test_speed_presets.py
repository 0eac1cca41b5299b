"""Speed presets: every card lists accurate, balanced and fast, a model without a card's presets
runs balanced, and the preset asked for is the one PixelLib's graph is built with."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import BUNDLED_CARD

from livesegment.errors import ModelError, UsageError
from livesegment.model.cards import (
    COCO_CLASS_NAMES,
    GENERIC_PRESETS,
    SPEEDS,
    ModelSpec,
    SpeedPreset,
    read_card,
    spec_from_card,
)


def test_bundled_card_lists_the_three_presets_with_what_justifies_them():
    card = read_card(BUNDLED_CARD)
    spec = spec_from_card(BUNDLED_CARD)
    assert set(card["presets"]) == set(SPEEDS)
    accurate = spec.preset("accurate")
    # accurate is the configuration the card's metrics were measured with.
    assert accurate == SpeedPreset(
        spec.input_size, spec.post_nms_rois_inference, spec.detection_max_instances
    )
    for speed in ("balanced", "fast"):
        preset = spec.preset(speed)
        values, full = preset.to_dict(), accurate.to_dict()
        assert all(values[k] <= full[k] for k in values) and values != full, speed
    measured = card["presets_measured"]
    assert measured["balanced"]["kept_of_accurate"] >= 0.98
    assert measured["fast"]["kept_of_accurate"] >= 0.90
    assert "command" in measured


def test_a_model_without_card_presets_runs_balanced_and_accurate_is_its_own_configuration():
    # What spec_from_weights gives for PixelLib's COCO file.
    spec = ModelSpec(
        name="coco",
        weights=Path("mask_rcnn_coco.h5"),
        backbone="resnet101",
        class_names=COCO_CLASS_NAMES,
    )
    assert spec.preset() == spec.preset("balanced") == GENERIC_PRESETS["balanced"]
    assert spec.preset("fast") == GENERIC_PRESETS["fast"]
    assert spec.preset("accurate") == SpeedPreset(1024, 1000, 100)  # PixelLib's own
    assert spec.speed_settings("fast", rois=77) == SpeedPreset(
        384, 77, GENERIC_PRESETS["fast"].max_instances
    )
    with pytest.raises(UsageError, match="unknown speed preset") as caught:
        spec.preset("turbo")
    assert caught.value.parameter == "speed"


def test_card_without_presets_defaults_to_balanced_capped_by_its_own_size(tmp_path):
    card = tmp_path / "small.json"
    card.write_text(
        json.dumps(
            {
                "class_names": ["BG", "cat"],
                "architecture": {
                    "backbone": "resnet50",
                    "input_size": 448,
                    "post_nms_rois_inference": 200,
                    "detection_max_instances": 50,
                },
            }
        )
    )
    spec = spec_from_card(card)
    assert spec.preset() == SpeedPreset(448, 200, 30)
    assert spec.preset("accurate") == SpeedPreset(448, 200, 50)
    assert spec.preset("fast") == SpeedPreset(384, 150, 10)


@pytest.mark.parametrize(
    "field",
    [
        {"presets": {"turbo": {"max_size": 64, "rois": 1, "max_instances": 1}}},
        {"presets": {"fast": {"max_size": 0, "rois": 1, "max_instances": 1}}},
        {"presets": {"fast": {"size": 64}}},
        {"default_speed": "turbo"},
    ],
)
def test_card_with_a_bad_preset_is_refused(tmp_path, field):
    card = tmp_path / "bad.json"
    card.write_text(json.dumps({"class_names": ["BG", "cat"], **field}))
    with pytest.raises(ModelError, match="bad field"):
        spec_from_card(card)


@pytest.mark.model
def test_speed_reaches_the_network_graph():
    from livesegment.model.detector import Detector

    spec = spec_from_card(BUNDLED_CARD)
    fast = spec.preset("fast")
    detector = Detector.load(spec, speed="fast")
    config = detector.engine.model.config
    assert (detector.max_size, config.POST_NMS_ROIS_INFERENCE, config.DETECTION_MAX_INSTANCES) == (
        fast.max_size,
        fast.rois,
        fast.max_instances,
    )
    # The graph itself is sized by the preset: proposals and detection slots.
    outputs = {
        tensor.name.split("/")[0]: tensor for tensor in detector.engine.model.keras_model.outputs
    }
    assert int(outputs["mrcnn_detection"].shape[1]) == fast.max_instances
    assert int(outputs["ROI"].shape[1]) == fast.rois
    rgb = np.zeros((480, 640, 3), np.uint8)
    assert len(detector(rgb, threshold=0.0)) <= fast.max_instances

    custom = Detector.load(spec, speed="fast", rois=37, max_instances=3, max_size=128)
    config = custom.engine.model.config
    assert (custom.max_size, config.POST_NMS_ROIS_INFERENCE, config.DETECTION_MAX_INSTANCES) == (
        128,
        37,
        3,
    )
