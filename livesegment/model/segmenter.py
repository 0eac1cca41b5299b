"""The model edge: the only module that imports TensorFlow and PixelLib (with ``tinynet``).

RGB frames go in; ``Candidates`` (boxes in source pixels) come out; ``detector.Detector`` filters
them and grows the kept ones' masks to full size. PixelLib's ``rois`` (y1, x1, y2, x2) and ``masks``
(H, W, N) layouts never leave this module.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livesegment.errors import ModelError
from livesegment.model import tfenv
from livesegment.model.cards import ModelSpec, WeightsFile, read_weights_file
from livesegment.structures import Candidates

with tfenv.importing_tensorflow():
    from pixellib.instance.config import Config
    from pixellib.instance.mask_rcnn import MaskRCNN, compose_image_meta
    from tf_keras import backend

from livesegment.model import tinynet

log = logging.getLogger(__name__)

# The graph drops candidates under this confidence; the user's threshold is applied at run time
# on what remains, so changing it never needs a rebuild.
SCORE_FLOOR = 0.05
PAD_MULTIPLE = 64


def make_config(
    spec: ModelSpec,
    *,
    mode: str = "inference",
    score_floor: float = SCORE_FLOOR,
    images_per_batch: int = 1,
    **overrides,
) -> Config:
    """A PixelLib Config for ``spec`` (a fresh object: no shared module-level state)."""

    class SpecConfig(Config):
        NAME = spec.name

    config = SpecConfig(
        BACKBONE=tinynet.backbone if spec.backbone == tinynet.NAME else spec.backbone,
        NUM_CLASSES=spec.num_classes,
        class_names=list(spec.class_names),
        IMAGES_PER_GPU=images_per_batch,
        IMAGE_MAX_DIM=spec.input_size,
        IMAGE_MIN_DIM=spec.input_size,
        DETECTION_MIN_CONFIDENCE=score_floor,
        IMAGE_RESIZE_MODE="square",
        GPU_COUNT=1,
    )
    settings = {
        "DETECTION_MAX_INSTANCES": spec.detection_max_instances,
        "POST_NMS_ROIS_INFERENCE": spec.post_nms_rois_inference,
        "TOP_DOWN_PYRAMID_SIZE": spec.pyramid_size,
        "FPN_CLASSIF_FC_LAYERS_SIZE": spec.fc_layers_size,
        "RPN_ANCHOR_SCALES": tuple(spec.rpn_anchor_scales),
        # Inference must use the moving statistics, not the batch's.
        "TRAIN_BN": False if mode == "inference" else None,
    }
    if spec.backbone == tinynet.NAME:
        settings["COMPUTE_BACKBONE_SHAPE"] = tinynet.compute_backbone_shape
    settings.update(overrides)
    for key, value in settings.items():
        setattr(config, key, value)
    return config


def build_model(spec: ModelSpec, *, mode: str = "inference", **config_overrides) -> MaskRCNN:
    """Build PixelLib's Mask R-CNN for ``spec`` with random weights."""
    config = make_config(spec, mode=mode, **config_overrides)
    return MaskRCNN(mode=mode, config=config, model_dir=str(Path.cwd()))


def weighted_layers(keras_model) -> list:
    return [layer for layer in keras_model.layers if layer.weights]


def check_layers(keras_model, weights: WeightsFile) -> None:
    """Every weighted layer of the model must be in the file with the same shapes.

    Raises:
        ModelError: listing missing layers or the first shape mismatches.
    """
    missing, mismatched = [], []
    for layer in weighted_layers(keras_model):
        expected = tuple(tuple(int(d) for d in w.shape) for w in layer.weights)
        found = weights.layers.get(layer.name)
        if found is None:
            missing.append(layer.name)
        elif found != expected:
            mismatched.append(
                f"{layer.name} {list(map(list, found))} in file vs "
                f"{list(map(list, expected))} in model"
            )
    if missing:
        total = len(weighted_layers(keras_model))
        shown = ", ".join(missing[:5]) + (", …" if len(missing) > 5 else "")
        raise ModelError(
            f"{weights.path}: missing layers: {shown} ({len(missing)} of {total}); "
            "the file is not a complete weights file for this model"
        )
    if mismatched:
        shown = "; ".join(mismatched[:2]) + ("; …" if len(mismatched) > 2 else "")
        raise ModelError(
            f"{weights.path}: {len(mismatched)} layers differ in shape from the "
            f"model ({shown}); the card does not describe this file"
        )


def load_verified(keras_model, weights: WeightsFile) -> None:
    """Load every weighted layer from the file and prove every value arrived.

    Each value is read from the file once (one pass, layer by layer as Keras' ``by_name``
    loading pairs them), all are assigned in one backend call, then all are read back from the
    session the model runs in, in one call, and compared with what the file holds. That is the
    same proof as loading with tf-keras and reading the file a second time to compare, at a
    fraction of the start-up time (one read of the file instead of two, two session calls
    instead of one per layer).

    PixelLib's own ``MaskRCNN.load_weights`` is never used: on TF 2.x it writes into another
    Keras session and leaves this model random.

    Raises:
        ModelError: if any layer is missing, mismatched, unreadable or unchanged by loading.
    """
    check_layers(keras_model, weights)
    layers = weighted_layers(keras_model)
    try:
        file_values = weights.read_layers(layer.name for layer in layers)
    except OSError as error:
        raise ModelError(
            f"{weights.path}: weights could not be read "
            f"({str(error).splitlines()[0]}); fetch the file again"
        ) from error
    owners, pairs = [], []
    for layer in layers:
        values = file_values.pop(layer.name)
        if len(values) != len(layer.weights):
            raise ModelError(
                f"{weights.path}: layer {layer.name} holds {len(values)} weights in "
                f"the file but {len(layer.weights)} in the model"
            )
        for variable, value in zip(layer.weights, values, strict=True):
            if tuple(value.shape) != tuple(int(d) for d in variable.shape):
                raise ModelError(
                    f"{weights.path}: layer {layer.name} has shape "
                    f"{list(value.shape)} in the file but "
                    f"{[int(d) for d in variable.shape]} in the model"
                )
            owners.append(layer.name)
            pairs.append((variable, value))
    # Keras runs every variable's random initialiser on its session's first use, 63 M values
    # for ResNet-101 (about 1.5 s), only for them to be overwritten here. Every variable below
    # gets its value from the file, and the read-back proves it did; anything else in the graph
    # is still initialised as usual.
    for variable, _ in pairs:
        variable._keras_initialized = True
    backend.batch_set_value(pairs)
    loaded = backend.batch_get_value([variable for variable, _ in pairs])
    for name, (_, value), model_value in zip(owners, pairs, loaded, strict=True):
        if not np.array_equal(value, model_value):
            raise ModelError(
                f"{weights.path}: layer {name} did not load (model values "
                "differ from the file after loading)"
            )


@dataclass(frozen=True, slots=True)
class _Molded:
    batch: np.ndarray
    meta: np.ndarray
    anchors: np.ndarray
    shape_hw: tuple[int, int]


class Segmenter:
    """PixelLib's Mask R-CNN with verified weights, run on RGB frames.

    Not thread-safe: build and call it from one thread (Keras graph models want the thread
    that built them).

    Args:
        spec: the model.
        score_floor: candidates under this confidence are dropped in the graph.
        weights: the file's description when already read (else read from ``spec.weights``).
        verify: load and verify the weights; False leaves the network random (benchmarks).
        rois, max_instances: the speed preset's ROIs and mask-head slots; None uses the
            spec's ``post_nms_rois_inference`` and ``detection_max_instances``.
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        score_floor: float = SCORE_FLOOR,
        weights: WeightsFile | None = None,
        verify: bool = True,
        rois: int | None = None,
        max_instances: int | None = None,
    ):
        self.spec = spec
        started = time.monotonic()
        # TensorFlow logs on fd 2 while it builds the graph and on the first call.
        self._quiet_next_call = not tfenv.tensorflow_logging_on()
        # The speed preset's parts that live in the graph; the weights do not depend on them.
        sizes = {
            "POST_NMS_ROIS_INFERENCE": rois or spec.post_nms_rois_inference,
            "DETECTION_MAX_INSTANCES": max_instances or spec.detection_max_instances,
        }
        with tfenv.silenced_stderr(self._quiet_next_call):
            self.model = build_model(spec, score_floor=score_floor, **sizes)
            if verify:
                load_verified(
                    self.model.keras_model,
                    weights if weights is not None else read_weights_file(spec.weights),
                )
        self._class_names = np.array(spec.class_names)
        log.info("model %s ready in %.1fs", spec.name, time.monotonic() - started)

    @property
    def input_size(self) -> int:
        return self.spec.input_size

    def _mold(self, rgb: np.ndarray) -> _Molded:
        h, w = rgb.shape[:2]
        padded_h = math.ceil(h / PAD_MULTIPLE) * PAD_MULTIPLE
        padded_w = math.ceil(w / PAD_MULTIPLE) * PAD_MULTIPLE
        batch = np.zeros((1, padded_h, padded_w, 3), np.float32)
        batch[0, :h, :w] = rgb.astype(np.float32) - self.model.config.MEAN_PIXEL
        meta = compose_image_meta(
            0,
            (h, w, 3),
            (padded_h, padded_w, 3),
            (0, 0, h, w),
            1.0,
            np.zeros(self.spec.num_classes, np.int32),
        )
        anchors = self.model.get_anchors((padded_h, padded_w, 3))
        return _Molded(
            batch,
            meta[np.newaxis].astype(np.float32),
            anchors[np.newaxis].astype(np.float32),
            (padded_h, padded_w),
        )

    def __call__(self, rgb: np.ndarray, source_shape_hw: tuple[int, int]) -> Candidates:
        """Run the network.

        Args:
            rgb: (h, w, 3) uint8 RGB frame at processing size (any size works; the long side
                should be ``input_size`` for the accuracy the card reports).
            source_shape_hw: size of the source frame that ``rgb`` was resized from; boxes are
                returned in its pixels.
        """
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected (h, w, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
        molded = self._mold(rgb)
        # PixelLib switches TensorFlow to graph mode on import; predict_on_batch runs the graph.
        with tfenv.silenced_stderr(self._quiet_next_call):
            outputs = self.model.keras_model.predict_on_batch(
                [molded.batch, molded.meta, molded.anchors]
            )
        self._quiet_next_call = False
        detections = outputs[0][0]
        masks = outputs[3][0]
        valid = detections[:, 5] > 0
        detections, masks = detections[valid], masks[valid]
        class_ids = detections[:, 4].astype(np.int32)
        # Normalised (y1, x1, y2, x2) on the padded input -> xyxy in source pixels.
        padded_h, padded_w = molded.shape_hw
        y1 = detections[:, 0] * (padded_h - 1)
        x1 = detections[:, 1] * (padded_w - 1)
        y2 = detections[:, 2] * (padded_h - 1) + 1
        x2 = detections[:, 3] * (padded_w - 1) + 1
        source_h, source_w = source_shape_hw
        scale_y, scale_x = source_h / rgb.shape[0], source_w / rgb.shape[1]
        xyxy = np.stack([x1 * scale_x, y1 * scale_y, x2 * scale_x, y2 * scale_y], axis=1)
        xyxy = np.clip(xyxy, 0, [source_w, source_h, source_w, source_h]).astype(np.float32)
        order = np.argsort(-detections[:, 5], kind="stable")
        mask_probs = (
            masks[np.arange(len(class_ids)), :, :, class_ids]
            if len(class_ids)
            else np.zeros((0, *masks.shape[1:3]), np.float32)
        )
        return Candidates(
            xyxy=xyxy[order],
            scores=detections[order, 5].astype(np.float32),
            class_ids=class_ids[order],
            class_names=self._class_names[class_ids[order]],
            mask_probs=mask_probs[order].astype(np.float32),
            shape_hw=(int(source_h), int(source_w)),
        )
