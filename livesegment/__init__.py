"""livesegment: real-time video instance segmentation with PixelLib's Mask R-CNN.

The whole loop, as ``livesegment run`` does it::

    from livesegment import models, pipeline
    spec = models.resolve_model("shapes")
    summary = pipeline.run(pipeline.RunOptions(source="sample_videos/shapes.avi",
                                               output="out.mp4", json_path="dets.jsonl",
                                               display=False), spec)
    print(summary.format())

Importing the package selects tf-keras (``TF_USE_LEGACY_KERAS=1``) before TensorFlow loads.
"""

from livesegment import tfenv

tfenv.ensure_legacy_keras()

from livesegment.structures import Detections, Frame  # noqa: E402

__version__ = "0.1.0"
__all__ = ["Detections", "Frame", "__version__"]
