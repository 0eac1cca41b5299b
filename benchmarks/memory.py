"""Does a long run grow? RSS of the real pipeline (``pipeline.run``: the bundled model, an
annotated H.264 video and a JSONL) at frame 500 and at the last frame.

    nice uv run python benchmarks/memory.py [--frames 5000] [--size 320x240] [--source VIDEO]

Without ``--source`` a shapes-world video of ``--frames`` frames is generated first (cached in
the temporary folder). Prints RSS every ``--every`` frames, then the growth between frame 500
and the last; issue 14 asks for less than 50 MB over 5,000 frames. Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from livesegment.model.cards import ModelSpec, resolve_model
from livesegment.model.detector import Detector
from livesegment.pipeline import RunOptions, run
from livesegment.shapes.world import make_sample

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    """This process's resident set size in MB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE / 2**20


def long_video(n_frames: int, size_wh: tuple[int, int]) -> Path:
    width, height = size_wh
    folder = Path(tempfile.gettempdir()) / f"livesegment-memory-{n_frames}-{width}x{height}"
    video = folder / "shapes.avi"
    if not video.exists():
        print(f"writing {n_frames} frames to {video} …", flush=True)
        make_sample(folder, 7, n_frames, (size_wh[1], size_wh[0]), 15.0)
    return video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--size", default="320x240", help="WxH of the generated video")
    parser.add_argument("--source", type=Path, help="a video to run instead of a generated one")
    parser.add_argument("--model", default="shapes")
    parser.add_argument("--every", type=int, default=250, help="print RSS every N frames")
    parser.add_argument("--first", type=int, default=500, help="the frame growth is counted from")
    args = parser.parse_args()
    size_wh = tuple(int(v) for v in args.size.lower().split("x"))
    source = args.source or long_video(args.frames, size_wh)
    samples: dict[int, float] = {}
    started = time.monotonic()

    def measuring_loader(spec: ModelSpec, options: RunOptions) -> Detector:
        detector = Detector.load(spec, threshold=options.threshold)
        network = detector.engine
        calls = 0

        def network_and_rss(rgb, shape_hw):
            nonlocal calls
            calls += 1
            if calls % args.every == 0 or calls == args.first:
                samples[calls] = rss_mb()
                print(
                    f"frame {calls:6d}: RSS {samples[calls]:7.1f} MB  "
                    f"({time.monotonic() - started:.0f} s)",
                    flush=True,
                )
            return network(rgb, shape_hw)

        detector.engine = network_and_rss
        return detector

    with tempfile.TemporaryDirectory() as out:
        options = RunOptions(
            source=str(source),
            display=False,
            progress=False,
            output=Path(out) / "memory.mp4",
            json_path=Path(out) / "memory.jsonl",
        )
        summary = run(options, resolve_model(args.model), load=measuring_loader)
    last = max(samples)
    print(f"frames processed: {summary.frames_processed}, mean FPS {summary.mean_fps:.2f}")
    if args.first in samples and last > args.first:
        growth = samples[last] - samples[args.first]
        print(
            f"RSS at frame {args.first}: {samples[args.first]:.1f} MB; at frame {last}: "
            f"{samples[last]:.1f} MB; growth {growth:+.1f} MB"
        )


if __name__ == "__main__":
    main()
