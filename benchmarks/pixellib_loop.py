"""PixelLib's own video loop (``process_video``), for comparison with ``livesegment run``.

PixelLib's ``load_model`` builds the network and then calls ``MaskRCNN.load_weights``, which on
TensorFlow 2.x writes into another Keras session and leaves the network random. Here the network
is built as ``load_model`` builds it and the weights are loaded the way that works
(``keras_model.load_weights(path, by_name=True)``), so both tools run the same weights and
PixelLib is not charged for its broken loader.

Run as a script, it is one start-up measurement: the command a PixelLib user runs, on a clip.
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
from pathlib import Path

from livesegment.model.tfenv import importing_tensorflow


def coco_segmenter(weights: Path):
    """PixelLib's ``instance_segmentation`` at its defaults (1024 px, confidence 0.7) with
    ``weights`` really loaded."""
    with importing_tensorflow():
        from pixellib.instance import MaskRCNN, coco_config, instance_segmentation

    segmentation = instance_segmentation()
    segmentation.model = MaskRCNN(
        mode="inference", model_dir=segmentation.model_dir, config=coco_config
    )
    segmentation.model.keras_model.load_weights(str(weights), by_name=True)
    return segmentation


def custom_segmenter(network):
    """PixelLib's ``custom_segmentation`` around an already built and loaded ``MaskRCNN``
    (the bundled model's backbone is not one PixelLib can build from its own config)."""
    with importing_tensorflow():
        from pixellib.instance import custom_segmentation

    segmentation = custom_segmentation()
    segmentation.model = network
    segmentation.config = network.config
    return segmentation


def process_video(segmentation, video: Path, output: Path, fps: float) -> float:
    """Run PixelLib's loop over ``video`` writing ``output``; returns wall seconds.

    PixelLib prints a line per frame; it is kept off the terminal.
    """
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        segmentation.process_video(
            str(video), show_bboxes=True, output_video_name=str(output), frames_per_second=fps
        )
    return time.perf_counter() - started


if __name__ == "__main__":
    # python pixellib_loop.py WEIGHTS VIDEO OUTPUT: what a PixelLib user's script does.
    weights, video, output = map(Path, sys.argv[1:4])
    process_video(coco_segmenter(weights), video, output, 10.0)
