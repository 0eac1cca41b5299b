"""The Python API: ``Detector`` (one call per frame) and ``stream`` (one result per frame),
with the real PixelLib Mask R-CNN, and the README's example run exactly as written."""

from __future__ import annotations

import re
import subprocess
import sys
import threading

import numpy as np
import pytest
from conftest import ROOT, SAMPLE_VIDEO, needs_bundled_model

import livesegment
from livesegment.errors import UsageError
from livesegment.model.detector import Detector


def _shapes_frame_rgb(seed: int = 12345):
    from livesegment import shapes

    scene = next(s for s in shapes.simulate_video(seed, 30, (480, 640), 15.0) if s.objects)
    return scene


def test_detector_finds_shapes_in_source_pixels_and_explains_empty_frames():
    needs_bundled_model()
    detector = Detector.load("shapes")
    scene = _shapes_frame_rgb()
    detections = detector(scene.rgb)
    assert len(detections) >= 1 and detections.empty_reason is None
    assert detections.masks.shape[1:] == (480, 640), "masks at the frame's own size"
    truth_names = sorted(o.class_name for o in scene.objects)
    assert sorted(detections.class_names.tolist()) == truth_names
    assert detector.timings.network_ms > 0

    blank = np.full((240, 320, 3), 127, np.uint8)
    nothing = detector(blank)
    assert len(nothing) == 0 and nothing.masks.shape == (0, 240, 320)
    assert nothing.empty_reason, "an empty result always says why"

    # Per-call settings override the detector's, without changing them.
    assert len(detector(scene.rgb, threshold=1.0)) == 0
    other = next(n for n in detector.class_names if n not in truth_names)
    filtered = detector(scene.rgb, classes=[other])
    assert len(filtered) == 0 and "none in" in filtered.empty_reason
    assert detector.threshold == detector.spec.default_threshold and detector.classes is None


def test_detector_rejects_unknown_classes_and_bad_frames(tiny_model):
    from livesegment.model.cards import spec_from_card

    detector = Detector.load(spec_from_card(tiny_model))
    with pytest.raises(UsageError, match="did you mean circle"):
        detector.classes = ["circel"]
    with pytest.raises(ValueError, match="RGB"):
        detector(np.zeros((96, 128), np.uint8))
    with pytest.raises(UsageError, match="outside 0-1"):
        detector.threshold = 1.5


def test_stream_yields_every_frame_of_a_file_in_order(video_factory, tiny_model):
    from livesegment.model.cards import spec_from_card

    source = video_factory(12, (160, 120), 10.0)
    with livesegment.stream(source, model=spec_from_card(tiny_model), threshold=0.0) as results:
        frames = [(r.frame.index, r.frame.bgr.shape, r.detections.shape_hw) for r in results]
    assert [index for index, _, _ in frames] == list(range(12))
    assert all(shape == (120, 160, 3) and hw == (120, 160) for _, shape, hw in frames)


def test_breaking_out_of_a_stream_stops_its_capture_thread(video_factory, tiny_model):
    from livesegment.model.cards import spec_from_card

    detector = Detector.load(spec_from_card(tiny_model))
    source = video_factory(40, (160, 120), 10.0)
    for result in livesegment.stream(source, model=detector):
        if result.frame.index == 2:
            break
    # The conftest guard also fails the test if a livesegment-* thread is still alive.
    assert not [t for t in threading.enumerate() if t.name.startswith("livesegment-")]


def test_importing_the_package_imports_no_tensorflow_and_sets_nothing():
    code = (
        "import os, sys; before = dict(os.environ); "
        "import livesegment, livesegment.evaluate, livesegment.structures; "
        "heavy = [m for m in ('tensorflow', 'tf_keras', 'pixellib', 'keras') "
        "if m in sys.modules]; "
        "print(heavy, sorted(set(os.environ.items()) ^ set(before.items())))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "[] []", result.stdout + result.stderr


def _readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- api-example -->\s*```python\n(.*?)```", text, re.S)
    assert match, "README has the API example"
    return match[1]


def test_readme_python_example_runs_as_written():
    needs_bundled_model()
    if not SAMPLE_VIDEO.exists():
        pytest.skip("sample video missing")
    example = _readme_example()
    assert len(example.strip().splitlines()) <= 12
    result = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [f"frame {i}" for i in range(10)]
    assert any(re.search(r"(circle|square|triangle) 0\.\d\d", line) for line in lines)
    assert result.stderr == "", "TensorFlow prints nothing"


def test_stream_tracks_videos_by_default_and_never_still_images(
    video_factory, tiny_model, tmp_path
):
    import cv2

    from livesegment.model.cards import spec_from_card

    detector = Detector.load(spec_from_card(tiny_model))
    video = video_factory(6, (160, 120), 10.0)
    with livesegment.stream(video, model=detector, threshold=0.0) as results:
        tracked = [r.detections for r in results]
    assert all(d.track_ids is not None and len(d.track_ids) == len(d) for d in tracked)
    assert any(len(d) for d in tracked), "the tiny model found nothing to track"
    assert all((d.track_ids >= 1).all() for d in tracked)
    with livesegment.stream(video, model=detector, track=False) as results:
        assert all(r.detections.track_ids is None and r.track_ms == 0 for r in results)

    photo = tmp_path / "a.png"
    cv2.imwrite(str(photo), np.full((120, 160, 3), 90, np.uint8))
    with livesegment.stream(photo, model=detector) as results:
        assert [r.detections.track_ids for r in results] == [None]
