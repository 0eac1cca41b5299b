"""livesegment: real-time video instance segmentation with PixelLib's Mask R-CNN.

The loop, as ``livesegment run`` does it::

    import livesegment

    detector = livesegment.Detector.load("shapes", threshold=0.7)
    with livesegment.stream("sample_videos/shapes.avi", model=detector) as results:
        for result in results:
            names = result.detections.class_names
            print(result.frame.index, list(names) or result.empty_reason)

Importing the package imports neither TensorFlow nor PixelLib and changes no process state;
``Detector.load`` imports TensorFlow (with tf-keras selected) when a model is first loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from livesegment.structures import Detections, Frame, FrameResult, RunSummary, StopReason

if TYPE_CHECKING:
    from livesegment.model.detector import Detector
    from livesegment.pipeline.results import ResultStream, stream

__version__ = "0.1.0"
__all__ = [
    "Detections",
    "Detector",
    "Frame",
    "FrameResult",
    "ResultStream",
    "RunSummary",
    "StopReason",
    "__version__",
    "stream",
]

_LAZY = {
    "Detector": "livesegment.model.detector",
    "stream": "livesegment.pipeline.results",
    "ResultStream": "livesegment.pipeline.results",
}


def __getattr__(name: str):
    # Detector and stream pull in OpenCV, h5py and PyAV; plain ``import livesegment`` does not.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'livesegment' has no attribute {name!r}")
