"""Run-time filtering, and a reason for every empty result."""

from __future__ import annotations

import numpy as np

from livesegment.model.filters import one_label_per_object, select
from livesegment.structures import Candidates


def make_candidates(rows):
    """rows: (class_name, score, xyxy); class ids follow BG, circle, square, triangle, dog."""
    ids = {"circle": 1, "square": 2, "triangle": 3, "dog": 4}
    rows = sorted(rows, key=lambda r: -r[1])
    return Candidates(
        xyxy=np.array([r[2] for r in rows], np.float32).reshape(-1, 4),
        scores=np.array([r[1] for r in rows], np.float32),
        class_ids=np.array([ids[r[0]] for r in rows], np.int32),
        class_names=np.array([r[0] for r in rows]),
        mask_probs=np.ones((len(rows), 28, 28), np.float32),
        shape_hw=(100, 100),
    )


def test_threshold_keeps_confident():
    c = make_candidates([("circle", 0.9, (0, 0, 10, 10)), ("square", 0.4, (50, 50, 60, 60))])
    selection = select(c, 0.5)
    assert c.class_names[selection.keep].tolist() == ["circle"]
    assert selection.empty_reason is None


def test_below_threshold_names_best():
    c = make_candidates([("circle", 0.31, (0, 0, 10, 10)), ("square", 0.2, (50, 50, 60, 60))])
    selection = select(c, 0.5)
    assert len(selection.keep) == 0
    assert selection.empty_reason == "best: circle 0.31 < 0.50"


def test_class_filter_names_what_it_removed():
    c = make_candidates(
        [
            ("dog", 0.91, (0, 0, 10, 10)),
            ("square", 0.8, (50, 50, 60, 60)),
            ("circle", 0.6, (20, 20, 30, 30)),
        ]
    )
    selection = select(c, 0.5, frozenset({"triangle"}))
    assert len(selection.keep) == 0
    assert selection.empty_reason == (
        "3 found, none in --classes: dog 0.91, square 0.80, circle 0.60"
    )
    assert c.class_names[select(c, 0.5, frozenset({"circle"})).keep].tolist() == ["circle"]


def test_class_filter_with_weak_wanted_class_reports_it():
    c = make_candidates([("square", 0.3, (0, 0, 10, 10)), ("triangle", 0.2, (50, 50, 60, 60))])
    assert select(c, 0.5, frozenset({"triangle"})).empty_reason == "best: triangle 0.20 < 0.50"


def test_nothing_found():
    c = make_candidates([])
    assert select(c, 0.5).empty_reason == "nothing found by the model"


def test_one_label_per_object():
    # The same shape reported as square and triangle keeps the higher score only.
    xyxy = np.array([[10, 10, 50, 50], [11, 10, 50, 51], [60, 60, 90, 90]], np.float32)
    scores = np.array([0.7, 0.9, 0.8], np.float32)
    assert one_label_per_object(xyxy, scores).tolist() == [1, 2]
