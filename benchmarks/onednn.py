"""TensorFlow's oneDNN and threading settings on this CPU: speed and the bundled model's quality.

    uv run python benchmarks/onednn.py                      # about 15 minutes on 2 CPU cores
    uv run python benchmarks/onednn.py --variants default,bf16 --rounds 3

These settings are read once, when TensorFlow starts, so each variant runs in a fresh process;
the processes alternate round by round. Each one times the network alone on the COCO-shaped
model (``balanced``, 512 px, on vtest.avi frames; from ``benchmarks/speed.py``'s cache) and on
the bundled ``shapes`` model, and scores the bundled model on the card's video (seed 12345), so
a setting that changes the numbers (bfloat16) shows what it costs in quality.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import click
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "out" / "bench-cache"
VTEST = ROOT.parent / "shared" / "data" / "vtest.avi"

# name -> (environment, (intra-op threads, inter-op threads) or None for TensorFlow's choice)
VARIANTS: dict[str, tuple[dict[str, str], tuple[int, int] | None]] = {
    "onednn-off": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, None),
    "default": ({}, None),
    "bf16": ({"ONEDNN_DEFAULT_FPMATH_MODE": "BF16"}, None),
    "tf-bf16": ({"TF_SET_ONEDNN_FPMATH_MODE": "BF16"}, None),
    "frozen-weights": ({"TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": "1"}, None),
    "intra2-inter1": ({}, (2, 1)),
    "intra1-inter2": ({}, (1, 2)),
    "intra1-inter1": ({}, (1, 1)),
}


def child(variant: str, frames: int) -> dict:
    """Measure in this process (started with the variant's environment)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from livesegment.model import tfenv

    with tfenv.importing_tensorflow():
        import tensorflow as tf

    threads = VARIANTS[variant][1]
    if threads is not None:
        tf.config.threading.set_intra_op_parallelism_threads(threads[0])
        tf.config.threading.set_inter_op_parallelism_threads(threads[1])
    import measure

    from livesegment.model.detector import Detector
    from livesegment.shapes import quality

    result = {"variant": variant}
    weights = CACHE / "coco-random-seed14.h5"
    if weights.exists() and VTEST.exists():
        coco = Detector.load(str(weights), speed="balanced", threshold=0.7)
        inputs = measure.read_rgb(VTEST, frames + 1, coco.max_size)
        coco.engine(inputs[0], (576, 768))
        started = time.perf_counter()
        found = [coco(rgb) for rgb in inputs[1:]]
        result["coco_balanced_s"] = (time.perf_counter() - started) / frames
        result["coco_detections"] = [len(detections) for detections in found]
        # Whether the setting changes the numbers at all: the first frame's raw scores.
        scores = coco.engine(inputs[1], (576, 768)).scores
        result["coco_top_scores"] = [round(float(s), 6) for s in scores[:5]]
    shapes = Detector.load("shapes", speed="accurate")
    run = quality.run_video(shapes, 12345)
    report = quality.score(run, shapes.spec.default_threshold)
    result.update(
        shapes_ms=run.ms_per_frame,
        recall=round(report.recall, 4),
        precision=round(report.precision, 4),
        mean_mask_iou=round(report.mean_iou, 4),
        detections=report.detections,
    )
    return result


@click.command()
@click.option("--variants", default=",".join(VARIANTS), show_default=True)
@click.option("--rounds", type=click.IntRange(1), default=2, show_default=True)
@click.option("--frames", type=click.IntRange(1), default=4, show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=ROOT / "out" / "onednn.json",
    show_default=True,
)
@click.option("--child", "child_variant", default=None, hidden=True)
def main(variants: str, rounds: int, frames: int, out: Path, child_variant: str | None) -> None:
    """Compare oneDNN and thread settings in fresh processes, interleaved."""
    if child_variant is not None:
        click.echo(json.dumps(child(child_variant, frames)))
        return
    names = [name.strip() for name in variants.split(",") if name.strip()]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        raise click.UsageError(f"unknown variant {unknown[0]}; known: {', '.join(VARIANTS)}")
    samples: dict[str, list[dict]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            env = {**os.environ, **VARIANTS[name][0]}
            done = subprocess.run(
                [sys.executable, __file__, "--child", name, "--frames", str(frames)],
                env=env,
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                check=False,
            )
            if done.returncode != 0:
                raise click.ClickException(f"{name}: {done.stderr.strip().splitlines()[-1:]}")
            samples[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
            click.echo(f"round {round_index + 1} {name}: {samples[name][-1]}")
    table = {}
    for name, rows in samples.items():
        row = {
            "shapes_ms": round(float(np.median([r["shapes_ms"] for r in rows])), 1),
            **{
                k: rows[0][k]
                for k in ("recall", "precision", "mean_mask_iou", "detections", "coco_top_scores")
                if k in rows[0]
            },
        }
        if "coco_balanced_s" in rows[0]:
            row["coco_balanced_s"] = round(
                float(np.median([r["coco_balanced_s"] for r in rows])), 3
            )
        if "default" in samples:
            base = samples["default"]
            for key in ("coco_balanced_s", "shapes_ms"):
                if key in rows[0]:
                    row[f"{key}_vs_default"] = round(
                        float(
                            np.median([r[key] / b[key] for r, b in zip(rows, base, strict=True)])
                        ),
                        3,
                    )
        table[name] = row
        click.echo(f"{name:16}{json.dumps(row)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"samples": samples, "summary": table}, indent=2) + "\n")
    click.echo(f"wrote {out}")


if __name__ == "__main__":
    main()
