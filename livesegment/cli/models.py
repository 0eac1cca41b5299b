"""Commands ``livesegment models list|download|verify`` and ``livesegment doctor``.

Click only: the work happens in ``download`` and ``doctor``; package errors raised here become
one-line messages in ``cli.LivesegmentGroup``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from livesegment.errors import ModelError


@click.group("models")
def models_group() -> None:
    """List, download and verify model weights."""


@models_group.command("list")
@click.option(
    "--full",
    is_flag=True,
    help="Also build each network and compare every layer (slower: loads TensorFlow).",
)
def list_command(full: bool) -> None:
    """List the bundled and the downloaded or registered models, each verified.

    Registered models are cards (NAME.json) or weights (NAME.h5) in the models folder
    (LIVESEGMENT_HOME/models when set).
    """
    from livesegment.model.cards import user_models_dir
    from livesegment.model.download import partial_downloads
    from livesegment.model.verify import describe_classes, installed_models, verify_weights

    folder = user_models_dir()
    models = installed_models()
    failed = 0
    for model in models:
        report = verify_weights(model.weights, card=model.card, full=full)
        size = (
            f"{report.size_bytes / 1e6:.1f} MB" if report.size_bytes is not None else "file missing"
        )
        if report.ok:
            verdict = (
                "verified: loads completely"
                if full
                else "verified (file, card"
                + (", sha256" if report.sha256 == "matches the card" else "")
                + ")"
            )
        else:
            failed += 1
            verdict = f"FAILED: {report.problem}"
        classes = describe_classes(report.class_names) if report.class_names else "classes ?"
        click.echo(
            f"{model.name} ({model.location}) {model.weights}\n"
            f"  {report.backbone or 'backbone ?'}, {classes}, {size}; {verdict}"
        )
    for entry, part in partial_downloads(folder):
        resume = f"`livesegment models download {entry.name}`" if entry else "the download"
        click.echo(
            f"{part.name} (unfinished download) {part}\n"
            f"  {part.stat().st_size / 1e6:.1f} MB so far; re-run {resume} to resume"
        )
    if not models:
        click.echo("no models found")
    click.echo(f"models folder: {folder}" + ("" if folder.is_dir() else " (not created yet)"))
    if failed:
        click.echo(
            f"{failed} of {len(models)} models failed verification; "
            "`livesegment models verify PATH` shows details",
            err=True,
        )


@models_group.command("download")
@click.argument("name")
@click.option(
    "--url",
    "urls",
    multiple=True,
    metavar="URL",
    help="Mirror to use instead of the built-in ones (repeatable; http:// allowed only here).",
)
@click.option("--force", is_flag=True, help="Download again even if a verified copy exists.")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(1, 600),
    default=30.0,
    show_default=True,
    help="Seconds to wait for the server on connect and each read.",
)
def download_command(name: str, urls: tuple[str, ...], force: bool, timeout_s: float) -> None:
    """Fetch model NAME (coco) into the models folder; resumable, verified.

    An interrupted download resumes when the command is run again; the file gets its final
    name only once its size and every layer check out.
    """
    from livesegment.model import download
    from livesegment.model.cards import user_models_dir

    entry = download.find(name)
    result = download.download(
        entry,
        user_models_dir(),
        urls=urls or None,
        force=force,
        progress=sys.stderr.isatty(),
        timeout_s=timeout_s,
    )
    if result.url is None:
        click.echo(
            f"{entry.name} is already downloaded and verified: {result.weights} "
            "(--force downloads it again)"
        )
        return
    resumed = f", resumed at {result.resumed_from:,} bytes" if result.resumed_from else ""
    click.echo(
        f"downloaded {entry.name} from {result.url}{resumed}\n"
        f"verified: {entry.size_bytes:,} bytes, {entry.spec.backbone}, "
        f"{entry.spec.num_classes} classes, all {result.layers} weighted layers present\n"
        f"saved {result.weights} and {result.card}; use it with --model {entry.name}"
    )


@models_group.command("verify")
@click.argument("path", metavar="PATH|NAME")
def verify_command(path: str) -> None:
    """Report what a weights file holds and whether it loads completely.

    Exit status 0 when it would, 1 otherwise. A sidecar card (PATH with .json) is honoured.
    """
    from livesegment.model.verify import verify_weights

    report = verify_weights(_model_path(path))
    if not report.readable:
        raise ModelError(report.problem or f"{path}: unreadable")
    click.echo(report.format())
    if not report.ok:
        raise ModelError(report.problem)


def _model_path(text: str) -> Path:
    """A path as given, or the card of a known model name (``coco``, ``shapes``)."""
    from livesegment.model.cards import BUNDLED_DIR, user_models_dir

    path = Path(text).expanduser()
    if path.exists() or path.suffix:
        return path
    for folder in (BUNDLED_DIR, user_models_dir()):
        if (folder / f"{text}.json").exists():
            return folder / f"{text}.json"
    return path


@click.command("doctor")
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check installation, devices, codecs and models; each problem with its fix.

    Exit status 1 if any check fails (no camera or display is not a failure).
    """
    from livesegment.doctor import run_checks

    failures = 0
    for check in run_checks(reraise=bool(ctx.meta.get("livesegment.debug"))):
        click.echo(check.format())
        failures += check.status == "fail"
    if failures:
        click.echo(
            f"doctor: {failures} problem{'s' if failures > 1 else ''} found "
            "(FAIL lines above, each with its fix)",
            err=True,
        )
        ctx.exit(1)
    click.echo("doctor: everything needed works")
