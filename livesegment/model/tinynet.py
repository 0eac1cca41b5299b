"""``tinynet``: the small plain-convolution backbone of the bundled shapes model.

PixelLib accepts a callable ``BACKBONE`` plus ``COMPUTE_BACKBONE_SHAPE``; this module provides
both. It imports TensorFlow, so only ``segmenter.py`` and the training code import it.
"""

from __future__ import annotations

import numpy as np

from livesegment.model import tfenv

tfenv.ensure_legacy_keras()

import tf_keras.layers as KL  # noqa: E402

NAME = "tinynet"
STRIDES = (4, 8, 16, 32, 64)
# Output channels of stages 1..5 (strides 2..32).
STAGE_CHANNELS = (16, 32, 48, 64, 96)


def backbone(input_image, stage5: bool = True, train_bn: bool | None = False):
    """Five stride-2 stages of two 3x3 convolutions with batch norm; returns [C1..C5].

    ``train_bn`` is PixelLib's ``TRAIN_BN``: ``True`` forces batch statistics here and in
    PixelLib's heads. Otherwise this backbone's batch norm follows the Keras learning phase
    (batch statistics in ``train_on_batch``, moving statistics in ``predict``) while the heads'
    stays frozen, because this backbone needs batch statistics to learn from scratch. Head batch
    statistics only carry over to inference when the sampled ROIs hold no zero padding, which
    ``training.head_roi_sampling`` ensures.
    """
    training = True if train_bn else None
    x = input_image
    outputs = []
    for stage, channels in enumerate(STAGE_CHANNELS, start=1):
        for conv in (1, 2):
            stride = 2 if conv == 1 else 1
            name = f"tiny_s{stage}_c{conv}"
            x = KL.Conv2D(channels, 3, strides=stride, padding="same", use_bias=False, name=name)(x)
            x = KL.BatchNormalization(name=f"{name}_bn")(x, training=training)
            x = KL.Activation("relu")(x)
        outputs.append(x)
    return outputs


def compute_backbone_shape(image_shape) -> np.ndarray:
    """Feature-map (height, width) per pyramid level, for anchor generation."""
    return np.array(
        [[int(np.ceil(image_shape[0] / s)), int(np.ceil(image_shape[1] / s))] for s in STRIDES]
    )
