"""How fast is livesegment with the real model, and how does it compare with PixelLib?

    uv run python benchmarks/speed.py                 # about 10 minutes on 2 CPU cores
    uv run python benchmarks/speed.py --frames 20 --rounds 3 --out out/speed.json

In one process, on the same frames and weights, interleaved round by round so that machine
drift (other jobs, thermal state) hits every configuration alike:

(a) the network alone (``Segmenter`` on frames already resized), per speed preset;
(b) ``livesegment run`` end to end on a file (decode, infer, draw, encode, JSONL), per preset;
(c) PixelLib's own ``process_video`` loop at PixelLib's configuration.

Models: the bundled ``shapes`` on the bundled sample, and a COCO-shaped model (ResNet-101,
81 classes, random weights generated here and cached) on ``../shared/data/vtest.avi`` (skipped
when absent). For ``shapes`` it also reports the share of ``accurate``'s detections each preset
keeps and its quality on the model card's videos; for the COCO-shaped model, the time from the
command to the first processed frame against PixelLib's (fresh processes).

Prints a table and the ratios, and writes every number to a JSON file.
"""

from __future__ import annotations

import json
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cocomodel  # noqa: E402
import measure  # noqa: E402
import pixellib_loop  # noqa: E402
import startup  # noqa: E402

from livesegment.model.cards import SPEEDS, resolve_model  # noqa: E402
from livesegment.model.detector import Detector  # noqa: E402

SAMPLE = ROOT / "sample_videos" / "shapes.avi"
VTEST = ROOT.parent / "shared" / "data" / "vtest.avi"

log = logging.getLogger("benchmarks.speed")


def shapes_section(args: dict, folder: Path) -> dict:
    """Timing, kept detections and quality of the bundled model's presets."""
    spec = resolve_model("shapes")
    clip = measure.write_clip(SAMPLE, folder / "shapes-clip.avi", args["shapes_frames"])
    detectors = {
        speed: Detector.load(spec, speed=speed, threshold=spec.default_threshold)
        for speed in SPEEDS
    }
    pixellib = pixellib_loop.custom_segmenter(measure.pixellib_network(spec, detectors["accurate"]))
    timing = measure.interleaved(
        detectors, clip, folder, args["rounds"], pixellib=pixellib, fps=15.0
    )
    kept = measure.shapes_quality(detectors, args["shapes_seeds"], spec.default_threshold)
    return {"model": "shapes", "clip": str(SAMPLE), **timing, "quality": kept}


def write_card_measurements(section: dict, command: str) -> None:
    """Record in the bundled card what justifies its presets (``presets_measured``)."""
    card_path = ROOT / "models" / "shapes.json"
    card = json.loads(card_path.read_text())
    measured = {
        "command": command,
        "threshold": card["default_threshold"],
        "note": "kept_of_accurate: share of accurate's detections found again (same "
        "class, mask IoU >= 0.5) on the simulated videos of the listed seeds; "
        "speed-ups are medians of interleaved per-round ratios on the bundled "
        "sample",
    }
    for speed, row in section["summary"].items():
        if speed not in SPEEDS:
            continue
        quality = section["quality"][speed]
        measured[speed] = {
            **section["presets"][speed],
            "kept_of_accurate": quality["all"]["kept_of_accurate"],
            "network_speedup_vs_accurate": row["network_speedup_vs_accurate"],
            "run_speedup_vs_accurate": row["run_speedup_vs_accurate"],
            "by_seed": {
                seed: {k: v for k, v in values.items() if k != "ms_per_frame"}
                for seed, values in quality.items()
                if seed != "all"
            },
        }
    card["presets_measured"] = measured
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    click.echo(f"wrote presets_measured into {card_path}")


def coco_section(args: dict, folder: Path) -> dict:
    """Timing of the COCO-shaped model's presets against PixelLib; start-up of both."""
    cache = Path(args["cache"])
    cache.mkdir(parents=True, exist_ok=True)
    weights = cache / f"coco-random-seed{args['seed']}.h5"
    clip = measure.write_clip(Path(args["vtest"]), folder / "vtest-clip.avi", args["frames"])
    if not weights.exists():
        click.echo(f"generating {weights} (random ResNet-101 weights, calibrated once)")
        frames = measure.read_rgb(clip, 1, 1024)
        cocomodel.make_coco_weights(weights, frames, seed=args["seed"])
    note = json.loads(weights.with_suffix(".note.json").read_text())
    spec = resolve_model(str(weights))
    result = {
        "model": "coco-shaped (ResNet-101, 81 classes, random weights)",
        "weights": str(weights),
        "weights_note": note,
        "clip": str(args["vtest"]),
    }
    if args["timing"]:
        threshold = cocomodel.PIXELLIB_CONFIDENCE
        loaded = {}
        for speed in SPEEDS:
            started = time.monotonic()
            loaded[speed] = Detector.load(spec, speed=speed, threshold=threshold)
            log.info("%s loaded in %.1fs", speed, time.monotonic() - started)
        pixellib = pixellib_loop.coco_segmenter(weights) if args["pixellib"] else None
        result |= measure.interleaved(
            loaded, clip, folder, args["rounds"], pixellib=pixellib, fps=10.0
        )
    if args["startup"]:
        one_frame = measure.write_clip(Path(args["vtest"]), folder / "vtest-1.avi", 1)
        result["startup"] = startup.compare(
            weights, one_frame, folder, args["startup_rounds"], args["pixellib"]
        )
    return result


@click.command()
@click.option(
    "--frames",
    type=click.IntRange(1),
    default=6,
    show_default=True,
    help="Frames of vtest.avi per configuration and round (COCO-shaped model).",
)
@click.option(
    "--shapes-frames",
    type=click.IntRange(1),
    default=90,
    show_default=True,
    help="Frames of the bundled sample per configuration and round.",
)
@click.option(
    "--rounds",
    type=click.IntRange(1),
    default=3,
    show_default=True,
    help="Interleaved rounds; every figure is the median over rounds.",
)
@click.option(
    "--shapes-seeds",
    default="12345,4242",
    show_default=True,
    help="Simulated videos (the model card's) for the kept-detections check.",
)
@click.option("--startup-rounds", type=click.IntRange(1), default=2, show_default=True)
@click.option("--vtest", type=click.Path(path_type=Path), default=VTEST, show_default=True)
@click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    default=ROOT / "out" / "bench-cache",
    show_default=True,
    help="Where the generated COCO-shaped weights are kept between runs.",
)
@click.option(
    "--seed",
    type=int,
    default=14,
    show_default=True,
    help="Seed of the COCO-shaped random weights.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=ROOT / "out" / "speed.json",
    show_default=True,
)
@click.option("--shapes/--no-shapes", default=True, help="Measure the bundled model.")
@click.option("--coco/--no-coco", default=True, help="Measure the COCO-shaped model.")
@click.option("--pixellib/--no-pixellib", default=True, help="Compare with PixelLib's loop.")
@click.option(
    "--startup/--no-startup",
    default=True,
    help="Time the command to the first frame (fresh processes).",
)
@click.option(
    "--timing/--no-timing",
    default=True,
    help="Time the presets and PixelLib's loop (--no-timing: start-up only).",
)
@click.option(
    "--write-card",
    is_flag=True,
    help="Record the shapes presets' measurements in models/shapes.json.",
)
def main(**args) -> None:
    """Benchmark livesegment's speed presets against the network alone and PixelLib."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args["shapes_seeds"] = [int(s) for s in args["shapes_seeds"].split(",") if s.strip()]
    report = {
        "machine": measure.machine(),
        "python": platform.python_version(),
        "frames": args["frames"],
        "rounds": args["rounds"],
        "sections": [],
    }
    with tempfile.TemporaryDirectory(prefix="livesegment-bench-") as tmp:
        folder = Path(tmp)
        if args["shapes"]:
            report["sections"].append(shapes_section(args, folder))
            measure.print_section(report["sections"][-1])
            if args["write_card"]:
                write_card_measurements(
                    report["sections"][-1],
                    "uv run python benchmarks/speed.py " + " ".join(sys.argv[1:]),
                )
        if args["coco"]:
            if Path(args["vtest"]).exists():
                report["sections"].append(coco_section(args, folder))
                measure.print_section(report["sections"][-1])
            else:
                click.echo(f"COCO-shaped model skipped: {args['vtest']} not found")
    report["peak_rss_mb"] = measure.peak_rss_mb()
    args["out"].parent.mkdir(parents=True, exist_ok=True)
    args["out"].write_text(json.dumps(report, indent=2, default=str) + "\n")
    click.echo(f"peak RSS of this process: {report['peak_rss_mb']:.0f} MB; wrote {args['out']}")


if __name__ == "__main__":
    main()
