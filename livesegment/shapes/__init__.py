"""The synthetic shapes world (``world``), the bundled model's training and its quality checks;
one command group: ``python -m livesegment.shapes make-sample|train|quality``."""

from livesegment.shapes.world import (
    CLASS_NAMES,
    SHAPE_CLASSES,
    Scene,
    ShapeObject,
    make_sample,
    render_scene,
    simulate_video,
    truth_record,
    write_truth,
    write_video,
)

__all__ = [
    "CLASS_NAMES",
    "SHAPE_CLASSES",
    "Scene",
    "ShapeObject",
    "make_sample",
    "render_scene",
    "simulate_video",
    "truth_record",
    "write_truth",
    "write_video",
]
