"""Does a weights file load completely? Read it without guessing, then prove it.

``verify_weights`` reads the file's architecture and classes and, with ``full=True``, builds the
PixelLib network the file describes and compares every layer. ``models verify``, ``models
list``, downloads and ``doctor`` all use it; TensorFlow is imported only for the full check.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path

from livesegment.errors import ModelError
from livesegment.model import tfenv
from livesegment.model.cards import (
    BUNDLED_DIR,
    ModelSpec,
    WeightsFile,
    check_spec_matches,
    read_card,
    read_weights_file,
    sha256_of,
    spec_from_card,
    spec_from_weights,
    user_models_dir,
)


def describe_classes(class_names: tuple[str, ...], shown: int = 4) -> str:
    """``"3 classes: circle, square, triangle"`` (background not counted)."""
    names = [n for n in class_names if n != "BG"]
    more = ", …" if len(names) > shown else ""
    return f"{len(names)} classes: {', '.join(names[:shown])}{more}"


@dataclass(frozen=True, slots=True)
class ModelReport:
    """What a weights file is and whether it would load completely.

    Attributes:
        backbone, class_names, file_layers: read from the file (and card); None if unreadable.
        model_layers: weighted layers of the architecture, when it was built (``full``).
        sha256: "matches the card", "not recorded in the card", "no card" or "differs".
        problem: one line naming what is wrong and the fix; None when the file is good.
        full: whether the file was compared with the built network, not just read.
    """

    path: Path
    card: Path | None
    size_bytes: int | None
    backbone: str | None = None
    class_names: tuple[str, ...] | None = None
    file_layers: int | None = None
    model_layers: int | None = None
    sha256: str = "no card"
    problem: str | None = None
    full: bool = False

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def readable(self) -> bool:
        return self.file_layers is not None

    def format(self) -> str:
        size = f"{self.size_bytes / 1e6:.1f} MB" if self.size_bytes is not None else "missing"
        lines = [str(self.path)]
        if self.readable:
            lines.append(
                f"  file:   {self.backbone or 'unknown'} backbone, "
                f"{describe_classes(self.class_names or ())}, "
                f"{self.file_layers} weighted layers, {size}"
            )
        else:
            lines.append(f"  file:   {size}, unreadable")
        if self.card is None and (self.class_names or ("BG",))[1:2] == ("class_1",):
            lines.append(
                f"  card:   none; class names are placeholders (give names with "
                f"--class-names or a card {self.path.with_suffix('.json').name})"
            )
        elif self.card is None:
            lines.append("  card:   none; 81 classes, so COCO's class names are used")
        else:
            lines.append(f"  card:   {self.card}; sha256 {self.sha256}")
        if self.problem is not None:
            lines.append(f"  loads:  NO: {self.problem}")
        elif self.full:
            lines.append(
                f"  loads:  yes, completely: all {self.model_layers} weighted layers "
                f"of the {self.backbone} network are in the file with matching shapes"
            )
        else:
            lines.append(
                "  loads:  file and card agree (layers not compared with the network; "
                "use `livesegment models verify` for that)"
            )
        return "\n".join(lines)


def check_architecture(spec: ModelSpec, weights: WeightsFile) -> int:
    """Build PixelLib's network for ``spec`` and compare every layer with the file.

    Returns:
        The number of weighted layers compared.

    Raises:
        ModelError: missing or mismatched layers (from ``segmenter.check_layers``).
    """
    with tfenv.silenced_stderr():
        from livesegment.model import segmenter

    # The file path plays no part in the network, so one build serves every file of a kind.
    keras_model = _network(dataclasses.replace(spec, weights=Path(), name="verify"))
    segmenter.check_layers(keras_model, weights)
    return len(segmenter.weighted_layers(keras_model))


@functools.lru_cache(maxsize=4)
def _network(spec: ModelSpec):
    """PixelLib's Keras model for ``spec`` (built in seconds; kept for repeated checks).

    Built in a graph of its own: PixelLib runs TensorFlow in graph mode, and variables left in
    the default graph would be initialised (a ResNet-101 is 44M of them) by the next session
    any model in this process opens. Only the layers' shapes are read, so no session is needed.
    """
    with tfenv.silenced_stderr():
        import tensorflow as tf

        from livesegment.model import segmenter

        with tf.Graph().as_default():
            return segmenter.build_model(spec).keras_model


def verify_weights(path: Path, *, card: Path | None = None, full: bool = True) -> ModelReport:
    """Read ``path`` (an ``.h5``, or a card ``.json``) and judge whether it loads completely.

    A sidecar card (``my.json`` beside ``my.h5``) is honoured: its class names, architecture
    and sha256 must agree with the file. Problems are reported in the result, never raised.
    """
    path = Path(path)
    if path.suffix == ".json":
        card = path
        try:
            path = spec_from_card(card).weights
        except ModelError as error:
            return ModelReport(path=path, card=card, size_bytes=None, problem=str(error))
    elif card is None and path.with_suffix(".json").exists():
        card = path.with_suffix(".json")
    size = path.stat().st_size if path.is_file() else None
    report = ModelReport(path=path, card=card, size_bytes=size, full=full)
    try:
        weights = read_weights_file(path)
    except ModelError as error:
        return dataclasses.replace(report, problem=str(error))
    report = dataclasses.replace(
        report,
        backbone=weights.backbone,
        class_names=_file_class_names(weights),
        file_layers=sum(1 for shapes in weights.layers.values() if shapes),
    )
    try:
        if card is None:
            spec = spec_from_weights(weights)
        else:
            spec = dataclasses.replace(spec_from_card(card), weights=path)
            report = dataclasses.replace(
                report, class_names=spec.class_names, sha256=_sha256_verdict(spec, path)
            )
            check_spec_matches(spec, weights)
            if report.sha256 == "differs":
                raise ModelError(
                    f"{path}: sha256 differs from the one in {card.name}; the file "
                    "changed since the card was written, download or copy it again"
                )
        if full:
            report = dataclasses.replace(report, model_layers=check_architecture(spec, weights))
    except ModelError as error:
        return dataclasses.replace(report, problem=str(error))
    return report


def _file_class_names(weights: WeightsFile) -> tuple[str, ...] | None:
    try:
        return spec_from_weights(weights).class_names
    except ModelError:
        return None


def _sha256_verdict(spec: ModelSpec, path: Path) -> str:
    if not spec.sha256:
        return "not recorded in the card"
    return "matches the card" if sha256_of(path) == spec.sha256 else "differs"


@dataclass(frozen=True, slots=True)
class InstalledModel:
    """A model on disk: a card and the weights it names, or a bare ``.h5`` without a card."""

    name: str
    location: str
    weights: Path
    card: Path | None


def installed_models() -> list[InstalledModel]:
    """The bundled models, then every card or ``.h5`` in ``user_models_dir()``."""
    found = []
    for location, folder in (("bundled", BUNDLED_DIR), ("user", user_models_dir())):
        if not folder.is_dir():
            continue
        claimed = set()
        for card in sorted(folder.glob("*.json")):
            try:
                weights = card.parent / read_card(card).get("weights", card.stem + ".h5")
            except ModelError:
                weights = card.with_suffix(".h5")
            claimed.add(weights.resolve())
            found.append(InstalledModel(card.stem, location, weights, card))
        found.extend(
            InstalledModel(h5.stem, location, h5, None)
            for h5 in sorted(folder.glob("*.h5"))
            if h5.resolve() not in claimed
        )
    return found
