"""Model descriptions: model cards, reading what a weights file holds, resolving ``--model``.

No TensorFlow here: a weights file is inspected with h5py alone, so a wrong or broken file is
reported before seconds are spent building the network.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from livesegment.errors import ModelError, UsageError
from livesegment.model.resources import data_dir

BUNDLED_DIR = data_dir("bundled_models", "models")
DEFAULT_MODEL = "shapes"

COCO_CLASS_NAMES = (
    "BG",
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
)

BACKBONES = ("resnet50", "resnet101", "tinynet")

SPEEDS = ("accurate", "balanced", "fast")
DEFAULT_SPEED = "balanced"


@dataclass(frozen=True, slots=True)
class SpeedPreset:
    """How much of the network runs per frame. None of it changes the weights.

    Attributes:
        max_size: long side, in pixels, of the frame the network sees (backbone, RPN).
        rois: region proposals the classifier head scores (``POST_NMS_ROIS_INFERENCE``).
        max_instances: mask-head slots, the most objects one frame can hold
            (``DETECTION_MAX_INSTANCES``); the mask head runs on every slot, filled or not.
    """

    max_size: int
    rois: int
    max_instances: int

    def __post_init__(self) -> None:
        if min(self.max_size, self.rois, self.max_instances) < 1:
            raise ValueError(f"speed preset values must be positive, got {self.to_dict()}")

    def to_dict(self) -> dict[str, int]:
        return {"max_size": self.max_size, "rois": self.rois, "max_instances": self.max_instances}


# ``balanced`` and ``fast`` for a file whose card has no presets (PixelLib's COCO model, or a
# bare .h5): PixelLib's own "average" and "fast" input sizes (512 and 384 px) with fewer ROIs and
# mask slots; ``accurate`` is the file's own configuration (PixelLib's 1024 px, 1000 ROIs, 100
# slots for COCO). Each is capped by ``accurate``. Timings: README "Speed".
GENERIC_PRESETS = {"balanced": SpeedPreset(512, 300, 30), "fast": SpeedPreset(384, 150, 10)}


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Everything needed to build the network and interpret its output.

    Attributes:
        name: short name shown to users.
        weights: path of the ``.h5`` weights file.
        backbone: one of ``BACKBONES``.
        class_names: class names with ``"BG"`` first, as the network's class axis is ordered.
        input_size: long side, in pixels, that frames are resized to for inference (multiple of
            64).
        detection_max_instances: mask-head slots; dominates CPU time.
        post_nms_rois_inference: ROIs the classifier head scores per frame.
        pyramid_size: FPN channels (``TOP_DOWN_PYRAMID_SIZE``).
        fc_layers_size: classifier head width (``FPN_CLASSIF_FC_LAYERS_SIZE``).
        rpn_anchor_scales: anchor side per pyramid level, in input pixels.
        default_threshold: confidence used when ``--threshold`` is not given.
        sha256: expected digest of the weights file, when the card records it.
        card: the model card it was read from, if any (an input no output may overwrite).
        presets: the card's speed presets, ``(name, SpeedPreset)`` pairs; a preset the card
            does not list comes from ``GENERIC_PRESETS`` (see ``preset``).
        default_speed: the preset used when none is asked for; None means ``DEFAULT_SPEED``.
    """

    name: str
    weights: Path
    backbone: str
    class_names: tuple[str, ...]
    input_size: int = 1024
    detection_max_instances: int = 100
    post_nms_rois_inference: int = 1000
    pyramid_size: int = 256
    fc_layers_size: int = 1024
    rpn_anchor_scales: tuple[int, ...] = (32, 64, 128, 256, 512)
    default_threshold: float = 0.5
    sha256: str | None = None
    card: Path | None = field(default=None, compare=False)
    presets: tuple[tuple[str, SpeedPreset], ...] = ()
    default_speed: str | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def preset(self, speed: str | None = None) -> SpeedPreset:
        """The values of preset ``speed`` (None: the model's default preset).

        ``accurate`` is the architecture's own configuration unless the card says otherwise;
        ``balanced`` and ``fast`` default to ``GENERIC_PRESETS``, capped by ``accurate``.

        Raises:
            UsageError: an unknown preset name.
        """
        speed = speed or self.default_speed or DEFAULT_SPEED
        listed = dict(self.presets)
        if speed in listed:
            return listed[speed]
        accurate = listed.get("accurate") or SpeedPreset(
            self.input_size, self.post_nms_rois_inference, self.detection_max_instances
        )
        if speed == "accurate":
            return accurate
        if speed not in GENERIC_PRESETS:
            raise UsageError(
                f"unknown speed preset; use one of {', '.join(SPEEDS)}",
                parameter="speed",
                value=speed,
            )
        generic = GENERIC_PRESETS[speed]
        return SpeedPreset(
            min(generic.max_size, accurate.max_size),
            min(generic.rois, accurate.rois),
            min(generic.max_instances, accurate.max_instances),
        )

    def speed_settings(
        self,
        speed: str | None = None,
        *,
        max_size: int | None = None,
        rois: int | None = None,
        max_instances: int | None = None,
    ) -> SpeedPreset:
        """Preset ``speed`` with any of its three values replaced by the ones given."""
        preset = self.preset(speed)
        return SpeedPreset(
            max_size or preset.max_size, rois or preset.rois, max_instances or preset.max_instances
        )

    @property
    def object_classes(self) -> tuple[str, ...]:
        """Class names a user can ask for (background excluded)."""
        return self.class_names[1:]


ARCHITECTURE_FIELDS = (
    "backbone",
    "input_size",
    "detection_max_instances",
    "post_nms_rois_inference",
    "pyramid_size",
    "fc_layers_size",
    "rpn_anchor_scales",
)


@dataclass(frozen=True, slots=True)
class WeightsFile:
    """The layers of a Keras HDF5 weights file: layer name -> shapes of its weights, in order."""

    path: Path
    layers: dict[str, tuple[tuple[int, ...], ...]]

    @property
    def num_classes(self) -> int | None:
        shapes = self.layers.get("mrcnn_class_logits")
        return int(shapes[0][-1]) if shapes else None

    @property
    def backbone(self) -> str | None:
        if "tiny_s1_c1" in self.layers:
            return "tinynet"
        if "res4w_branch2a" in self.layers:
            return "resnet101"
        if "res4a_branch2a" in self.layers:
            return "resnet50"
        return None

    def _last_dim(self, layer: str) -> int | None:
        shapes = self.layers.get(layer)
        return int(shapes[0][-1]) if shapes else None

    @property
    def pyramid_size(self) -> int | None:
        return self._last_dim("fpn_c5p5")

    @property
    def fc_layers_size(self) -> int | None:
        return self._last_dim("mrcnn_class_conv1")

    def read_layers(self, layers: Iterable[str]) -> dict[str, list[np.ndarray]]:
        """Weight arrays of ``layers``, each in the order Keras assigns them, in one pass over
        the file (a 246 MB file is opened once and each value read once).

        Raises:
            ModelError: a layer is missing or its data cannot be read (truncated, corrupt).
        """
        values = {}
        with h5py.File(self.path, "r") as h5:
            root = _weights_root(h5)
            for layer in layers:
                try:
                    group = root[layer]
                    values[layer] = [
                        np.asarray(group[name]) for name in _attr_names(group, "weight_names")
                    ]
                except (OSError, KeyError, ValueError) as error:
                    raise ModelError(
                        f"{self.path}: layer {layer} could not be read "
                        f"({str(error).splitlines()[0]}); fetch the file again"
                    ) from error
        return values


def _attr_names(node, key: str) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in node.attrs.get(key, [])]


def _weights_root(h5: h5py.File):
    # Full-model saves nest the weights under "model_weights".
    if "layer_names" not in h5.attrs and "model_weights" in h5:
        return h5["model_weights"]
    return h5


def read_weights_file(path: Path) -> WeightsFile:
    """Inspect a weights file without loading it.

    Raises:
        ModelError: missing, empty, truncated, not HDF5, or not a Keras weights file.
    """
    path = Path(path)
    if not path.exists():
        raise ModelError(
            f"{path}: weights file not found; check the path or run `livesegment models list`"
        )
    if path.is_dir():
        raise ModelError(f"{path}: is a folder, not a weights file; pass the .h5 file")
    size = path.stat().st_size
    if size == 0:
        raise ModelError(f"{path}: weights file is empty (0 bytes); download or copy it again")
    with path.open("rb") as raw:
        head = raw.read(8)
    if head != b"\x89HDF\r\n\x1a\n":
        raise ModelError(
            f"{path}: not an HDF5 file ({size} bytes of something else); "
            "expected Keras .h5 weights such as mask_rcnn_coco.h5"
        )
    try:
        with h5py.File(path, "r") as h5:
            root = _weights_root(h5)
            names = _attr_names(root, "layer_names")
            if not names:
                raise ModelError(
                    f"{path}: HDF5 file holds no Keras layer weights; "
                    "expected weights saved by Keras/PixelLib"
                )
            layers = {}
            for name in names:
                group = root[name]
                layers[name] = tuple(
                    tuple(group[w].shape) for w in _attr_names(group, "weight_names")
                )
    except ModelError:
        raise
    except (OSError, KeyError, ValueError) as error:
        text = str(error)
        if "truncated" in text:
            raise ModelError(
                f"{path}: truncated weights file ({size} bytes); the download or "
                "copy was cut short, fetch it again"
            ) from error
        raise ModelError(
            f"{path}: unreadable HDF5 file ({text.splitlines()[0]}); fetch it again"
        ) from error
    return WeightsFile(path=path, layers=layers)


def sha256_of(path: Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        while chunk := file.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def read_card(card_path: Path) -> dict:
    try:
        card = json.loads(Path(card_path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ModelError(
            f"{card_path}: unreadable model card ({error}); fix or remove it"
        ) from error
    if not isinstance(card, dict):
        raise ModelError(f"{card_path}: model card must be a JSON object")
    return card


def spec_from_card(card_path: Path) -> ModelSpec:
    """Build a ModelSpec from a model card JSON; ``weights`` is relative to the card."""
    card = read_card(card_path)
    card_path = Path(card_path)
    try:
        arch = card.get("architecture", {})
        names = tuple(card["class_names"])
        if not names or names[0] != "BG":
            names = ("BG", *names)
        fields = {k: arch[k] for k in ARCHITECTURE_FIELDS if k in arch}
        if "rpn_anchor_scales" in fields:
            fields["rpn_anchor_scales"] = tuple(fields["rpn_anchor_scales"])
        presets = tuple(
            (name, SpeedPreset(**{key: int(value) for key, value in values.items()}))
            for name, values in card.get("presets", {}).items()
        )
        unknown = [name for name, _ in presets if name not in SPEEDS] + [
            name for name in [card.get("default_speed")] if name not in (None, *SPEEDS)
        ]
        if unknown:
            raise ValueError(
                f"unknown speed preset {unknown[0]!r}; presets are {', '.join(SPEEDS)}"
            )
        return ModelSpec(
            name=card.get("name", card_path.stem),
            weights=card_path.parent / card.get("weights", card_path.stem + ".h5"),
            class_names=names,
            default_threshold=float(card.get("default_threshold", 0.5)),
            sha256=card.get("sha256"),
            card=card_path,
            presets=presets,
            default_speed=card.get("default_speed"),
            **fields,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ModelError(
            f"{card_path}: model card is missing or has a bad field ({error})"
        ) from error


def spec_from_weights(
    weights: WeightsFile, class_names: tuple[str, ...] | None = None
) -> ModelSpec:
    """Infer a ModelSpec from what the file holds (for a bare ``.h5`` with no card)."""
    path = weights.path
    backbone = weights.backbone
    if backbone is None:
        raise ModelError(
            f"{path}: not a Mask R-CNN weights file (no ResNet or tinynet backbone "
            "layers); use PixelLib/Matterport Mask R-CNN weights"
        )
    n = weights.num_classes
    if n is None:
        raise ModelError(
            f"{path}: missing layers: mrcnn_class_logits; the file has no "
            "classifier head (a backbone-only checkpoint?)"
        )
    if class_names is None:
        class_names = (
            COCO_CLASS_NAMES
            if n == len(COCO_CLASS_NAMES)
            else ("BG", *(f"class_{i}" for i in range(1, n)))
        )
    elif class_names[:1] != ("BG",):
        class_names = ("BG", *class_names)
    if len(class_names) != n:
        raise ModelError(
            f"{path} has {n} classes (BG + {n - 1}) but {len(class_names) - 1} "
            "class names were given (background not counted); give "
            f"{n - 1} names"
        )
    return ModelSpec(
        name=path.stem,
        weights=path,
        backbone=backbone,
        class_names=tuple(class_names),
        pyramid_size=weights.pyramid_size or 256,
        fc_layers_size=weights.fc_layers_size or 1024,
    )


def check_spec_matches(spec: ModelSpec, weights: WeightsFile) -> None:
    """Compare a card's description with the file before anything is built.

    Raises:
        ModelError: naming the difference in the user's terms.
    """
    path = weights.path
    n = weights.num_classes
    if n is not None and n != spec.num_classes:
        raise ModelError(
            f"{path} has {n} classes (BG + {n - 1}) but the card lists {spec.num_classes - 1}"
        )
    if weights.backbone is not None and weights.backbone != spec.backbone:
        raise ModelError(
            f"{path} holds a {weights.backbone} backbone but the card says "
            f"{spec.backbone}; fix the card's architecture.backbone"
        )


def user_models_dir() -> Path:
    """Where downloaded models live; ``LIVESEGMENT_HOME`` overrides the platform default."""
    if home := os.environ.get("LIVESEGMENT_HOME"):
        return Path(home) / "models"
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "livesegment" / "models"


def known_model_names() -> list[str]:
    names = set()
    for folder in (BUNDLED_DIR, user_models_dir()):
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.json"))
    return sorted(names)


def resolve_model(model: str | None, class_names: tuple[str, ...] | None = None) -> ModelSpec:
    """Turn ``--model NAME|PATH`` into a ModelSpec, checking the file against its card.

    Raises:
        ModelError: unknown name, missing/broken file, or card and file disagree.
    """
    model = model or DEFAULT_MODEL
    path = Path(model).expanduser()
    if path.suffix in (".h5", ".hdf5", ".json") or path.exists() or os.sep in model:
        card = path.with_suffix(".json")
        weights_path = path if path.suffix != ".json" else None
    else:
        card = next(
            (
                folder / f"{model}.json"
                for folder in (BUNDLED_DIR, user_models_dir())
                if (folder / f"{model}.json").exists()
            ),
            None,
        )
        if card is None:
            known = ", ".join(known_model_names()) or "none"
            raise ModelError(
                f"unknown model {model!r}; known models: {known} (or pass the path of an .h5 file)"
            )
        weights_path = None
    if card.exists():
        spec = spec_from_card(card)
        if weights_path is not None:
            spec = dataclasses.replace(spec, weights=weights_path)
        if class_names is not None:
            spec = _with_class_names(spec, class_names)
        weights = read_weights_file(spec.weights)
        check_spec_matches(spec, weights)
        return spec
    if weights_path is None:
        raise ModelError(f"{path}: model card not found")
    return spec_from_weights(read_weights_file(weights_path), class_names)


def _with_class_names(spec: ModelSpec, class_names: tuple[str, ...]) -> ModelSpec:
    names = class_names if class_names[:1] == ("BG",) else ("BG", *class_names)
    if len(names) != spec.num_classes:
        raise ModelError(
            f"{spec.weights} has {spec.num_classes} classes "
            f"(BG + {spec.num_classes - 1}) but {len(names) - 1} class names "
            "were given"
        )
    return dataclasses.replace(spec, class_names=names)


def write_card(spec: ModelSpec, card_path: Path, **extra) -> None:
    """Write a model card next to its weights (``weights`` stored relative to the card)."""
    card = {
        "name": spec.name,
        "weights": os.path.relpath(spec.weights, Path(card_path).parent),
        "sha256": spec.sha256,
        "class_names": list(spec.class_names),
        "default_threshold": spec.default_threshold,
        "architecture": {
            k: (list(v) if isinstance(v, tuple) else v)
            for k in ARCHITECTURE_FIELDS
            for v in [getattr(spec, k)]
        },
        "default_speed": spec.default_speed or DEFAULT_SPEED,
        "presets": {speed: spec.preset(speed).to_dict() for speed in SPEEDS},
        **extra,
    }
    Path(card_path).write_text(json.dumps(card, indent=2) + "\n")
