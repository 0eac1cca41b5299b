"""The bundled demo model says, once, when it is pointed at footage it cannot know (issue 12):
real or natural-looking video gets one warning line with the classes it knows and the command
that fetches the COCO model; a shapes video, or an explicit --model, gets none."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import invoke_cli, needs_bundled_model, needs_shared_data, run_cli

from livesegment.video import footage

NEEDLES = ("circle, square, triangle", "livesegment models download coco", "--model coco")


def natural_frames(seed: int, n_frames: int, size_wh=(320, 240)) -> list[np.ndarray]:
    """Photo-like texture (noise at four scales, mostly luminance) panning sideways: BGR."""
    rng = np.random.default_rng(seed)
    width, height = size_wh
    canvas_hw = (height + 16, width + 4 * n_frames + 16)
    luminance = np.zeros(canvas_hw, np.float32)
    colour = np.zeros((*canvas_hw, 3), np.float32)
    for sigma, amplitude in ((1, 10), (3, 25), (9, 35), (27, 45)):
        layer = cv2.GaussianBlur(rng.normal(0, 1, canvas_hw).astype(np.float32), (0, 0), sigma)
        luminance += amplitude * layer / layer.std()
        tint = cv2.GaussianBlur(rng.normal(0, 1, (*canvas_hw, 3)).astype(np.float32), (0, 0), sigma)
        colour += 0.4 * amplitude * tint / tint.std()
    canvas = np.clip(110 + luminance[..., None] + colour, 0, 255).astype(np.uint8)
    return [canvas[8 : 8 + height, 4 * i : 4 * i + width].copy() for i in range(n_frames)]


def flat_shape_frames(
    seed: int, n_frames: int, size_wh=(480, 360), background: str = "plain"
) -> list[np.ndarray]:
    """Another synthetic world than ours: anti-aliased flat circles, squares and triangles
    drifting over a plain, two-tone or gradient background. BGR."""
    rng = np.random.default_rng(seed)
    width, height = size_wh
    base = np.empty((height, width, 3), np.uint8)
    first, second = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    if background == "gradient":
        ramp = np.linspace(0, 1, width)[None, :, None]
        base[:] = (first + ramp * (second - first)).astype(np.uint8)
    else:
        base[:] = first
        if background == "two-tone":
            base[height // 2 :] = second
    shapes = [
        (
            int(rng.integers(3)),
            rng.uniform(0.2, 0.8, 2) * (width, height),
            rng.uniform(40, 90),
            tuple(int(c) for c in rng.integers(0, 256, 3)),
        )
        for _ in range(3)
    ]
    frames = []
    for index in range(n_frames):
        frame = base.copy()
        for kind, (x, y), size, colour in shapes:
            x, y = x + 3 * index, y + 2 * index
            if kind == 0:
                cv2.circle(frame, (round(x), round(y)), round(size / 2), colour, -1, cv2.LINE_AA)
                continue
            corners = 4 if kind == 1 else 3
            radius = size / (2 * math.sin(math.pi / corners))
            points = np.array(
                [
                    [
                        x + radius * math.cos(0.3 + 2 * math.pi * k / corners),
                        y + radius * math.sin(0.3 + 2 * math.pi * k / corners),
                    ]
                    for k in range(corners)
                ],
                np.int32,
            )
            cv2.fillPoly(frame, [points], colour, cv2.LINE_AA)
        frames.append(frame)
    return frames


def write_mjpg(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def _demo_warnings(result) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [line for line in result.stderr.splitlines() if NEEDLES[1] in line]


def _warned_once(result) -> None:
    lines = _demo_warnings(result)
    assert len(lines) == 1, result.stderr
    for needle in NEEDLES:
        assert needle in lines[0], lines[0]


# --- through the CLI (in this process but the last: each run still loads the model) -----------


@pytest.mark.slow
def test_real_footage_gets_one_warning():
    needs_bundled_model()
    video = needs_shared_data("vtest.avi")
    _warned_once(invoke_cli("run", str(video), "--no-display", "--end", "1"))


@pytest.mark.slow
def test_a_real_photo_gets_one_warning():
    needs_bundled_model()
    _warned_once(invoke_cli("run", str(needs_shared_data("messi5.jpg")), "--no-display"))


@pytest.mark.slow
def test_natural_looking_video_gets_one_warning(tmp_path):
    needs_bundled_model()
    video = write_mjpg(tmp_path / "natural.avi", natural_frames(3, 12))
    _warned_once(invoke_cli("run", str(video), "--no-display"))


@pytest.mark.slow
def test_an_explicit_model_gets_no_warning(tmp_path):
    needs_bundled_model()
    video = write_mjpg(tmp_path / "natural.avi", natural_frames(3, 12))
    assert _demo_warnings(invoke_cli("run", str(video), "--no-display", "--model", "shapes")) == []


@pytest.mark.slow
def test_a_shapes_video_gets_no_warning(tmp_path):
    needs_bundled_model()
    made = run_cli(
        "make-sample", str(tmp_path), "--seed", "2031", "--frames", "8", module="livesegment.shapes"
    )
    assert made.returncode == 0, made.stderr
    # A fresh process: its whole stderr, TensorFlow's import included, stays empty.
    result = run_cli("run", str(tmp_path / "shapes.avi"), "--no-display")
    assert _demo_warnings(result) == []
    assert result.stderr == ""


# --- the classifier ---------------------------------------------------------------------------


def _first_frames(path: Path, count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < count and (read := capture.read())[0]:
        frames.append(read[1])
    capture.release()
    return frames


def _verdict(frames: list[np.ndarray], check_frames: int = 10) -> str:
    check = footage.SceneCheck(check_frames)
    for frame in frames:
        if check.add(frame):
            return "real"
        if check.decided is False:
            return "synthetic"
    return "real" if check.finish() else "undecided"


@pytest.mark.parametrize("name", ["vtest.avi", "Megamind.avi", "tree.avi"])
def test_shared_footage_is_real(name):
    # Megamind opens on a black frame: skipped, not counted.
    assert _verdict(_first_frames(needs_shared_data(name), 12)) == "real"


@pytest.mark.parametrize("name", ["messi5.jpg", "basketball1.png"])
def test_shared_photos_are_real(name):
    image = cv2.imread(str(needs_shared_data(name)))
    assert _verdict([image], check_frames=1) == "real"


@pytest.mark.parametrize("seed", [7, 555, 2027, 4242, 12345, 31337])
def test_shapes_world_videos_are_synthetic(shapes_video_factory, seed):
    video, _ = shapes_video_factory(seed=seed, n_frames=8)
    assert _verdict(_first_frames(video, 8)) == "synthetic"


@pytest.mark.parametrize("background", ["plain", "two-tone", "gradient"])
@pytest.mark.parametrize("encoding", ["png", "jpg", "mjpg"])
def test_other_flat_shape_scenes_are_synthetic(tmp_path, background, encoding):
    frames = flat_shape_frames(11, 3, background=background)
    if encoding == "mjpg":
        frames = _first_frames(write_mjpg(tmp_path / "v.avi", frames), 3)
    else:
        frames = [
            cv2.imdecode(cv2.imencode(f".{encoding}", frame)[1], cv2.IMREAD_COLOR)
            for frame in frames
        ]
    assert _verdict(frames) == "synthetic"


def test_natural_texture_is_real_and_a_uniform_frame_decides_nothing():
    frames = natural_frames(0, 5)
    assert not any(footage.flat_shape_evidence(frame) for frame in frames)
    black = np.zeros_like(frames[0])
    check = footage.SceneCheck(5)
    assert [check.add(frame) for frame in [black, black, *frames]] == [False] * 6 + [True]
    assert not check.finish(), "said once"


def test_one_odd_frame_does_not_silence_the_warning():
    """Two frames with a flat shape make a source synthetic; one among real frames does not."""
    shapes_frame = flat_shape_frames(2, 1, size_wh=(320, 240))[0]
    natural = natural_frames(1, 4)
    assert footage.flat_shape_evidence(shapes_frame)
    assert _verdict([natural[0], shapes_frame, *natural[1:]]) == "real"
    assert _verdict([natural[0], shapes_frame, shapes_frame]) == "synthetic"
