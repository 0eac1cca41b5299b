"""What each detected object costs after the network: unmold (full-size masks), draw (masks,
boxes, labels) and JSONL (RLE-encode), in ms per frame at 10 and 50 objects.

    uv run python benchmarks/per_object.py [--size 640x480] [--objects 10,50] [--repeat 30]

The candidates are synthetic (elliptic mask probabilities in boxes 30-160 px wide, fixed seed),
so the figure measures this package's code alone, not the network.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from livesegment.model.detector import unmold
from livesegment.output.overlay import OverlayStyle, annotate
from livesegment.output.sinks import detections_to_json
from livesegment.structures import Candidates

MASK_SIDE = 28
CLASS_NAMES = np.array(["BG", "circle", "square", "triangle"])


def synthetic_candidates(n_objects: int, size_wh: tuple[int, int], seed: int = 0) -> Candidates:
    """``n_objects`` candidates in a frame of ``size_wh``, boxes 30-160 px, soft ellipses."""
    rng = np.random.default_rng(seed)
    width, height = size_wh
    sides = rng.uniform(30, 160, (n_objects, 2))
    x1 = rng.uniform(0, width - sides[:, 0])
    y1 = rng.uniform(0, height - sides[:, 1])
    xyxy = np.stack([x1, y1, x1 + sides[:, 0], y1 + sides[:, 1]], axis=1).astype(np.float32)
    grid = (np.arange(MASK_SIDE) + 0.5) / MASK_SIDE * 2 - 1
    radius = np.hypot(grid[None, :], grid[:, None])
    wobble = rng.uniform(0.7, 1.0, (n_objects, 1, 1))
    probs = np.clip(1.5 - radius[None] / wobble, 0, 1).astype(np.float32)
    class_ids = rng.integers(1, len(CLASS_NAMES), n_objects).astype(np.int32)
    return Candidates(
        xyxy=xyxy,
        scores=np.sort(rng.uniform(0.7, 1.0, n_objects))[::-1].astype(np.float32),
        class_ids=class_ids,
        class_names=CLASS_NAMES[class_ids],
        mask_probs=probs,
        shape_hw=(height, width),
    )


def measure(
    n_objects: int, size_wh: tuple[int, int], repeat: int, statistic=np.median
) -> dict[str, float]:
    """ms per frame of each stage over ``repeat`` frames (median, or ``statistic``)."""
    candidates = synthetic_candidates(n_objects, size_wh)
    rng = np.random.default_rng(1)
    bgr = rng.integers(0, 256, (size_wh[1], size_wh[0], 3), np.uint8)
    keep = np.arange(n_objects)
    style = OverlayStyle()
    hud = [
        "inference 10.0 FPS (80 ms)  capture 15.0 FPS",
        "latency 90 ms  dropped 0",
        "threshold 0.70  classes: all",
    ]
    times: dict[str, list[float]] = {"unmold": [], "draw": [], "encode": []}
    for _ in range(repeat):
        started = time.perf_counter()
        detections = unmold(candidates, keep)
        unmolded = time.perf_counter()
        annotate(bgr, detections, None, hud, style)
        drawn = time.perf_counter()
        detections_to_json(detections)
        encoded = time.perf_counter()
        times["unmold"].append(unmolded - started)
        times["draw"].append(drawn - unmolded)
        times["encode"].append(encoded - drawn)
    figures = {stage: float(statistic(values)) * 1000 for stage, values in times.items()}
    figures["total"] = sum(figures.values())
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="640x480", help="frame size WxH")
    parser.add_argument("--objects", default="10,50", help="object counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument(
        "--min",
        action="store_true",
        help="the fastest frame instead of the median (steadier on a busy machine)",
    )
    args = parser.parse_args()
    size_wh = tuple(int(v) for v in args.size.lower().split("x"))
    statistic = np.min if args.min else np.median
    print(f"{args.size}, {statistic.__name__} of {args.repeat} frames, ms per frame")
    print(f"{'objects':>7} {'unmold':>8} {'draw':>8} {'encode':>8} {'total':>8} {'per object':>11}")
    for n_objects in (int(v) for v in args.objects.split(",")):
        ms = measure(n_objects, size_wh, args.repeat, statistic)
        print(
            f"{n_objects:>7} {ms['unmold']:8.2f} {ms['draw']:8.2f} {ms['encode']:8.2f} "
            f"{ms['total']:8.2f} {ms['total'] / n_objects:11.3f}"
        )


if __name__ == "__main__":
    main()
