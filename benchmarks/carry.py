"""Carried masks: how well optical flow moves the latest masks onto the frames a slow model
has no time for, and what it costs.

    uv run python benchmarks/carry.py [--seeds 201,202,203] [--frames 300] [--gap 10]

For each seed: a 640x480, 30 fps shapes video (3 to 5 shapes moving and spinning, occluding
each other, leaving and entering). Every ``--gap`` frames the truth masks of that frame play
the part of an inference, and ``Carrier`` (``livesegment/pipeline/carry.py``) moves them onto
the next ``gap - 1`` frames; each carried mask is scored against the truth mask of the same
object (IoU; 0 when the object was carried but is gone, objects that appeared meanwhile are
not counted: no carrying can know them). Motions compared: ``rigid`` (rotation + translation
per object from Lucas-Kanade corners, the default), ``shift`` (median translation only) and
``hold`` (masks left where they were: what repeating the last result shows). A gap of 10 is a
model at 3 fps on a 30 fps camera.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from livesegment.pipeline.carry import Carrier
from livesegment.shapes.world import simulate_video
from livesegment.structures import Detections, Frame, tight_boxes

SIZE_HW = (480, 640)
FPS = 30.0


def _detections(scene) -> tuple[Detections, np.ndarray]:
    objects = scene.objects
    if not objects:
        return Detections.empty(scene.shape_hw), np.zeros(0, np.int64)
    masks = np.stack([o.mask for o in objects])
    boxes = tight_boxes(masks)
    names = np.array([o.class_name for o in objects])
    detections = Detections(
        boxes.astype(np.float32),
        masks,
        np.ones(len(objects), np.float32),
        np.ones(len(objects), np.int32),
        names,
        mask_boxes=boxes,
        track_ids=np.array([o.object_id for o in objects], np.int64),
    )
    return detections, detections.track_ids


def _frame(scene, index: int) -> Frame:
    bgr = np.ascontiguousarray(scene.rgb[:, :, ::-1])
    return Frame(index, index / FPS, bgr, bgr, 0.0)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def measure(seed: int, frames: int, gap: int, motion: str) -> tuple[list[float], list[float]]:
    """IoUs of carried masks and the carrying time per frame (ms)."""
    scenes = list(simulate_video(seed, frames, SIZE_HW, FPS, n_shapes=(3, 5), empty_fraction=0.0))
    ious, costs = [], []
    carrier = Carrier(motion=motion)
    for start in range(0, frames - 1, gap):
        base, _ = _detections(scenes[start])
        carrier.start(_frame(scenes[start], start), base)
        for index in range(start + 1, min(start + gap, frames)):
            began = time.perf_counter()
            moved = carrier.carry(_frame(scenes[index], index))
            costs.append((time.perf_counter() - began) * 1000)
            truth = {o.object_id: o.mask for o in scenes[index].objects}
            carried = dict(zip(moved.track_ids.tolist(), moved.masks, strict=True))
            for object_id in base.track_ids.tolist():
                if object_id not in truth:
                    continue  # gone from view: no truth to score against
                mask = carried.get(object_id)
                ious.append(0.0 if mask is None else _iou(mask, truth[object_id]))
    return ious, costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="201,202,203")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--gap", type=int, default=10)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"{args.frames} frames at 30 fps, 640x480, an inference every {args.gap} frames")
    for motion in Carrier.MOTIONS:
        all_ious, all_costs = [], []
        for seed in seeds:
            ious, costs = measure(seed, args.frames, args.gap, motion)
            all_ious += ious
            all_costs += costs
            print(f"  {motion:<6} seed {seed}: mean IoU {np.mean(ious):.3f} ({len(ious)} masks)")
        print(
            f"{motion:<6} mean IoU {np.mean(all_ious):.3f}, share >= 0.5 "
            f"{np.mean(np.array(all_ious) >= 0.5):.3f}; per frame median "
            f"{np.median(all_costs):.2f} ms, p90 {np.percentile(all_costs, 90):.2f} ms"
        )


if __name__ == "__main__":
    main()
