"""Train the bundled ``shapes`` Mask R-CNN on freshly rendered scenes.

    uv run python -m livesegment.shapes train --steps 1200 --seed 1 --out models/shapes.h5

PixelLib's own training path cannot be used as is: its data generator resizes bool masks with a
scikit-image call that current releases reject, and its ``compile`` builds a new-style optimizer
that TF1 graph mode (which PixelLib switches on at import) cannot run. So this module renders
batches itself, feeds PixelLib's training graph with them, and adds the five Mask R-CNN losses
plus weight decay exactly as ``MaskRCNN.compile`` does, under a legacy Adam.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import platform
import shlex
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import click
import cv2
import numpy as np

from livesegment.model import tfenv

with tfenv.importing_tensorflow():
    import tensorflow as tf
    import tf_keras
    from pixellib.instance import mask_rcnn as mrcnn_model
    from pixellib.instance import utils as mrcnn_utils
    from pixellib.instance.mask_rcnn import build_rpn_targets, compose_image_meta

from livesegment import shapes
from livesegment.errors import UsageError
from livesegment.model import segmenter, tinynet
from livesegment.model.cards import ModelSpec, sha256_of, write_card
from livesegment.model.detector import resize_long_side
from livesegment.paths import check_no_overwrite

log = logging.getLogger(__name__)

LOSS_NAMES = (
    "rpn_class_loss",
    "rpn_bbox_loss",
    "mrcnn_class_loss",
    "mrcnn_bbox_loss",
    "mrcnn_mask_loss",
)

# Source frame sizes to render (height, width). Mostly the 640x480 the model is judged on, plus
# other aspects so the padding below a frame is not the only layout it ever sees.
SOURCE_SHAPES_HW = ((480, 640),) * 6 + ((360, 640), (640, 480), (480, 480), (600, 800))
# Shape sizes in pixels of a 640-wide source; scaled with the source's long side.
SIZE_PX_AT_640 = (20.0, 180.0)


def shapes_spec(
    weights: Path,
    *,
    input_size: int = 256,
    default_threshold: float = 0.7,
    sha256: str | None = None,
) -> ModelSpec:
    """The shapes model: sized for CPU speed on 1-4 shapes of 15-70 px at processing size."""
    scale = input_size / 256
    return ModelSpec(
        name="shapes",
        weights=Path(weights),
        backbone=tinynet.NAME,
        class_names=shapes.CLASS_NAMES,
        input_size=input_size,
        # Few objects per frame: small head budgets keep inference fast on a CPU.
        detection_max_instances=10,
        post_nms_rois_inference=200,
        pyramid_size=64,
        fc_layers_size=256,
        rpn_anchor_scales=tuple(round(s * scale) for s in (12, 24, 48, 96, 192)),
        default_threshold=default_threshold,
        sha256=sha256,
    )


@dataclass(frozen=True, slots=True)
class TrainSettings:
    """Everything that changes what a training run computes (recorded in the model card)."""

    steps: int
    seed: int
    batch: int = 4
    lr: float = 1e-3
    # The last ``lr_drop_fraction`` of the steps run at ``lr * lr_drop``.
    lr_drop_fraction: float = 0.2
    lr_drop: float = 0.1
    train_rois_per_image: int = 64
    # PixelLib takes (1 / ratio - 1) negatives per positive ROI, so a lower ratio shows the
    # classifier more background per object.
    roi_positive_ratio: float = 0.25
    checkpoint_every: int = 100
    log_every: int = 10
    # "frozen": PixelLib's head batch norm keeps its stored statistics (tinynet's own batch
    # norm still trains). "batch": heads normalise by batch statistics, as the shipped model
    # was trained; that needs head_roi_sampling's padding-free ROIs (see tinynet.backbone).
    head_bn: str = "frozen"
    # Weights (by layer name) to start from instead of random ones.
    init_weights: str | None = None
    # The classifier's loss weight. Its gradient is the only thing that teaches the shared
    # features what tells a square from a circle; RPN and mask losses only need edges.
    class_loss_weight: float = 1.0

    def lr_at(self, step: int) -> float:
        drop_at = math.ceil(self.steps * (1.0 - self.lr_drop_fraction))
        return self.lr * (self.lr_drop if step >= drop_at else 1.0)


def train_overrides(settings: TrainSettings) -> dict[str, object]:
    """Config overrides for the training graph (inference uses the spec alone)."""
    return {
        # tinynet's batch norm trains either way (frozen random BN learned nothing in a
        # prototype); this flag decides PixelLib's head batch norm only.
        "TRAIN_BN": settings.head_bn == "batch",
        # The mask head runs on every sampled ROI and dominates the step time.
        "TRAIN_ROIS_PER_IMAGE": settings.train_rois_per_image,
        "ROI_POSITIVE_RATIO": settings.roi_positive_ratio,
        "PRE_NMS_LIMIT": 2000,
        "POST_NMS_ROIS_TRAINING": 400,
        "MAX_GT_INSTANCES": 8,
        "LEARNING_RATE": settings.lr,
        "LOSS_WEIGHTS": dict.fromkeys(LOSS_NAMES, 1.0)
        | {"mrcnn_class_loss": settings.class_loss_weight},
    }


@dataclass(frozen=True, slots=True)
class _Sample:
    image: np.ndarray  # (S, S, 3) float32, mean-subtracted, content top-left
    meta: np.ndarray
    class_ids: np.ndarray  # (N,) int32
    boxes: np.ndarray  # (N, 4) int32 y1, x1, y2, x2 (exclusive) at processing size
    mini_masks: np.ndarray  # (h, w, N) bool, each mask cropped to its box


def render_training_scene(
    rng: np.random.Generator, input_size: int
) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """A random scene at processing size, resized exactly as live frames are.

    Returns:
        (h, w, 3) uint8 RGB with long side ``input_size``, and (class name, (h, w) bool mask)
        per object still visible after resizing.
    """
    source_hw = SOURCE_SHAPES_HW[rng.integers(len(SOURCE_SHAPES_HW))]
    size_scale = max(source_hw) / 640
    scene = shapes.render_scene(
        rng,
        shape_hw=source_hw,
        n_shapes=(0, 4),
        size_px=(SIZE_PX_AT_640[0] * size_scale, SIZE_PX_AT_640[1] * size_scale),
    )
    return resize_scene(scene, input_size)


def resize_scene(
    scene: shapes.Scene, input_size: int
) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """A source-size scene at processing size, resized by the live pipeline's own function
    (``detector.resize_long_side``: INTER_AREA when shrinking); masks follow, nearest-neighbour.
    """
    rgb = resize_long_side(scene.rgb, input_size)
    size_wh = (rgb.shape[1], rgb.shape[0])
    objects = []
    for obj in scene.objects:
        mask = cv2.resize(
            obj.mask.astype(np.uint8), size_wh, interpolation=cv2.INTER_NEAREST
        ).astype(bool)
        if mask.sum() >= 4:
            objects.append((obj.class_name, mask))
    return rgb, objects


def make_sample(rng: np.random.Generator, config, class_names: Sequence[str]) -> _Sample:
    """One training image with its ground truth, in the layout PixelLib's graph expects."""
    size = int(config.IMAGE_SHAPE[0])
    rgb, objects = render_training_scene(rng, size)
    h, w = rgb.shape[:2]
    image = np.zeros((size, size, 3), np.float32)
    # Padding is zero after mean subtraction, as Segmenter pads at inference.
    image[:h, :w] = rgb.astype(np.float32) - config.MEAN_PIXEL
    objects = objects[: config.MAX_GT_INSTANCES]
    mini_h, mini_w = config.MINI_MASK_SHAPE
    class_ids = np.zeros(len(objects), np.int32)
    boxes = np.zeros((len(objects), 4), np.int32)
    mini_masks = np.zeros((mini_h, mini_w, len(objects)), bool)
    for i, (name, mask) in enumerate(objects):
        ys, xs = np.nonzero(mask)
        y1, x1, y2, x2 = ys.min(), xs.min(), ys.max() + 1, xs.max() + 1
        class_ids[i] = class_names.index(name)
        boxes[i] = (y1, x1, y2, x2)
        crop = mask[y1:y2, x1:x2].astype(np.float32)
        mini_masks[:, :, i] = (
            cv2.resize(crop, (mini_w, mini_h), interpolation=cv2.INTER_LINEAR) >= 0.5
        )
    # Every class is active: PixelLib's class loss ignores predictions of inactive classes.
    meta = compose_image_meta(
        0, (h, w, 3), (size, size, 3), (0, 0, h, w), 1.0, np.ones(len(class_names), np.int32)
    )
    return _Sample(image, meta, class_ids, boxes, mini_masks)


def rpn_targets(anchors_px: np.ndarray, sample: _Sample, config) -> tuple[np.ndarray, np.ndarray]:
    """RPN match and deltas; an empty frame gets a balanced set of negative anchors only."""
    if len(sample.class_ids):
        return build_rpn_targets(
            sample.image.shape, anchors_px, sample.class_ids, sample.boxes, config
        )
    # build_rpn_targets takes argmax over zero GT boxes and fails on empty frames.
    match = np.zeros(len(anchors_px), np.int32)
    negatives = np.random.choice(
        len(anchors_px), config.RPN_TRAIN_ANCHORS_PER_IMAGE // 2, replace=False
    )
    match[negatives] = -1
    return match, np.zeros((config.RPN_TRAIN_ANCHORS_PER_IMAGE, 4))


def pixel_anchors(config) -> np.ndarray:
    """The training graph's anchors, in pixels, in the order of its RPN outputs."""
    return mrcnn_utils.generate_pyramid_anchors(
        config.RPN_ANCHOR_SCALES,
        config.RPN_ANCHOR_RATIOS,
        tinynet.compute_backbone_shape(config.IMAGE_SHAPE),
        config.BACKBONE_STRIDES,
        config.RPN_ANCHOR_STRIDE,
    )


def make_batch(
    rng: np.random.Generator, config, anchors_px: np.ndarray, class_names: Sequence[str]
) -> list[np.ndarray]:
    """Inputs of PixelLib's training model for ``config.BATCH_SIZE`` fresh scenes."""
    n = config.BATCH_SIZE
    size = int(config.IMAGE_SHAPE[0])
    max_gt = config.MAX_GT_INSTANCES
    images = np.zeros((n, size, size, 3), np.float32)
    metas = np.zeros((n, config.IMAGE_META_SIZE), np.float32)
    rpn_match = np.zeros((n, len(anchors_px), 1), np.int32)
    rpn_bbox = np.zeros((n, config.RPN_TRAIN_ANCHORS_PER_IMAGE, 4), np.float32)
    gt_class_ids = np.zeros((n, max_gt), np.int32)
    gt_boxes = np.zeros((n, max_gt, 4), np.float32)
    gt_masks = np.zeros((n, *config.MINI_MASK_SHAPE, max_gt), bool)
    for b in range(n):
        sample = make_sample(rng, config, class_names)
        match, deltas = rpn_targets(anchors_px, sample, config)
        k = len(sample.class_ids)
        images[b], metas[b] = sample.image, sample.meta
        rpn_match[b, :, 0], rpn_bbox[b] = match, deltas
        gt_class_ids[b, :k], gt_boxes[b, :k] = sample.class_ids, sample.boxes
        gt_masks[b, :, :, :k] = sample.mini_masks
    return [images, metas, rpn_match, rpn_bbox, gt_class_ids, gt_boxes, gt_masks]


@contextlib.contextmanager
def head_roi_sampling():
    """While building the training graph, sample the heads' ROIs as Fast R-CNN does.

    PixelLib samples them from the RPN's proposals alone, takes negatives in proportion to the
    positives and pads the rest with all-zero boxes. Trained from scratch, the RPN proposes
    nothing that overlaps an object for hundreds of steps, so the heads saw almost no positives,
    hardly any background (none at all on empty frames) and mostly padding; the classifier's
    scores never separated (a first shipped model scored background 0.3 and objects 0.4-0.6),
    and batch norm in the heads normalised by statistics of padding. Here the truth boxes join
    the proposals, so every object gives positives from step one, and the padding is replaced
    by more background proposals.
    """
    original = mrcnn_model.detection_targets_graph

    def detection_targets_graph(proposals, gt_class_ids, gt_boxes, gt_masks, config):
        # All-zero (padding) rows of either input are trimmed by PixelLib's own graph.
        rois, class_ids, deltas, masks = original(
            tf.concat([gt_boxes, proposals], axis=0), gt_class_ids, gt_boxes, gt_masks, config
        )
        total = config.TRAIN_ROIS_PER_IMAGE
        real_proposals, _ = mrcnn_model.trim_zeros_graph(proposals, name="trim_background")
        real_boxes, _ = mrcnn_model.trim_zeros_graph(gt_boxes, name="trim_truth")
        # Without truth boxes the max over an empty axis is -inf: every proposal is background.
        best_iou = tf.reduce_max(mrcnn_model.overlaps_graph(real_proposals, real_boxes), axis=1)
        background = tf.gather(real_proposals, tf.where(best_iou < 0.5)[:, 0])
        # PixelLib puts its padding after the sampled ROIs; its targets there are already
        # zero (class 0 = background, no box delta, no mask loss).
        n_sampled = tf.reduce_sum(tf.cast(tf.reduce_any(tf.not_equal(rois, 0.0), axis=1), tf.int32))
        extra = tf.random.shuffle(background)[: total - n_sampled]
        padding = tf.zeros([total - n_sampled - tf.shape(extra)[0], 4], rois.dtype)
        rois = tf.reshape(tf.concat([rois[:n_sampled], extra, padding], axis=0), [total, 4])
        return rois, class_ids, deltas, masks

    mrcnn_model.detection_targets_graph = detection_targets_graph
    try:
        yield
    finally:
        mrcnn_model.detection_targets_graph = original


def compile_for_training(model, lr: float):
    """Add the losses and weight decay as ``MaskRCNN.compile`` does, with a legacy Adam."""
    keras_model, config = model.keras_model, model.config
    for name in LOSS_NAMES:
        output = keras_model.get_layer(name).output
        keras_model.add_loss(
            tf.reduce_mean(output, keepdims=True) * config.LOSS_WEIGHTS.get(name, 1.0)
        )
    decay = [
        tf_keras.regularizers.l2(config.WEIGHT_DECAY)(w) / tf.cast(tf.size(w), tf.float32)
        for w in keras_model.trainable_weights
        if "gamma" not in w.name and "beta" not in w.name
    ]
    keras_model.add_loss(tf.add_n(decay))
    optimizer = tf_keras.optimizers.legacy.Adam(
        learning_rate=lr, clipnorm=config.GRADIENT_CLIP_NORM
    )
    keras_model.compile(optimizer=optimizer, loss=[None] * len(keras_model.outputs))
    for name in LOSS_NAMES:
        # Logged unweighted, so runs with different loss weights compare.
        keras_model.add_metric(
            tf.reduce_mean(keras_model.get_layer(name).output), name=name, aggregation="mean"
        )
    return optimizer


def machine_info() -> dict[str, object]:
    return {
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
    }


@dataclass(frozen=True, slots=True)
class TrainResult:
    spec: ModelSpec
    steps: int
    wall_time_s: float
    last_losses: dict[str, float]


def checkpoint_path(folder: Path, name: str, step: int) -> Path:
    return folder / f"{name}_step{step}.h5"


def train(
    spec: ModelSpec,
    settings: TrainSettings,
    out: Path,
    *,
    checkpoint_dir: Path | None = None,
    on_log: Callable[[str], None] = print,
) -> TrainResult:
    """Train from scratch and write ``out`` (weights of the training model, loadable by name).

    Checkpoints ``<checkpoint_dir>/shapes_step<N>.h5`` every ``settings.checkpoint_every``
    steps, so a run cut short still leaves usable weights.
    """
    np.random.seed(settings.seed)  # PixelLib's anchor sampling uses the global generator
    tf.compat.v1.set_random_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    with head_roi_sampling():
        model = segmenter.build_model(
            spec, mode="training", images_per_batch=settings.batch, **train_overrides(settings)
        )
    optimizer = compile_for_training(model, settings.lr)
    if settings.init_weights:
        model.keras_model.load_weights(settings.init_weights, by_name=True)
        on_log(f"started from {settings.init_weights}")
    config = model.config
    anchors_px = pixel_anchors(config)
    metric_names = list(model.keras_model.metrics_names)
    out.parent.mkdir(parents=True, exist_ok=True)
    if checkpoint_dir is not None:
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    window: list[np.ndarray] = []
    last: dict[str, float] = {}
    lr = settings.lr
    for step in range(1, settings.steps + 1):
        if settings.lr_at(step - 1) != lr:
            lr = settings.lr_at(step - 1)
            tf_keras.backend.set_value(optimizer.lr, lr)
            on_log(f"step {step}: learning rate -> {lr:g}")
        inputs = make_batch(rng, config, anchors_px, spec.class_names)
        with warnings.catch_warnings():
            # tf-keras's own graph-mode train function reads its deprecated `state_updates`.
            warnings.filterwarnings("ignore", message="`Model.state_updates`", category=UserWarning)
            values = np.atleast_1d(model.keras_model.train_on_batch(inputs, []))
        if not np.all(np.isfinite(values)):
            raise FloatingPointError(
                f"step {step}: non-finite loss "
                f"{dict(zip(metric_names, values.tolist(), strict=False))}"
            )
        window.append(values)
        if step % settings.log_every == 0 or step == settings.steps:
            mean = np.mean(window, axis=0)
            window = []
            last = {name: float(v) for name, v in zip(metric_names, mean, strict=False)}
            elapsed = time.monotonic() - started
            on_log(
                f"step {step}/{settings.steps} {elapsed:.0f}s "
                f"({elapsed / step:.2f}s/step) lr {lr:g} "
                + " ".join(f"{k.replace('_loss', '')} {v:.3f}" for k, v in last.items())
            )
        if (
            checkpoint_dir is not None
            and step % settings.checkpoint_every == 0
            and step < settings.steps
        ):
            path = checkpoint_path(checkpoint_dir, spec.name, step)
            model.keras_model.save_weights(str(path))
            on_log(f"checkpoint {path}")
    model.keras_model.save_weights(str(out))
    wall = time.monotonic() - started
    return TrainResult(
        replace(spec, weights=out, sha256=sha256_of(out)), settings.steps, wall, last
    )


def training_record(settings: TrainSettings, result: TrainResult, command: str) -> dict:
    """The card's ``training`` field."""
    return {
        "command": command,
        **asdict(settings),
        "optimizer": "tf_keras.optimizers.legacy.Adam (clipnorm 5)",
        "input_size": result.spec.input_size,
        "overrides": train_overrides(settings),
        "wall_time_s": round(result.wall_time_s, 1),
        "final_losses": {k: round(v, 4) for k, v in result.last_losses.items()},
        "machine": machine_info(),
    }


_DEFAULTS = TrainSettings(steps=1, seed=0)


def check_paths(
    out: Path,
    card: Path,
    log_file: Path,
    init_weights: str | None,
    checkpoint_dir: Path,
    steps: int,
    checkpoint_every: int,
) -> None:
    """Refuse, before training starts, to write the weights, card, log or a checkpoint over
    ``--init-weights`` (resuming from a checkpoint of the same folder would overwrite it) or
    one output over another.

    Raises:
        click.UsageError: naming both.
    """
    inputs = [("--init-weights", None if init_weights is None else Path(init_weights))]
    checkpoints = [
        ("a checkpoint", checkpoint_path(checkpoint_dir, "shapes", step))
        for step in range(checkpoint_every, steps, checkpoint_every)
    ]
    try:
        check_no_overwrite(
            inputs, [("--out", out), ("the model card", card), ("--log-file", log_file)]
        )
        if init_weights is not None:
            check_no_overwrite(inputs, checkpoints)
    except UsageError as error:
        raise click.UsageError(str(error)) from None


@click.command()
@click.option("--steps", type=click.IntRange(min=1), default=1200, show_default=True)
@click.option(
    "--seed",
    type=int,
    default=1,
    show_default=True,
    help="Training seed; evaluation uses seeds 999 and 12345, never train with them.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("models/shapes.h5"),
    show_default=True,
)
@click.option("--batch", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True)
@click.option(
    "--lr-drop-fraction",
    type=click.FloatRange(0, 1),
    show_default=True,
    default=_DEFAULTS.lr_drop_fraction,
    help="The last share of the steps runs at a tenth of --lr (0: never).",
)
@click.option("--input-size", type=click.IntRange(min=64), default=256, show_default=True)
@click.option(
    "--checkpoint-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/tmp/shapes_train"),
    show_default=True,
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also append progress lines here (default: <checkpoint-dir>/train.log).",
)
@click.option("--log-every", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=100, show_default=True)
@click.option(
    "--head-bn",
    type=click.Choice(["frozen", "batch"]),
    default="frozen",
    show_default=True,
    help="Batch norm mode of PixelLib's heads while training.",
)
@click.option(
    "--init-weights",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Start from these weights (loaded by layer name).",
)
@click.option(
    "--train-rois",
    type=click.IntRange(min=4),
    default=_DEFAULTS.train_rois_per_image,
    show_default=True,
    help="ROIs per image sampled for the heads.",
)
@click.option(
    "--positive-ratio",
    type=click.FloatRange(min=0.05, max=1.0),
    default=_DEFAULTS.roi_positive_ratio,
    show_default=True,
    help="Share of positive ROIs among those sampled.",
)
@click.option(
    "--class-loss-weight",
    type=click.FloatRange(min=0, min_open=True),
    default=_DEFAULTS.class_loss_weight,
    show_default=True,
    help="Weight of the classifier's loss (the others have weight 1).",
)
def main(
    *,
    steps: int,
    seed: int,
    out: Path,
    batch: int,
    lr: float,
    lr_drop_fraction: float,
    input_size: int,
    checkpoint_dir: Path,
    log_file: Path | None,
    log_every: int,
    checkpoint_every: int,
    head_bn: str,
    init_weights: str | None,
    train_rois: int,
    positive_ratio: float,
    class_loss_weight: float,
) -> None:
    """Train the shapes Mask R-CNN and write its weights and model card."""
    if input_size % segmenter.PAD_MULTIPLE:
        raise click.BadParameter(
            f"must be a multiple of {segmenter.PAD_MULTIPLE}", param_hint="--input-size"
        )
    if seed in (999, 12345):
        raise click.BadParameter(
            "seeds 999 and 12345 are reserved for evaluation", param_hint="--seed"
        )
    log_file = log_file or checkpoint_dir / "train.log"
    card = out.with_suffix(".json")
    check_paths(out, card, log_file, init_weights, checkpoint_dir, steps, checkpoint_every)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    arguments = sys.argv[1:]
    if arguments[:1] == ["train"]:  # run through ``python -m livesegment.shapes``
        arguments = arguments[1:]
    command = "uv run python -m livesegment.shapes train " + shlex.join(arguments)

    def echo(line: str) -> None:
        click.echo(line)
        with log_file.open("a") as handle:
            handle.write(line + "\n")

    settings = TrainSettings(
        steps=steps,
        seed=seed,
        batch=batch,
        lr=lr,
        lr_drop_fraction=lr_drop_fraction,
        log_every=log_every,
        checkpoint_every=checkpoint_every,
        head_bn=head_bn,
        init_weights=init_weights,
        train_rois_per_image=train_rois,
        roi_positive_ratio=positive_ratio,
        class_loss_weight=class_loss_weight,
    )
    echo(f"training: {command}")
    echo(json.dumps(machine_info()))
    spec = shapes_spec(out, input_size=input_size)
    result = train(spec, settings, out, checkpoint_dir=checkpoint_dir, on_log=echo)
    write_card(result.spec, card, training=training_record(settings, result, command), metrics=None)
    echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) and {card} in {result.wall_time_s:.0f}s")


if __name__ == "__main__":
    main()
