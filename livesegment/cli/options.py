"""Options ``run`` and ``batch`` share: one definition, so both mean and say the same."""

from __future__ import annotations

import functools

import click


def _group(*decorators):
    """Apply ``decorators`` so they list in ``--help`` in the order given."""

    def apply(command):
        return functools.reduce(lambda inner, option: option(inner), reversed(decorators), command)

    return apply


model_options = _group(
    click.option(
        "--model",
        "model_name",
        default=None,
        metavar="NAME|PATH",
        help="Bundled/downloaded model name or an .h5 path (default: shapes).",
    ),
    click.option(
        "--threshold",
        type=click.FloatRange(0, 1),
        default=None,
        help="Minimum confidence to keep a detection (default: the model card's).",
    ),
    click.option(
        "--classes",
        default=None,
        metavar="A,B",
        help="Keep only these classes (comma-separated names).",
    ),
    click.option(
        "--class-names",
        default=None,
        metavar="A,B",
        help="Class names for a custom .h5 without a card (background excluded).",
    ),
)

network_size_options = _group(
    click.option(
        "--max-size",
        type=click.IntRange(64, 4096),
        default=None,
        help="Long side in pixels the network sees (default: the --speed preset's).",
    ),
    click.option(
        "--rois",
        type=click.IntRange(1, 10000),
        default=None,
        help="Region proposals the classifier scores per frame (default: the preset's).",
    ),
    click.option(
        "--max-instances",
        type=click.IntRange(1, 1000),
        default=None,
        help="Mask-head slots: the most objects per frame (default: the preset's).",
    ),
)

drawing_options = _group(
    click.option("--boxes/--no-boxes", default=True, help="Draw boxes."),
    click.option("--labels/--no-labels", default=True, help="Draw class and score labels."),
    click.option("--masks/--no-masks", default=True, help="Draw masks."),
)
