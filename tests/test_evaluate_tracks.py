"""Tracking scores (IDF1, ID switches, MOTA) of hand-built files with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from livesegment.cli import main
from livesegment.evaluate import encode_mask, load_jsonl_frames
from livesegment.evaluate_tracks import evaluate_tracks

SHAPE_HW = (40, 60)


def square(x: int, y: int = 5, side: int = 10) -> np.ndarray:
    mask = np.zeros(SHAPE_HW, bool)
    mask[y : y + side, x : x + side] = True
    return mask


def write(path: Path, key: str, frames: list[list[dict]]) -> Path:
    """A JSONL of ``frames``; each object: class, mask and (``id_key``) its identity."""
    h, w = SHAPE_HW
    with path.open("w") as file:
        for index, objects in enumerate(frames):
            items = [{**o, "mask": encode_mask(o["mask"])} for o in objects]
            record = {"frame": index, "width": w, "height": h, key: items}
            file.write(json.dumps(record) + "\n")
    return path


def obj(mask: np.ndarray, identity: int | None, id_key: str, name: str = "square") -> dict:
    out = {"class": name, "mask": mask, "score": 0.9}
    if identity is not None:
        out[id_key] = identity
    return out


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """One truth object (id 7) over 4 frames. The tracks: #1 on frames 0-1, #2 on frame 2
    (one switch), nothing on frame 3 (one miss), and #9 on frame 0 where nothing is (one
    false positive). A fifth frame has a triangle tracked as #2 over the square: wrong class,
    so one more miss and false positive, and no match.

    MOTA = 1 - (misses 2 + false positives 2 + switches 1) / 5 truth = 0.0.
    IDF1: the best one-to-one pairing is 7 <-> #1 (2 frames): 2 * 2 / (5 truth + 5 det) = 0.4.
    """
    truth = [[obj(square(5 + 5 * i), 7, "id")] for i in range(5)]
    detections = [
        [obj(square(5), 1, "track_id"), obj(square(45, 25), 9, "track_id")],
        [obj(square(10), 1, "track_id")],
        [obj(square(16), 2, "track_id")],  # IoU 0.8 with the truth: still a match
        [],
        [obj(square(25), 2, "track_id", name="triangle")],
    ]
    return (
        write(tmp_path / "dets.jsonl", "detections", detections),
        write(tmp_path / "truth.jsonl", "objects", truth),
    )


def test_known_idf1_switches_and_mota(pair: tuple[Path, Path]) -> None:
    dets, truth = (load_jsonl_frames(p) for p in pair)
    report = evaluate_tracks(dets, truth)
    assert report is not None
    assert report.frames_evaluated == 5
    assert report.id_switches == 1
    assert report.idf1 == pytest.approx(0.4)
    assert report.mota == pytest.approx(0.0)
    assert (report.truth_ids, report.track_ids) == (1, 3)
    assert report.id_switches_per_100_frames == pytest.approx(20.0)


def test_a_stricter_iou_loses_the_shifted_match(pair: tuple[Path, Path]) -> None:
    dets, truth = (load_jsonl_frames(p) for p in pair)
    report = evaluate_tracks(dets, truth, iou_threshold=0.9)
    # Frame 2 (IoU 0.82) no longer matches: no switch, 3 misses, 3 false positives.
    assert report is not None and report.id_switches == 0
    assert report.mota == pytest.approx(1 - 6 / 5)
    assert report.idf1 == pytest.approx(0.4)


def test_files_without_ids_give_no_tracking_report(tmp_path: Path) -> None:
    untracked = write(tmp_path / "d.jsonl", "detections", [[obj(square(5), None, "track_id")]])
    truth = write(tmp_path / "t.jsonl", "objects", [[obj(square(5), 3, "id")]])
    assert evaluate_tracks(load_jsonl_frames(untracked), load_jsonl_frames(truth)) is None
    assert evaluate_tracks(load_jsonl_frames(truth), load_jsonl_frames(untracked)) is None


def test_eval_command_reports_tracking_only_when_both_files_have_ids(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    dets, truth = map(str, pair)
    text = CliRunner().invoke(main, ["eval", dets, truth])
    assert text.exit_code == 0, text.output
    assert "IDF1               0.400" in text.output
    assert "ID switches        1 (20.00 per 100 frames)" in text.output
    assert "MOTA               0.000" in text.output
    as_json = json.loads(CliRunner().invoke(main, ["eval", dets, truth, "--json"]).output)
    assert as_json["tracking"]["idf1"] == pytest.approx(0.4)
    assert as_json["tracking"]["id_switches"] == 1
    assert as_json["recall"] == pytest.approx(3 / 5)  # the detection figures are still there

    # An old, untracked detections file: the detection report alone, as before.
    plain = tmp_path / "plain.jsonl"
    lines = [json.loads(x) for x in Path(dets).read_text().splitlines()]
    for line in lines:
        for d in line["detections"]:
            d.pop("track_id")
    plain.write_text("".join(json.dumps(x) + "\n" for x in lines))
    old = CliRunner().invoke(main, ["eval", str(plain), truth])
    assert old.exit_code == 0 and "recall" in old.output and "IDF1" not in old.output
    assert "tracking" not in json.loads(
        CliRunner().invoke(main, ["eval", str(plain), truth, "--json"]).output
    )
