"""Scoring detections JSONL against truth JSONL written by the shapes world."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from livesegment.evaluate import encode_mask as encode_mask_rle
from livesegment.evaluate import evaluate, load_jsonl_frames
from livesegment.shapes import Scene, simulate_video, write_truth

SHAPE_HW = (96, 128)


@pytest.fixture(scope="module")
def scenes() -> list[Scene]:
    return list(simulate_video(seed=3, n_frames=18, shape_hw=SHAPE_HW, fps=10, size_px=(25, 40)))


@pytest.fixture
def truth_path(tmp_path: Path, scenes: list[Scene]) -> Path:
    path = tmp_path / "truth.jsonl"
    write_truth(path, scenes)
    return path


def _write_detections(path: Path, frames: dict[int, list[tuple[str, float, np.ndarray]]]) -> Path:
    h, w = SHAPE_HW
    with path.open("w") as file:
        for index, dets in frames.items():
            detections = [
                {"class": c, "score": s, "box": [0, 0, 1, 1], "mask": encode_mask_rle(m)}
                for c, s, m in dets
            ]
            record = {"frame": index, "time_s": index / 10, "width": w, "height": h}
            file.write(json.dumps({**record, "detections": detections}) + "\n")
        file.write(json.dumps({"summary": {"frames": len(frames)}}) + "\n")
    return path


def _as_detections(scenes: list[Scene]) -> dict[int, list[tuple[str, float, np.ndarray]]]:
    return {i: [(o.class_name, 0.9, o.mask) for o in s.objects] for i, s in enumerate(scenes)}


def test_truth_against_itself_is_perfect(truth_path: Path, scenes: list[Scene]) -> None:
    truth = load_jsonl_frames(truth_path)
    report = evaluate(truth, truth)
    n_objects = sum(len(s.objects) for s in scenes)
    n_empty = sum(not s.objects for s in scenes)
    assert n_objects > 0 and n_empty > 0
    assert (report.recall, report.precision, report.mean_iou) == (1.0, 1.0, 1.0)
    assert report.matched == report.truth_objects == report.detections == n_objects
    assert report.frames_evaluated == len(scenes)
    assert report.frames_missing == 0
    assert report.empty_truth_frames == n_empty
    assert report.false_detections_on_empty == 0
    assert report.false_detections_per_empty_frame == 0.0
    assert all(c.recall == c.precision == 1.0 for c in report.per_class)


def test_detections_file_with_summary_line_scores_like_truth(
    tmp_path: Path, truth_path: Path, scenes: list[Scene]
) -> None:
    det_path = _write_detections(tmp_path / "det.jsonl", _as_detections(scenes))
    frames = load_jsonl_frames(det_path)
    assert [f.frame for f in frames] == list(range(len(scenes)))  # summary line skipped
    report = evaluate(frames, load_jsonl_frames(truth_path))
    assert (report.recall, report.precision, report.mean_iou) == (1.0, 1.0, 1.0)


def test_wrong_class_shifted_mask_and_empty_frame_detections(
    tmp_path: Path, truth_path: Path, scenes: list[Scene]
) -> None:
    dets = _as_detections(scenes)
    full = next(i for i, s in enumerate(scenes) if len(s.objects) >= 2)
    empty = [i for i, s in enumerate(scenes) if not s.objects]
    first, second = scenes[full].objects[:2]
    wrong_class = "square" if first.class_name != "square" else "circle"
    x1, _, x2, _ = second.box_xyxy
    shift = x2 - x1  # a whole width away: IoU 0
    shifted = np.roll(second.mask, shift, axis=1)
    dets[full] = [(wrong_class, 0.9, first.mask), (second.class_name, 0.8, shifted)]
    dets[full] += [(o.class_name, 0.7, o.mask) for o in scenes[full].objects[2:]]
    dets[empty[0]] = [("circle", 0.6, first.mask), ("person", 0.5, second.mask)]
    truth = load_jsonl_frames(truth_path)
    report = evaluate(load_jsonl_frames(_write_detections(tmp_path / "d.jsonl", dets)), truth)

    n_objects = sum(len(s.objects) for s in scenes)
    assert report.truth_objects == n_objects
    assert report.matched == n_objects - 2
    assert report.detections == n_objects + 2
    assert report.recall == pytest.approx((n_objects - 2) / n_objects)
    assert report.precision == pytest.approx((n_objects - 2) / (n_objects + 2))
    assert report.mean_iou == 1.0
    assert report.false_detections_on_empty == 2
    assert report.empty_frames_with_detections == 1
    assert report.false_detections_per_empty_frame == pytest.approx(2 / len(empty))
    person = next(c for c in report.per_class if c.class_name == "person")
    assert (person.truth_objects, person.detections, person.matched) == (0, 1, 0)
    assert math.isnan(person.recall)
    assert person.precision == 0.0
    text = report.format()
    assert "n/a" in text and "person" in text
    assert f"{report.matched}/{report.truth_objects}" in text
    # Found but misnamed is told apart from missed: the shifted mask outlines nothing.
    assert report.wrong_class == ((first.class_name, wrong_class, 1),)
    assert f"{first.class_name} as {wrong_class} 1" in text
    assert report.to_dict()["wrong_class"] == [
        {"truth": first.class_name, "detected_as": wrong_class, "count": 1}
    ]


def test_a_misnamed_duplicate_of_a_matched_object_is_not_a_wrong_class(
    tmp_path: Path, truth_path: Path, scenes: list[Scene]
) -> None:
    dets = _as_detections(scenes)
    full = next(i for i, s in enumerate(scenes) if s.objects)
    obj = scenes[full].objects[0]
    other = "square" if obj.class_name != "square" else "circle"
    # The misnamed copy scores higher, yet the same-class detection takes the object.
    dets[full] = [(other, 0.95, obj.mask)] + dets[full]
    report = evaluate(
        load_jsonl_frames(_write_detections(tmp_path / "d.jsonl", dets)),
        load_jsonl_frames(truth_path),
    )
    assert report.recall == 1.0
    assert report.wrong_class == ()
    assert "wrong class" not in report.format()


def test_iou_below_threshold_is_a_miss_and_above_is_a_match(
    tmp_path: Path, scenes: list[Scene]
) -> None:
    scene = next(s for s in scenes if s.objects)
    obj = scene.objects[0]
    x1, _, x2, _ = obj.box_xyxy
    width = x2 - x1
    index = 0
    write_truth(tmp_path / "one.truth.jsonl", [Scene(scene.rgb, (obj,))])
    truth = load_jsonl_frames(tmp_path / "one.truth.jsonl")
    for shift, expected in [(1, 1), (width // 2, 0)]:
        moved = np.roll(obj.mask, shift, axis=1)
        dets = {index: [(obj.class_name, 0.9, moved)]}
        report = evaluate(load_jsonl_frames(_write_detections(tmp_path / "d.jsonl", dets)), truth)
        assert report.matched == expected, f"shift {shift}"
        if expected:
            iou = (moved & obj.mask).sum() / (moved | obj.mask).sum()
            assert report.mean_iou == pytest.approx(iou)
        else:
            assert math.isnan(report.mean_iou)


def test_greedy_matching_prefers_higher_score(
    tmp_path: Path, truth_path: Path, scenes: list[Scene]
) -> None:
    index = next(i for i, s in enumerate(scenes) if s.objects)
    obj = scenes[index].objects[0]
    rest = [(o.class_name, 0.5, o.mask) for o in scenes[index].objects[1:]]
    eroded = obj.mask & np.roll(obj.mask, 2, axis=0)  # still IoU >= 0.5, but below 1
    dets = {index: [(obj.class_name, 0.4, obj.mask), (obj.class_name, 0.95, eroded), *rest]}
    truth = [f for f in load_jsonl_frames(truth_path) if f.frame == index]
    report = evaluate(load_jsonl_frames(_write_detections(tmp_path / "d.jsonl", dets)), truth)
    assert report.matched == len(scenes[index].objects)
    assert report.detections == report.matched + 1
    assert report.mean_iou < 1.0  # the higher-scored, worse mask took the match


def test_missing_frames_are_counted_not_scored(
    tmp_path: Path, truth_path: Path, scenes: list[Scene]
) -> None:
    dets = _as_detections(scenes)
    del dets[0], dets[1]
    dets[len(scenes) + 5] = []
    report = evaluate(
        load_jsonl_frames(_write_detections(tmp_path / "d.jsonl", dets)),
        load_jsonl_frames(truth_path),
    )
    assert report.frames_evaluated == len(scenes) - 2
    assert (report.frames_only_in_truth, report.frames_only_in_detections) == (2, 1)
    assert report.recall == 1.0
    assert "2 without detections line" in report.format()


def test_nothing_to_score_gives_nan_shown_as_na() -> None:
    report = evaluate([], [])
    assert math.isnan(report.recall) and math.isnan(report.precision)
    assert report.format().count("n/a") >= 3
    assert report.to_dict()["recall"] is None


def test_bad_inputs_are_rejected(tmp_path: Path, truth_path: Path) -> None:
    truth = load_jsonl_frames(truth_path)
    with pytest.raises(ValueError, match="iou_threshold"):
        evaluate(truth, truth, iou_threshold=0.0)
    record = {"frame": 0, "width": 10, "height": 10, "objects": []}
    twice = tmp_path / "twice.jsonl"
    twice.write_text(json.dumps(record) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(ValueError, match="appears twice"):
        load_jsonl_frames(twice)
    wrong = tmp_path / "wrong.jsonl"
    mask = encode_mask_rle(np.ones((5, 5), bool))
    bad = {**record, "objects": [{"class": "circle", "box": [0, 0, 5, 5], "mask": mask}]}
    wrong.write_text(json.dumps(bad) + "\n")
    with pytest.raises(ValueError, match="mask size"):
        load_jsonl_frames(wrong)


def test_carried_frames_are_scored_apart_from_inferred_ones(
    tmp_path: Path, truth_path: Path, scenes: list[Scene]
) -> None:
    # Odd frames are "carried": their masks are last frame's, so they overlap less.
    path = tmp_path / "carried.jsonl"
    _write_detections(path, _as_detections(scenes))
    lines = path.read_text().splitlines()
    for index in range(1, len(scenes), 2):
        record = json.loads(lines[index])
        previous = json.loads(lines[index - 1])
        record.update(carried=True, carried_from=index - 1, detections=previous["detections"])
        lines[index] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")

    frames = load_jsonl_frames(path)
    assert [f.carried for f in frames] == [i % 2 == 1 for i in range(len(scenes))]
    report = evaluate(frames, load_jsonl_frames(truth_path))
    assert report.inferred is not None and report.carried is not None
    assert report.inferred.frames + report.carried.frames == report.frames_evaluated
    assert report.inferred.mean_iou == 1.0 and report.inferred.recall == 1.0
    assert report.carried.mean_iou < 1.0
    assert report.carried.matched + report.inferred.matched == report.matched
    assert report.to_dict()["carried"]["frames"] == report.carried.frames
    assert "carried frames     9 frames: mean mask IoU" in report.format()

    plain = evaluate(load_jsonl_frames(truth_path), load_jsonl_frames(truth_path))
    assert plain.carried is None and "carried" not in plain.to_dict()
    assert "carried" not in plain.format()
