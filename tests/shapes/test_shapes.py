"""The shapes world: exact masks, determinism, and files that reopen as written."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from pycocotools import mask as mask_utils

from livesegment.shapes import world as shapes
from livesegment.shapes.__main__ import main as shapes_command
from livesegment.shapes.world import (
    CLASS_NAMES,
    MIN_VISIBLE_PX,
    Scene,
    render_scene,
    simulate_video,
    write_truth,
    write_video,
)

SHAPE_HW = (120, 160)
SAMPLE_DIR = Path(__file__).resolve().parents[2] / "sample_videos"


def _assert_exact(scene: Scene) -> None:
    h, w = scene.shape_hw
    assert scene.rgb.shape == (h, w, 3)
    assert scene.rgb.dtype == np.uint8
    union = np.zeros((h, w), bool)
    for obj in scene.objects:
        assert obj.class_name in CLASS_NAMES[1:]
        assert obj.mask.shape == (h, w)
        assert obj.mask.dtype == bool
        assert np.count_nonzero(obj.mask) >= MIN_VISIBLE_PX
        assert not (union & obj.mask).any(), "masks overlap"
        union |= obj.mask
        # Every visible pixel has the object's flat colour: the mask is the painted region.
        assert (scene.rgb[obj.mask] == obj.color_rgb).all()


def _assert_same(a: Scene, b: Scene) -> None:
    assert np.array_equal(a.rgb, b.rgb)
    assert [o.class_name for o in a.objects] == [o.class_name for o in b.objects]
    for oa, ob in zip(a.objects, b.objects, strict=True):
        assert np.array_equal(oa.mask, ob.mask)


@pytest.fixture(scope="module")
def stills() -> list[Scene]:
    rng = np.random.default_rng(123)
    return [render_scene(rng, shape_hw=(240, 320), size_px=(15, 120)) for _ in range(25)]


@pytest.fixture(scope="module")
def video() -> list[Scene]:
    return list(simulate_video(seed=5, n_frames=36, shape_hw=SHAPE_HW, fps=12, size_px=(25, 50)))


def test_still_masks_are_exact_and_disjoint(stills: list[Scene]) -> None:
    for scene in stills:
        _assert_exact(scene)
    assert any(not s.objects for s in stills), "no empty still in 25"
    assert any(len(s.objects) >= 3 for s in stills)
    assert {o.class_name for s in stills for o in s.objects} == set(CLASS_NAMES[1:])


def test_still_shape_colour_contrasts_with_its_surroundings(stills: list[Scene]) -> None:
    for scene in stills:
        for obj in scene.objects:
            ring = cv2.dilate(obj.mask.astype(np.uint8), np.ones((5, 5), np.uint8)).view(bool)
            ring &= ~obj.mask
            if ring.any():
                diff = np.abs(scene.rgb[ring].astype(float) - obj.color_rgb).mean()
                assert diff > 15, f"{obj.class_name} barely visible (diff {diff:.1f})"


def test_still_without_shapes_has_no_objects() -> None:
    scene = render_scene(np.random.default_rng(0), shape_hw=SHAPE_HW, n_shapes=(0, 0))
    assert scene.objects == ()


def test_occluded_parts_leave_the_mask_and_hidden_shapes_are_dropped() -> None:
    background = np.zeros((100, 100, 3), np.uint8)
    back = shapes._ShapeSpec("circle", (40.0, 50.0), 40.0, 0.0, (255, 0, 0))
    front = shapes._ShapeSpec("square", (60.0, 50.0), 40.0, 0.0, (0, 255, 0))
    scene = shapes._compose(background, [back, front])
    _assert_exact(scene)
    circle, square = scene.objects
    assert (circle.class_name, square.class_name) == ("circle", "square")
    assert np.count_nonzero(circle.mask) < np.count_nonzero(shapes._rasterize(back, (100, 100)))

    hidden = shapes._ShapeSpec("triangle", (60.0, 50.0), 20.0, 0.0, (0, 0, 255))
    scene = shapes._compose(background, [hidden, front])
    assert [o.class_name for o in scene.objects] == ["square"]
    assert not (scene.rgb == (0, 0, 255)).all(axis=2).any(), "a dropped shape was drawn"


def test_edge_cut_shape_is_kept_only_if_enough_shows() -> None:
    background = np.full((100, 100, 3), 200, np.uint8)
    cut = shapes._ShapeSpec("square", (5.0, 50.0), 40.0, 0.0, (0, 0, 0))
    (obj,) = shapes._compose(background, [cut]).objects
    assert obj.box_xyxy[0] == 0
    almost_out = shapes._ShapeSpec("square", (-15.0, 50.0), 40.0, 0.0, (0, 0, 0))
    assert shapes._compose(background, [almost_out]).objects == ()


def test_same_seed_same_output(video: list[Scene]) -> None:
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    for _ in range(3):
        _assert_same(render_scene(rng_a, SHAPE_HW), render_scene(rng_b, SHAPE_HW))
    again = simulate_video(seed=5, n_frames=36, shape_hw=SHAPE_HW, fps=12, size_px=(25, 50))
    for a, b in zip(video, again, strict=True):
        _assert_same(a, b)
    other = next(iter(simulate_video(seed=6, n_frames=1, shape_hw=SHAPE_HW)))
    assert not np.array_equal(other.rgb, video[0].rgb)


def test_video_frames_are_exact_with_contiguous_empty_runs(video: list[Scene]) -> None:
    for scene in video:
        _assert_exact(scene)
    empty = np.array([not s.objects for s in video])
    assert 4 <= empty.sum() <= 9  # about 1/6 of 36 (plus any moment all shapes are away)
    assert not empty[0]
    runs = np.count_nonzero(np.diff(empty.astype(int)) == 1)
    assert 1 <= runs <= 3
    first_empty = video[int(np.argmax(empty))].rgb
    for scene in video:
        if not scene.objects:
            assert np.array_equal(scene.rgb, first_empty), "background is not constant"


@pytest.mark.parametrize("seed", [12345, 999, 3, 55])
def test_video_is_empty_only_in_its_planned_runs(seed: int) -> None:
    # Shapes that leave the frame are replaced at once, so no frame outside the planned empty
    # runs goes blank (seed 12345's lone shape used to leave 39 of 90 frames empty).
    counts = [len(s.objects) for s in simulate_video(seed, n_frames=90, shape_hw=(480, 640))]
    assert sum(c == 0 for c in counts) == 15
    assert max(counts) <= 4


def test_shapes_move_between_frames(video: list[Scene]) -> None:
    boxes = [s.objects[0].box_xyxy for s in video[:3] if s.objects]
    assert len(set(boxes)) > 1


def test_video_objects_keep_their_id_and_newcomers_get_new_ones() -> None:
    scenes = list(
        simulate_video(seed=21, n_frames=150, shape_hw=(240, 320), n_shapes=(4, 4), fps=15)
    )
    class_of: dict[int, str] = {}
    seen_in: dict[int, list[int]] = {}
    for index, scene in enumerate(scenes):
        ids = [o.object_id for o in scene.objects]
        assert None not in ids and len(set(ids)) == len(ids), f"frame {index}: {ids}"
        for obj in scene.objects:
            assert class_of.setdefault(obj.object_id, obj.class_name) == obj.class_name
            seen_in.setdefault(obj.object_id, []).append(index)
    # Four actors at a time: more ids than four means some left and newcomers were numbered
    # anew, in order of appearance; none comes back once it has left for good.
    assert len(seen_in) > 4
    assert sorted(seen_in) == list(range(len(seen_in)))
    firsts = [frames[0] for _, frames in sorted(seen_in.items())]
    assert firsts == sorted(firsts)
    still = render_scene(np.random.default_rng(1), SHAPE_HW, n_shapes=(2, 2))
    assert [o.object_id for o in still.objects] == [None, None]


def test_written_video_reopens_with_count_size_and_colours(
    tmp_path: Path, video: list[Scene]
) -> None:
    path = tmp_path / "v.avi"
    assert write_video(path, video, fps=12) == len(video)
    capture = cv2.VideoCapture(str(path))
    try:
        assert capture.isOpened()
        assert int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) == SHAPE_HW[1]
        assert int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == SHAPE_HW[0]
        decoded = []
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            decoded.append(bgr)
    finally:
        capture.release()
    assert len(decoded) == len(video)
    # Colour order: the decoded BGR frame matches the RGB scene only after conversion.
    bgr, rgb = decoded[0].astype(float), video[0].rgb.astype(float)
    assert np.abs(bgr[..., ::-1] - rgb).mean() < 6
    assert np.abs(bgr - rgb).mean() > np.abs(bgr[..., ::-1] - rgb).mean() + 5


def test_write_video_rejects_nothing_to_write(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no scenes"):
        write_video(tmp_path / "v.avi", [], fps=10)


# pycocotools 2.0.11's decode warns under numpy 2 (its Masks.__array__ lacks `copy`); harmless.
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_truth_jsonl_decodes_to_the_rendered_masks(tmp_path: Path, video: list[Scene]) -> None:
    path = tmp_path / "t.jsonl"
    assert write_truth(path, video) == len(video)
    lines = path.read_text().splitlines()
    assert len(lines) == len(video)
    for i, (line, scene) in enumerate(zip(lines, video, strict=True)):
        record = json.loads(line)
        assert (record["frame"], record["height"], record["width"]) == (i, *SHAPE_HW)
        assert len(record["objects"]) == len(scene.objects)
        for raw, obj in zip(record["objects"], scene.objects, strict=True):
            assert raw["class"] == obj.class_name
            assert obj.object_id is not None
            assert raw["id"] == obj.object_id
            rle = {"size": raw["mask"]["size"], "counts": raw["mask"]["counts"].encode()}
            decoded = mask_utils.decode(rle).astype(bool)
            assert decoded.shape == SHAPE_HW
            assert np.array_equal(decoded, obj.mask)
            ys, xs = np.nonzero(obj.mask)
            assert raw["box"] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def test_make_sample_cli(tmp_path: Path) -> None:
    args = ["make-sample", str(tmp_path), "--seed", "1", "--frames", "6", "--size", "160x120"]
    result = CliRunner().invoke(shapes_command, [*args, "--fps", "10"])
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "shapes.truth.jsonl").read_text().splitlines()) == 6
    capture = cv2.VideoCapture(str(tmp_path / "shapes.avi"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    assert int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) == 160
    capture.release()

    bad = CliRunner().invoke(shapes_command, ["make-sample", str(tmp_path), "--size", "160"])
    assert bad.exit_code == 2
    assert "WIDTHxHEIGHT" in bad.output


def test_committed_sample_is_small_and_complete() -> None:
    video_path = SAMPLE_DIR / "shapes.avi"
    assert video_path.stat().st_size <= 4 * 1024 * 1024
    capture = cv2.VideoCapture(str(video_path))
    size = (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    n_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    assert size == (640, 480)
    records = [json.loads(x) for x in (SAMPLE_DIR / "shapes.truth.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(n_frames)) == list(range(90))
    assert any(not r["objects"] for r in records)
    assert all("id" in o for r in records for o in r["objects"])


def test_sample_truth_is_what_make_sample_writes(tmp_path: Path) -> None:
    # The README's seed and size: the committed truth (with ids) is what the world makes. The
    # video is not compared byte for byte: another OpenCV's MJPG encoder may differ.
    write_truth(tmp_path / "t.jsonl", simulate_video(7, 90, (480, 640), 15.0))
    assert (tmp_path / "t.jsonl").read_bytes() == (SAMPLE_DIR / "shapes.truth.jsonl").read_bytes()
