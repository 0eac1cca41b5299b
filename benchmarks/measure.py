"""The measurements behind ``benchmarks/speed.py``: interleaved timing, kept detections,
tables."""

from __future__ import annotations

import logging
import os
import platform
import resource
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import click
import cv2
import numpy as np

from livesegment.evaluate import evaluate
from livesegment.model.detector import Detector, to_model_rgb
from livesegment.pipeline import RunOptions, run
from livesegment.shapes import quality

log = logging.getLogger("benchmarks.measure")


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_clip(source: Path, path: Path, n_frames: int) -> Path:
    """The first ``n_frames`` of ``source`` as an MJPG file, so every tool reads the same
    frames from a file of their own."""
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
    writer = None
    for _ in range(n_frames):
        ok, bgr = capture.read()
        if not ok:
            break
        if writer is None:
            writer = cv2.VideoWriter(
                str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (bgr.shape[1], bgr.shape[0])
            )
        writer.write(bgr)
    capture.release()
    if writer is None:
        raise click.ClickException(f"{source}: no frame could be read")
    writer.release()
    return path


def read_bgr(video: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(bgr)
    capture.release()
    return frames


def read_rgb(video: Path, n_frames: int, long_side: int) -> list[np.ndarray]:
    return [to_model_rgb(bgr, long_side) for bgr in read_bgr(video)[:n_frames]]


def pixellib_network(spec, detector: Detector):
    """PixelLib's MaskRCNN for ``spec`` at its own confidence floor (PixelLib keeps what the
    graph returns), with the weights ``detector`` verified."""
    from livesegment.model import segmenter

    network = segmenter.build_model(spec, score_floor=detector.threshold)
    segmenter.load_verified(network.keras_model, segmenter.read_weights_file(spec.weights))
    return network


def _time_network(
    detector: Detector, inputs: Sequence[np.ndarray], shape_hw: tuple[int, int]
) -> float:
    started = time.perf_counter()
    for rgb in inputs:
        detector.engine(rgb, shape_hw)
    return (time.perf_counter() - started) / len(inputs)


def _time_run(detector: Detector, clip: Path, folder: Path, tag: str) -> tuple[float, dict]:
    """``livesegment run CLIP --output … --json …`` as the CLI runs it, with this detector."""
    options = RunOptions(
        source=str(clip),
        output=folder / f"{tag}.mp4",
        json_path=folder / f"{tag}.jsonl",
        display=False,
        progress=False,
    )
    started = time.perf_counter()
    summary = run(options, detector.spec, load=lambda spec, options: detector)
    elapsed = time.perf_counter() - started
    if summary.failure:
        raise click.ClickException(f"livesegment run failed: {summary.failure}")
    return elapsed / summary.frames_processed, {
        "frames": summary.frames_processed,
        "detections": sum(summary.detections_per_class.values()),
    }


def interleaved(
    detectors: Mapping[str, Detector],
    clip: Path,
    folder: Path,
    rounds: int,
    *,
    pixellib=None,
    fps: float,
) -> dict:
    """Seconds per frame of (a) the network alone and (b) ``run`` for every preset, and of
    (c) PixelLib's loop: one after another within a round, the order rotating each round, and
    the median of each over rounds. Ratios are taken within a round, then their median."""
    from pixellib_loop import process_video

    frames = read_bgr(clip)
    shape_hw = frames[0].shape[:2]
    inputs = {
        speed: [to_model_rgb(bgr, d.max_size) for bgr in frames] for speed, d in detectors.items()
    }
    one_frame = write_clip(clip, folder / f"warm-{clip.stem}.avi", 1)
    for speed, detector in detectors.items():  # the first call sets TensorFlow's graph up
        detector.engine(inputs[speed][0], shape_hw)
    if pixellib is not None:
        process_video(pixellib, one_frame, folder / "warm-pixellib.avi", fps)
    jobs = [("network", speed) for speed in detectors] + [("run", speed) for speed in detectors]
    if pixellib is not None:
        jobs.append(("pixellib", "accurate"))
    samples: dict[str, list[dict]] = {f"{kind}/{speed}": [] for kind, speed in jobs}
    for round_index in range(rounds):
        shift = round_index % len(jobs)
        for kind, speed in jobs[shift:] + jobs[:shift]:
            tag = f"{clip.stem}-{kind}-{speed}-{round_index}"
            if kind == "network":
                sample = {"s_per_frame": _time_network(detectors[speed], inputs[speed], shape_hw)}
            elif kind == "run":
                seconds, counts = _time_run(detectors[speed], clip, folder, tag)
                sample = {"s_per_frame": seconds, **counts}
            else:
                seconds = process_video(pixellib, clip, folder / f"{tag}.avi", fps)
                sample = {"s_per_frame": seconds / len(frames)}
            samples[f"{kind}/{speed}"].append(sample)
            log.info(
                "round %d %s/%s: %.3f s/frame", round_index + 1, kind, speed, sample["s_per_frame"]
            )
    return {
        "frames": len(frames),
        "size_wh": [shape_hw[1], shape_hw[0]],
        "presets": {
            speed: detector.spec.speed_settings(speed).to_dict()
            for speed, detector in detectors.items()
        },
        "samples": samples,
        "summary": _summarise(samples, list(detectors), rounds),
        "rss_mb_after": peak_rss_mb(),
    }


def _summarise(samples: dict[str, list[dict]], speeds: list[str], rounds: int) -> dict:
    def per_round(key: str) -> np.ndarray:
        return np.array([s["s_per_frame"] for s in samples[key]])

    def ratio(numerator: str, denominator: str) -> float:
        return round(float(np.median(per_round(numerator) / per_round(denominator))), 3)

    summary: dict[str, dict] = {}
    for speed in speeds:
        network, end_to_end = f"network/{speed}", f"run/{speed}"
        row = {
            "network_s": round(float(np.median(per_round(network))), 4),
            "run_s": round(float(np.median(per_round(end_to_end))), 4),
            "network_fps": round(float(np.median(1 / per_round(network))), 3),
            "run_fps": round(float(np.median(1 / per_round(end_to_end))), 3),
            # b/a: the share of the network's speed the whole run keeps.
            "run_over_network": ratio(network, end_to_end),
            "network_speedup_vs_accurate": ratio("network/accurate", network),
            "run_speedup_vs_accurate": ratio("run/accurate", end_to_end),
            "detections_per_frame": round(
                float(np.mean([s["detections"] / s["frames"] for s in samples[end_to_end]])), 2
            ),
        }
        if "pixellib/accurate" in samples:
            # b/c: how many times faster than PixelLib's loop, end to end.
            row["run_speedup_vs_pixellib"] = ratio("pixellib/accurate", end_to_end)
        summary[speed] = row
    if "pixellib/accurate" in samples:
        summary["pixellib"] = {
            "s": round(float(np.median(per_round("pixellib/accurate"))), 4),
            "fps": round(float(np.median(1 / per_round("pixellib/accurate"))), 3),
        }
    return summary


def shapes_quality(
    detectors: Mapping[str, Detector], seeds: Sequence[int], threshold: float
) -> dict:
    """Per preset and simulated video: the share of ``accurate``'s detections kept (same
    class, mask IoU >= 0.5) and recall, precision and mask IoU against the truth."""
    rows: dict[str, dict] = {}
    for seed in seeds:
        runs = {speed: quality.run_video(detector, seed) for speed, detector in detectors.items()}
        reference = quality.above(runs["accurate"], threshold)
        for speed, video_run in runs.items():
            report = quality.score(video_run, threshold)
            kept = evaluate(quality.above(video_run, threshold), reference)
            rows.setdefault(speed, {})[str(seed)] = {
                "kept_of_accurate": round(kept.recall, 4),
                "accurate_detections": kept.truth_objects,
                "detections": report.detections,
                "recall": round(report.recall, 4),
                "precision": round(report.precision, 4),
                "mean_mask_iou": round(report.mean_iou, 4),
                "ms_per_frame": round(video_run.ms_per_frame, 1),
            }
    for by_seed in rows.values():
        total = sum(r["accurate_detections"] for r in by_seed.values())
        kept_total = sum(r["kept_of_accurate"] * r["accurate_detections"] for r in by_seed.values())
        by_seed["all"] = {"kept_of_accurate": round(kept_total / total, 4) if total else None}
    return rows


def print_section(section: dict) -> None:
    if "summary" in section:
        _print_timing(section)
    if "startup" in section:
        for name, row in section["startup"]["summary"].items():
            click.echo(
                f"start-up to first frame, {name}: {row['s']:.1f} s "
                f"(peak RSS {row['peak_rss_mb']:.0f} MB)"
            )


def _print_timing(section: dict) -> None:
    summary = section["summary"]
    click.echo(
        f"\n{section['model']}: {section['frames']} frames of {section['clip']} "
        f"({section['size_wh'][0]}x{section['size_wh'][1]})"
    )
    header = (
        f"{'preset':10}{'size/rois/inst':>16}{'net s/f':>9}{'net fps':>9}{'run s/f':>9}"
        f"{'run fps':>9}{'b/a':>7}{'net x':>7}{'run x':>7}{'b/c':>7}{'det/f':>7}"
    )
    click.echo(header)
    for speed, preset in section["presets"].items():
        row = summary[speed]
        values = f"{preset['max_size']}/{preset['rois']}/{preset['max_instances']}"
        click.echo(
            f"{speed:10}{values:>16}{row['network_s']:>9.3f}{row['network_fps']:>9.2f}"
            f"{row['run_s']:>9.3f}{row['run_fps']:>9.2f}{row['run_over_network']:>7.2f}"
            f"{row['network_speedup_vs_accurate']:>7.2f}"
            f"{row['run_speedup_vs_accurate']:>7.2f}"
            f"{row.get('run_speedup_vs_pixellib', float('nan')):>7.2f}"
            f"{row['detections_per_frame']:>7.1f}"
        )
    if "pixellib" in summary:
        click.echo(
            f"{'PixelLib':10}{'process_video':>16}{'':>18}{summary['pixellib']['s']:>9.3f}"
            f"{summary['pixellib']['fps']:>9.2f}"
        )
    click.echo(
        "b/a: run fps / network fps; net x, run x: speed-up over accurate; b/c: run "
        "speed-up over PixelLib's process_video (medians of per-round ratios)"
    )
    for speed, by_seed in section.get("quality", {}).items():
        seeds = ", ".join(
            f"seed {seed}: kept {r['kept_of_accurate']:.3f} recall "
            f"{r['recall']:.4f} precision {r['precision']:.4f} IoU "
            f"{r['mean_mask_iou']:.4f}"
            for seed, r in by_seed.items()
            if seed != "all"
        )
        click.echo(
            f"{speed:10}kept {by_seed['all']['kept_of_accurate']:.3f} of accurate's "
            f"detections; {seeds}"
        )
