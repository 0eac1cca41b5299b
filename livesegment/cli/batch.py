"""``livesegment batch``: parse, validate, hand the inputs to ``livesegment.batch``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from livesegment.cli.options import drawing_options, model_options, network_size_options
from livesegment.model.cards import SPEEDS, resolve_model


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--output-dir",
    "-d",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for each input's video, JSONL and summary, and the manifest (created).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 1024),
    default=None,
    help="Copies of the model at work: local processes, each loading it once (default 1, in "
    "this process), or with --ray actors (default: one per GPU of the cluster, else per CPU).",
)
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[ADDRESS]",
    # Eager, so `--ray clip.mp4` is reported as a misplaced input before "missing INPUTS".
    is_eager=True,
    callback=lambda _ctx, _param, value: value if value is None else _cluster_address(value),
    help="Run on Ray (extra: livesegment[ray]): alone, a Ray instance started on this machine; "
    "--ray=HOST:6379 joins a cluster (ray start --head prints it). --output-dir must then be "
    "storage every node mounts at the same path.",
)
@click.option(
    "--max-retries",
    type=click.IntRange(0, 100),
    default=2,
    show_default=True,
    help="How many times a video whose worker process died (killed, out of memory) is given "
    "out again (local workers and --ray).",
)
@model_options
@click.option(
    "--speed", type=click.Choice(SPEEDS), default=None, help="Speed preset (see run --help)."
)
@network_size_options
@drawing_options
@click.option(
    "--output-video/--no-output-video",
    default=True,
    help="Write the annotated video (--no-output-video: detections JSONL and summary only).",
)
@click.pass_context
def batch(
    ctx: click.Context,
    *,
    inputs: tuple[str, ...],
    output_dir: Path,
    workers: int | None,
    ray_address: str | None,  # "" for a local instance
    max_retries: int,
    model_name: str | None,
    class_names: str | None,
    threshold: float | None,
    classes: str | None,
    speed: str | None,
    max_size: int | None,
    rois: int | None,
    max_instances: int | None,
    boxes: bool,
    labels: bool,
    masks: bool,
    output_video: bool,
) -> None:
    """Segment many videos: INPUTS are files, folders (their videos) and quoted globs
    ("footage/*.mp4"). Each input gets NAME.mp4, NAME.jsonl and NAME.summary.json in
    --output-dir, made by the same pipeline as `livesegment run`; manifest.jsonl there records
    every attempt. Rerun the same command to finish an interrupted batch: complete outputs
    (checked against their sha256) are skipped, the rest redone.

    Exit code 1 when any input failed (the others still complete).
    """
    from livesegment.batch.driver import RayPlan, run_batch
    from livesegment.batch.jobs import expand_inputs, plan_jobs
    from livesegment.batch.worker import BatchSettings
    from livesegment.cli.main import _checked_classes, _split_names
    from livesegment.output.overlay import OverlayStyle

    spec = resolve_model(model_name, _split_names(class_names))
    settings = BatchSettings(
        spec=spec,
        threshold=threshold,
        classes=_checked_classes(_split_names(classes), spec),
        speed=speed,
        max_size=max_size,
        rois=rois,
        max_instances=max_instances,
        style=OverlayStyle(masks=masks, boxes=boxes, labels=labels),
        video=output_video,
        default_model=model_name is None,
        verbose=ctx.meta["livesegment.verbose"],
    )
    ray = None
    if ray_address is not None:
        from livesegment.batch.on_ray import check_reachable

        ray = RayPlan(ray_address or None)
        check_reachable(ray.address)
    jobs = plan_jobs(expand_inputs(inputs), output_dir, video=output_video)
    report = run_batch(
        jobs, settings, output_dir, workers, sys.stderr.isatty(), ray, max_retries=max_retries
    )
    click.echo(report.format())
    if report.interrupted:
        ctx.exit(130)
    if report.failed:
        names = ", ".join(Path(record.input).name for record in report.failed)
        raise click.ClickException(
            f"{len(report.failed)} of {len(jobs)} inputs failed: {names} "
            f"(reasons above and in {report.manifest})"
        )


def _cluster_address(text: str) -> str:
    """``--ray``'s value ("" starts a local instance); a file name is a misplaced input."""
    text = text.strip()
    if not text:
        return ""
    if Path(text).exists():
        raise click.BadParameter(
            f"{text!r} is a file, not a cluster address: write --ray=HOST:PORT, or put --ray "
            "after the inputs",
            param_hint="--ray",
        )
    return text
