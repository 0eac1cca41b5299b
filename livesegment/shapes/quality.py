"""Measure a model on a freshly simulated shapes video, the way the live pipeline runs it.

    uv run python -m livesegment.shapes quality --card models/shapes.json \
        --pick-on 999,1012,1022 --eval-seed 12345 --write

With ``--write`` it then scores fresh videos (``--cli-seeds``) through ``livesegment run
--json`` and ``livesegment eval`` in subprocesses, issue 3's acceptance path, into the card.

Each frame goes through the same ``Detector`` as a live frame (BGR decoded, INTER_AREA resize of
the long side to the model's input size, the network, selection, full-size masks) and is scored
with ``evaluate``. The detector runs once per frame at threshold 0; selection keeps one label per
object whatever the threshold, so a threshold then only drops detections under it, and trying
several costs almost nothing. The threshold is picked on some videos and reported on
others, so the reported numbers are not tuned to the videos they describe. The picking videos
hold 1, 3 and 4 shapes at a time: one shape at a time cannot show two shapes confused.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click
import cv2
import numpy as np

from livesegment import shapes
from livesegment.errors import UsageError
from livesegment.evaluate import EvalReport, FrameRecord, Instance, evaluate
from livesegment.model.cards import ModelSpec, read_card, sha256_of, spec_from_card, write_card
from livesegment.model.detector import Detector, to_model_rgb
from livesegment.paths import check_no_overwrite

# The conditions the shapes model is judged on (README / model card).
VIDEO = {
    "n_frames": 90,
    "shape_hw": (480, 640),
    "fps": 15.0,
    "n_shapes": (1, 4),
    "size_px": (40.0, 120.0),
    "empty_fraction": 1 / 6,
}
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
BAR = {"recall": 0.90, "precision": 0.90, "mean_mask_iou": 0.80, "false_per_empty_frame": 0.05}


@dataclass(frozen=True, slots=True)
class VideoRun:
    """Detections at threshold 0 and truth for every frame of one simulated video."""

    seed: int
    detections: tuple[FrameRecord, ...]
    truth: tuple[FrameRecord, ...]
    inference_ms: tuple[float, ...]

    @property
    def ms_per_frame(self) -> float:
        return float(np.median(self.inference_ms))


def run_video(detector: Detector, seed: int) -> VideoRun:
    """Run the detector over ``shapes.simulate_video(seed, **VIDEO)``."""
    found, truth, times = [], [], []
    for index, scene in enumerate(shapes.simulate_video(seed, **VIDEO)):
        # The pipeline decodes BGR and converts while resizing; do exactly that.
        bgr = cv2.cvtColor(scene.rgb, cv2.COLOR_RGB2BGR)
        detections = detector.detect_resized(
            to_model_rgb(bgr, detector.max_size), scene.shape_hw, threshold=0.0
        )
        times.append(detector.timings.total_ms)
        found.append(
            FrameRecord(
                index,
                scene.shape_hw,
                tuple(
                    Instance.from_mask(str(name), mask, float(s))
                    for name, mask, s in zip(
                        detections.class_names, detections.masks, detections.scores, strict=True
                    )
                ),
            )
        )
        truth.append(
            FrameRecord(
                index,
                scene.shape_hw,
                tuple(Instance.from_mask(o.class_name, o.mask) for o in scene.objects),
            )
        )
    # The first call builds TF's graph functions; keep it out of the timing.
    return VideoRun(seed, tuple(found), tuple(truth), tuple(times[1:] or times))


def above(run: VideoRun, threshold: float) -> list[FrameRecord]:
    """The run's frames keeping only detections at or above ``threshold``."""
    return [
        dataclasses.replace(
            record,
            instances=tuple(
                instance
                for instance in record.instances
                # float32, as the detector compares its scores
                if np.float32(instance.score) >= np.float32(threshold)
            ),
        )
        for record in run.detections
    ]


def score(run: VideoRun, threshold: float) -> EvalReport:
    """Evaluate the run's frames keeping detections at or above ``threshold``."""
    return evaluate(above(run, threshold), run.truth)


def summary(report: EvalReport, threshold: float, run: VideoRun) -> dict[str, object]:
    def num(value: float) -> float | None:
        return None if math.isnan(value) else round(value, 4)

    return {
        "recall": num(report.recall),
        "precision": num(report.precision),
        "mean_mask_iou": num(report.mean_iou),
        "false_per_empty_frame": num(report.false_detections_per_empty_frame),
        "threshold": threshold,
        "truth_objects": report.truth_objects,
        "detections": report.detections,
        "empty_frames": report.empty_truth_frames,
        "frames": report.frames_evaluated,
        "eval_seed": run.seed,
        "ms_per_frame": round(run.ms_per_frame, 1),
    }


def meets_bar(metrics: dict[str, object]) -> bool:
    def value(key: str) -> float:
        v = metrics[key]
        return math.nan if v is None else float(v)

    return (
        value("recall") >= BAR["recall"]
        and value("precision") >= BAR["precision"]
        and value("mean_mask_iou") >= BAR["mean_mask_iou"]
        and value("false_per_empty_frame") <= BAR["false_per_empty_frame"]
    )


def pick_threshold(
    runs: Sequence[VideoRun], thresholds: Sequence[float]
) -> tuple[float, dict[int, list[dict]]]:
    """The threshold with the best mean F1 over ``runs`` among those within the empty-frame bar
    on every run (else the fewest false detections on empty frames); returns it and each run's
    summary at every threshold, keyed by seed."""
    rows = {run.seed: [summary(score(run, t), t, run) for t in thresholds] for run in runs}

    def f1(row: dict) -> float:
        recall, precision = row["recall"] or 0.0, row["precision"] or 0.0
        return 2 * recall * precision / (recall + precision) if recall + precision else 0.0

    def key(index: int) -> tuple[float, float]:
        at_threshold = [seed_rows[index] for seed_rows in rows.values()]
        worst_empty = max(row["false_per_empty_frame"] or 0.0 for row in at_threshold)
        within = worst_empty <= BAR["false_per_empty_frame"]
        return (1.0 if within else -worst_empty, sum(map(f1, at_threshold)) / len(at_threshold))

    best = max(range(len(thresholds)), key=key)
    return float(thresholds[best]), rows


def _print_rows(title: str, rows: Sequence[dict]) -> None:
    click.echo(title)
    for row in rows:
        click.echo(
            f"  t={row['threshold']:.2f} recall {row['recall']} precision "
            f"{row['precision']} iou {row['mean_mask_iou']} false/empty "
            f"{row['false_per_empty_frame']} ({row['detections']} det / "
            f"{row['truth_objects']} truth)"
        )


def through_cli(card: Path, seed: int, folder: Path) -> dict[str, object]:
    """Issue 3's acceptance run: a fresh video scored through ``livesegment run --json`` and
    ``livesegment eval --json`` in subprocesses, exactly as a user types them."""
    video, truth = shapes.make_sample(
        folder / f"seed{seed}", seed, VIDEO["n_frames"], VIDEO["shape_hw"], VIDEO["fps"]
    )
    detections = video.with_name("run.jsonl")
    cli = [sys.executable, "-m", "livesegment"]
    subprocess.run(
        [*cli, "run", str(video), "--model", str(card), "--no-display", "--json", str(detections)],
        check=True,
        capture_output=True,
        text=True,
    )
    scored = subprocess.run(
        [*cli, "eval", str(detections), str(truth), "--json"],
        check=True,
        capture_output=True,
        text=True,
    )
    report = json.loads(scored.stdout)
    return {
        "eval_seed": seed,
        **{
            k: report[k]
            for k in (
                "recall",
                "precision",
                "mean_iou",
                "false_detections_per_empty_frame",
                "truth_objects",
                "detections",
                "empty_truth_frames",
            )
        },
        "command": f"uv run python -m livesegment.shapes make-sample DIR --seed {seed} "
        f"--frames {VIDEO['n_frames']} && uv run livesegment run DIR/shapes.avi "
        "--no-display --json DIR/run.jsonl && uv run livesegment eval DIR/run.jsonl "
        "DIR/shapes.truth.jsonl",
    }


@click.command()
@click.option(
    "--card",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=Path("models/shapes.json"),
    show_default=True,
)
@click.option(
    "--weights",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Evaluate this weights file instead of the card's.",
)
@click.option(
    "--pick-on",
    default="999,1012,1022",
    show_default=True,
    help="Seeds of the videos the threshold is chosen on (1, 4 and 3 shapes at a "
    "time; never the --eval-seed or --cli-seeds).",
)
@click.option(
    "--eval-seed",
    type=int,
    default=12345,
    show_default=True,
    help="Seed of the video the reported metrics come from.",
)
@click.option("--thresholds", default=",".join(map(str, THRESHOLDS)), show_default=True)
@click.option(
    "--cli-seeds",
    default="12345,4242",
    show_default=True,
    help="After --write: score fresh videos of these seeds through the real CLI.",
)
@click.option(
    "--write", is_flag=True, help="Store the picked threshold and the metrics in the card."
)
def main(
    *,
    card: Path,
    weights: Path | None,
    pick_on: str,
    eval_seed: int,
    thresholds: str,
    cli_seeds: str,
    write: bool,
) -> None:
    """Pick the default threshold on simulated videos and report quality on another."""
    spec: ModelSpec = spec_from_card(card)
    if weights is not None:
        spec = dataclasses.replace(spec, weights=weights, sha256=None)
    own_weights = spec_from_card(card).weights.resolve()
    if write and weights is not None and weights.resolve() != own_weights:
        raise click.UsageError("--write needs the card's own weights; copy the file first")
    if write:
        try:
            check_no_overwrite([("the weights", spec.weights)], [("--card", card)])
        except UsageError as error:
            raise click.UsageError(str(error)) from None
    detector = Detector.load(spec)
    candidates = [float(t) for t in thresholds.split(",")]
    pick_seeds = [int(seed) for seed in pick_on.split(",") if seed.strip()]
    threshold, rows = pick_threshold([run_video(detector, seed) for seed in pick_seeds], candidates)
    for seed, seed_rows in rows.items():
        _print_rows(f"threshold sweep on seed {seed}:", seed_rows)
    click.echo(f"picked threshold {threshold} (best mean F1 over seeds {pick_on})")
    run = run_video(detector, eval_seed)
    _print_rows(
        f"for reference, seed {eval_seed}:", [summary(score(run, t), t, run) for t in candidates]
    )
    metrics = {
        **summary(score(run, threshold), threshold, run),
        "threshold_picked_on_seeds": pick_seeds,
        "video": {k: list(v) if isinstance(v, tuple) else v for k, v in VIDEO.items()},
        "command": "uv run python -m livesegment.shapes quality --card "
        f"{card} --pick-on {pick_on} --eval-seed {eval_seed} "
        f"--thresholds {thresholds} --write",
    }
    metrics["meets_bar"] = meets_bar(metrics)
    click.echo(json.dumps(metrics, indent=2))
    if write:
        extra = {
            k: v
            for k, v in read_card(card).items()
            if k
            not in (
                "name",
                "weights",
                "sha256",
                "class_names",
                "default_threshold",
                "architecture",
                "default_speed",
                "presets",
                "metrics",
            )
        }
        spec = dataclasses.replace(
            spec, default_threshold=threshold, sha256=sha256_of(spec.weights)
        )
        write_card(spec, card, **extra, metrics=metrics)
        with tempfile.TemporaryDirectory(prefix="livesegment-quality-") as folder:
            acceptance = [
                through_cli(card, int(seed), Path(folder))
                for seed in cli_seeds.split(",")
                if seed.strip()
            ]
        for row in acceptance:
            click.echo(f"through the CLI, seed {row['eval_seed']}: " + json.dumps(row))
        cli_ok = all(
            meets_bar(
                {
                    "recall": row["recall"],
                    "precision": row["precision"],
                    "mean_mask_iou": row["mean_iou"],
                    "false_per_empty_frame": row["false_detections_per_empty_frame"],
                }
            )
            for row in acceptance
        )
        write_card(
            spec,
            card,
            **extra,
            metrics={**metrics, "through_cli": acceptance, "meets_bar_through_cli": cli_ok},
        )
        click.echo(f"wrote {card}")


if __name__ == "__main__":
    main()
