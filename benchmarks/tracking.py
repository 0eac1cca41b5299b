"""Tracking quality and cost: fresh shapes videos through the bundled model with tracking on.

    uv run python benchmarks/tracking.py [--seeds 101,102,103,104] [--frames 150] [--compare]
        [--shapes 3,5] [--empty-fraction 0]

For each seed: a 640x480, 15 fps video with 3 to 5 shapes moving at once (occluding each
other, some leaving the frame and replaced by newcomers entering from an edge; no empty
frames unless asked: the world's empty frames blank every object at once, which no camera
does), the bundled model with tracking (as ``livesegment run --json``), and IDF1, ID switches
per 100 frames and MOTA against the video's truth ids (``livesegment eval``'s figures). Then
the tracker's cost alone at 640x480 with 10 objects, and its share of a real frame's time.

``--compare`` re-tracks the same detections (boxes, scores, classes from the JSONL) with each
candidate tracker and lost-track time, so the choice can be checked on other seeds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np

import livesegment
from livesegment.evaluate import load_jsonl_frames
from livesegment.evaluate_tracks import TrackingReport, evaluate_tracks
from livesegment.output.sinks import JsonlSink
from livesegment.pipeline.tracking import Tracker
from livesegment.shapes.world import simulate_video, write_truth, write_video
from livesegment.structures import Detections

SIZE_HW = (480, 640)
FPS = 15.0
CLASS_NAMES = np.array(["BG", "circle", "square", "triangle"])


def make_video(folder: Path, seed: int, n_frames: int, world: dict) -> tuple[Path, Path]:
    video, truth = folder / f"shapes-{seed}.avi", folder / f"shapes-{seed}.truth.jsonl"
    write_video(video, simulate_video(seed, n_frames, SIZE_HW, FPS, **world), FPS)
    write_truth(truth, simulate_video(seed, n_frames, SIZE_HW, FPS, **world))
    return video, truth


def run_tracked(video: Path, detector, jsonl: Path) -> tuple[list[float], list[float]]:
    """Write the tracked JSONL; return each frame's (inference + tracking ms, tracking ms)."""
    frame_ms, track_ms = [], []
    sink = JsonlSink(jsonl)
    try:
        with livesegment.stream(video, model=detector, track=True) as results:
            for result in results:
                sink.write(result)
                frame_ms.append(result.inference_ms + result.track_ms)
                track_ms.append(result.track_ms)
    finally:
        sink.close()
    return frame_ms, track_ms


def row(name: str, frames: int, report: TrackingReport) -> str:
    return (
        f"{name:>24}  {frames:>6}  {report.idf1:5.3f}  "
        f"{report.id_switches_per_100_frames:12.2f}  {report.mota:5.3f}  "
        f"{report.track_ids:>6}/{report.truth_ids:<5}"
    )


HEADER = f"{'':>24}  {'frames':>6}  {'IDF1':>5}  {'IDsw/100 fr':>12}  {'MOTA':>5}  tracks/truth"


def detections_from_jsonl(path: Path) -> list[tuple[float, Detections]]:
    """(time_s, detections without masks) of each frame of a run's JSONL."""
    frames = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if "frame" not in record:
            continue
        found = record["detections"]
        names = np.array([d["class"] for d in found], dtype="<U16")
        frames.append(
            (
                record["time_s"],
                Detections(
                    xyxy=np.array([d["box"] for d in found], np.float32).reshape(-1, 4),
                    masks=np.zeros((len(found), 1, 1), bool),
                    scores=np.array([d["score"] for d in found], np.float32),
                    class_ids=np.searchsorted(CLASS_NAMES[1:], names).astype(np.int32) + 1,
                    class_names=names,
                ),
            )
        )
    return frames


def retrack(jsonl: Path, truth: Path, tracker: Tracker) -> TrackingReport:
    ids = [tracker.update(d, time_s).track_ids for time_s, d in detections_from_jsonl(jsonl)]
    records = []
    for frame, track_ids in zip(load_jsonl_frames(jsonl), ids, strict=True):
        instances = tuple(
            dataclasses.replace(i, identity=int(t) if t >= 0 else None)
            for i, t in zip(frame.instances, track_ids.tolist(), strict=True)
        )
        records.append(dataclasses.replace(frame, instances=instances))
    report = evaluate_tracks(records, load_jsonl_frames(truth))
    assert report is not None
    return report


def tracking_cost_ms(n_objects: int = 10, n_frames: int = 300, seed: int = 0) -> float:
    """Mean ms of ``Tracker.update`` for ``n_objects`` boxes moving across a 640x480 frame."""
    rng = np.random.default_rng(seed)
    h, w = SIZE_HW
    sides = rng.uniform(40, 120, (n_objects, 1))
    start = rng.uniform([0, 0], [w - 120, h - 120], (n_objects, 2))
    velocity = rng.uniform(-4, 4, (n_objects, 2))
    class_ids = rng.integers(1, 4, n_objects).astype(np.int32)
    masks = np.zeros((n_objects, h, w), bool)  # not read by the tracker; full size as in a run
    tracker = Tracker(fps=30.0)
    times = []
    for index in range(n_frames):
        corner = np.clip(start + velocity * index, 0, [w - 120, h - 120])
        detections = Detections(
            xyxy=np.hstack([corner, corner + sides]).astype(np.float32),
            masks=masks,
            scores=rng.uniform(0.7, 1.0, n_objects).astype(np.float32),
            class_ids=class_ids,
            class_names=CLASS_NAMES[class_ids],
        )
        started = time.perf_counter()
        tracker.update(detections, index / 30.0)
        times.append(time.perf_counter() - started)
    return 1000 * float(np.mean(times[10:]))  # after the trackers of each class exist


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="101,102,103,104")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--shapes", default="3,5", help="min,max shapes at once")
    parser.add_argument("--empty-fraction", type=float, default=0.0)
    parser.add_argument("--keep", type=Path, default=None, help="keep videos and JSONL here")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    low, high = (int(n) for n in args.shapes.split(","))
    world = {"n_shapes": (low, high), "empty_fraction": args.empty_fraction}

    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        detector = livesegment.Detector.load("shapes")
        print(f"bundled model, tracking on; {args.frames} frames, 640x480, {FPS:g} fps, {world}")
        print(HEADER)
        runs, frame_ms, track_ms = [], [], []
        for seed in seeds:
            video, truth = make_video(folder, seed, args.frames, world)
            jsonl = folder / f"shapes-{seed}.jsonl"
            frames, tracking = run_tracked(video, detector, jsonl)
            # The first frame of a run imports trackers and builds its filters: startup, not
            # a frame's cost.
            frame_ms += frames[1:]
            track_ms += tracking[1:]
            report = evaluate_tracks(load_jsonl_frames(jsonl), load_jsonl_frames(truth))
            assert report is not None
            runs.append((seed, jsonl, truth, report))
            print(row(f"seed {seed}", report.frames_evaluated, report))
        total = sum(r.frames_evaluated for *_, r in runs)
        mean_idf1 = np.mean([r.idf1 for *_, r in runs])
        switches = 100 * sum(r.id_switches for *_, r in runs) / total
        print(f"{'all seeds':>24}  {total:>6}  {mean_idf1:5.3f}  {switches:12.2f}  (mean IDF1)")

        share = 100 * np.mean(track_ms) / np.mean(frame_ms)
        print(
            f"\nin these runs: tracking {np.mean(track_ms):.2f} ms (median "
            f"{np.median(track_ms):.2f}, 95th percentile {np.percentile(track_ms, 95):.2f}) "
            f"of a {np.mean(frame_ms):.0f} ms frame ({share:.1f}%)"
        )
        print(f"tracking alone, 640x480, 10 objects: {tracking_cost_ms():.2f} ms per frame")

        if args.compare:
            from trackers import ByteTrackTracker, OCSORTTracker

            print("\nthe same detections re-tracked:")
            print(HEADER)
            for name, factory in (("ByteTrack", ByteTrackTracker), ("OC-SORT", OCSORTTracker)):
                for lost_s in (0.5, 1.0, 2.0):
                    reports = [
                        retrack(jsonl, truth, Tracker(FPS, lost_s, factory=factory))
                        for _, jsonl, truth, _ in runs
                    ]
                    frames = sum(r.frames_evaluated for r in reports)
                    idf1 = np.mean([r.idf1 for r in reports])
                    per_100 = 100 * sum(r.id_switches for r in reports) / frames
                    mota = np.mean([r.mota for r in reports])
                    label = f"{name} lost {lost_s:g} s"
                    print(f"{label:>24}  {frames:>6}  {idf1:5.3f}  {per_100:12.2f}  {mota:5.3f}")


if __name__ == "__main__":
    main()
