"""Long runs keep their memory flat: nothing in the pipeline keeps a frame alive through a
reference cycle, which only a full garbage collection would free (rare in a process holding
TensorFlow's millions of objects, so memory grows by tens of MB over thousands of frames)."""

from __future__ import annotations

import gc

import av
import numpy as np
import pytest
from conftest import tiny_spec

from livesegment.model.detector import Detector
from livesegment.pipeline import RunOptions, run
from livesegment.structures import Candidates, FrameResult
from livesegment.video.sources import open_source, parse_source


def one_square(spec, options) -> Detector:
    """``run``'s loader: a fake network finding one square in every frame."""

    def engine(rgb, shape_hw):
        height, width = shape_hw
        return Candidates(
            np.array([[10, 10, width / 2, height / 2]], np.float32),
            np.array([0.9], np.float32),
            np.array([2], np.int32),
            np.array(["square"]),
            np.ones((1, 28, 28), np.float32),
            shape_hw,
        )

    return Detector(engine, spec)


@pytest.fixture
def no_cycle_collection():
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def alive(kind: type) -> int:
    return sum(isinstance(thing, kind) for thing in gc.get_objects())


def test_decoded_frames_are_freed_as_soon_as_they_are_read(video_factory, no_cycle_collection):
    source = open_source(parse_source(str(video_factory(60, (160, 120), 10.0, ".mp4"))))
    try:
        for _ in range(50):
            assert source.read() is not None
        assert alive(av.VideoFrame) <= 8, "decoded frames outlive their reading"
    finally:
        source.release()


def test_a_run_leaves_no_frame_behind(tmp_path, video_factory, no_cycle_collection):
    options = RunOptions(
        source=str(video_factory(60, (160, 120), 10.0, ".mp4")),
        display=False,
        output=tmp_path / "out.mp4",
        json_path=tmp_path / "out.jsonl",
        progress=False,
    )
    summary = run(options, tiny_spec(tmp_path / "unused.h5"), load=one_square)
    assert summary.frames_processed == 60
    assert alive(FrameResult) == 0
    assert alive(av.VideoFrame) == 0
