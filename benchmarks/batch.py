"""Batch throughput: the same videos one after another, with local workers, and on Ray.

    uv run python benchmarks/batch.py [--videos 6] [--frames 60] [--size 320x240]

Writes fresh shapes videos, then runs ``livesegment batch`` (a new process each, as a user
types it, model loading included) four ways: sequential (``--workers 1``), ``--workers 2``,
``--ray`` on a local instance, and ``--ray=ADDRESS`` on a simulated two-node cluster
(``ray.cluster_utils.Cluster``, one CPU per node). Prints each way's wall time and its speed-up
over sequential, then per node: frames, seconds spent segmenting and frames a second (from the
manifest, model loading excluded), the figure to multiply by the nodes of a real cluster.
Every run's JSONL files are compared with the sequential run's (timings aside).
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from livesegment.shapes.world import simulate_video, write_video

FPS = 10.0


def batch(inputs: Path, out: Path, *extra: str) -> float:
    started = time.monotonic()
    command = [sys.executable, "-m", "livesegment", "batch", str(inputs), "-d", str(out), *extra]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return time.monotonic() - started


def detections(out: Path) -> dict[str, list[dict]]:
    found = {}
    for path in sorted(out.glob("*.jsonl")):
        if path.name == "manifest.jsonl":
            continue
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        lines[-1]["summary"].pop("elapsed_s")
        found[path.name] = lines
    return found


def per_node(out: Path) -> dict[str, tuple[int, float]]:
    totals: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    for line in (out / "manifest.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["status"] == "done":
            node = record["node"].split()[-1][:8]
            totals[node][0] += record["frames"]
            totals[node][1] += record["seconds"]
    return {node: (int(frames), seconds) for node, (frames, seconds) in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--size", default="320x240")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        inputs = folder / "inputs"
        inputs.mkdir()
        for seed in range(args.videos):
            scenes = simulate_video(100 + seed, args.frames, (height, width), FPS)
            write_video(inputs / f"clip{seed}.avi", scenes, FPS)
        print(f"{args.videos} videos of {args.frames} frames at {width}x{height}")
        ways = {"sequential (--workers 1)": ("--workers", "1"), "--workers 2": ("--workers", "2")}
        ways["--ray (local instance)"] = ("--ray",)
        from ray.cluster_utils import Cluster

        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ways["--ray=ADDRESS (2 nodes x 1 CPU)"] = (f"--ray={cluster.address}",)
        try:
            walls, outputs = {}, {}
            for name, extra in ways.items():
                outputs[name] = folder / name.split()[0].strip("-(") / str(len(walls))
                walls[name] = batch(inputs, outputs[name], *extra)
        finally:
            cluster.shutdown()
        reference = detections(outputs["sequential (--workers 1)"])
        total_frames = args.videos * args.frames
        first = next(iter(walls.values()))
        print(f"\n{'way':34} {'wall s':>8} {'frames/s':>9} {'speed-up':>9}  JSONL equal")
        for name, wall in walls.items():
            equal = detections(outputs[name]) == reference
            print(f"{name:34} {wall:8.1f} {total_frames / wall:9.2f} {first / wall:8.2f}x  {equal}")
        print("\nper node (segmenting only, model loading excluded):")
        for name in ("--ray=ADDRESS (2 nodes x 1 CPU)", "sequential (--workers 1)"):
            for node, (frames, seconds) in per_node(outputs[name]).items():
                print(
                    f"  {name:34} node {node}: {frames} frames in {seconds:.1f} s = "
                    f"{frames / seconds:.2f} frames/s"
                )


if __name__ == "__main__":
    main()
