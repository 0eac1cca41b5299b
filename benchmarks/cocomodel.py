"""A COCO-shaped Mask R-CNN (ResNet-101, 81 classes) with random weights, for timing.

Compute does not depend on the values, so random weights time the real model. Raw random
weights make a poor benchmark though: the classifier saturates and ~90 objects per frame pass
0.7, so drawing and RLE-encoding would dominate. The background logit's bias is raised until a
real frame has 5-10 detections at PixelLib's confidence (0.7), as a trained COCO model has on a
street scene. The file has the layer names and shapes of PixelLib's ``mask_rcnn_coco.h5``, so
both livesegment and PixelLib load it.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from livesegment.model.cards import COCO_CLASS_NAMES, ModelSpec

log = logging.getLogger("benchmarks.cocomodel")

# PixelLib's instance_segmentation keeps detections at or above this confidence.
PIXELLIB_CONFIDENCE = 0.7
TARGET_DETECTIONS = (5, 10)


def coco_spec(weights: Path) -> ModelSpec:
    """The architecture of PixelLib's COCO model (its ``coco_config``)."""
    return ModelSpec(
        name=weights.stem,
        weights=weights,
        backbone="resnet101",
        class_names=COCO_CLASS_NAMES,
        input_size=1024,
        default_threshold=PIXELLIB_CONFIDENCE,
    )


def _random_value(name: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """What Keras' default initialisers give: Glorot-uniform kernels, zero biases, identity
    batch norm."""
    leaf = name.rsplit("/", 1)[-1].split(":")[0]
    if leaf in ("gamma", "moving_variance"):
        return np.ones(shape, np.float32)
    if leaf in ("beta", "bias", "moving_mean"):
        return np.zeros(shape, np.float32)
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape).astype(np.float32)


def _count_at(segmenter, frames_rgb: list[np.ndarray], bias: float, layer) -> float:
    kernel, biases = layer.get_weights()
    biases = biases.copy()
    biases[0] = bias
    layer.set_weights([kernel, biases])
    counts = [
        int((segmenter(rgb, rgb.shape[:2]).scores >= PIXELLIB_CONFIDENCE).sum())
        for rgb in frames_rgb
    ]
    return float(np.mean(counts))


def make_coco_weights(path: Path, frames_rgb: list[np.ndarray], seed: int = 14) -> dict:
    """Write random COCO-shaped weights to ``path`` (an ``.h5``) and a ``.json`` note beside
    it (not a model card: livesegment treats the file as a cardless 81-class file, as it would
    PixelLib's download).

    Args:
        frames_rgb: (h, w, 3) uint8 RGB frames at 1024 px on which the background bias is
            calibrated to 5-10 detections per frame at confidence 0.7.
    """
    from livesegment.model.segmenter import Segmenter
    from livesegment.model.tfenv import importing_tensorflow

    with importing_tensorflow():
        import tf_keras

    started = time.monotonic()
    segmenter = Segmenter(coco_spec(path), verify=False)
    keras_model = segmenter.model.keras_model
    rng = np.random.default_rng(seed)
    weights = [w for layer in keras_model.layers for w in layer.weights]
    tf_keras.backend.batch_set_value(
        [(w, _random_value(w.name, tuple(int(d) for d in w.shape), rng)) for w in weights]
    )
    logits = keras_model.get_layer("mrcnn_class_logits")
    # Bisect the background bias: more bias, fewer objects pass the confidence.
    low, high = 0.0, 64.0
    bias, count = high, _count_at(segmenter, frames_rgb, high, logits)
    for _ in range(12):
        if TARGET_DETECTIONS[0] <= count <= TARGET_DETECTIONS[1]:
            break
        if count > TARGET_DETECTIONS[1]:
            low = bias
        else:
            high = bias
        bias = (low + high) / 2
        count = _count_at(segmenter, frames_rgb, bias, logits)
        log.info("background bias %.3f: %.1f detections per frame", bias, count)
    keras_model.save_weights(str(path))
    note = {
        "seed": seed,
        "background_bias": bias,
        "detections_per_frame": count,
        "confidence": PIXELLIB_CONFIDENCE,
        "calibration_frames": len(frames_rgb),
        "seconds": round(time.monotonic() - started, 1),
    }
    path.with_suffix(".note.json").write_text(json.dumps(note, indent=2) + "\n")
    return note
