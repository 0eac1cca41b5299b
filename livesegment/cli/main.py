"""Command line: parse, validate, call the library, turn its errors into click errors."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path

import click

from livesegment.cli.options import drawing_options, model_options, network_size_options
from livesegment.cli.types import SizeType
from livesegment.errors import LivesegmentError, SameFileError, UsageError
from livesegment.model import tfenv
from livesegment.model.cards import SPEEDS, ModelSpec, resolve_model
from livesegment.model.filters import check_class_names
from livesegment.output.overlay import OverlayStyle
from livesegment.structures import StopReason

log = logging.getLogger("livesegment")


def _split_names(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    return names or None


# Library errors name the argument; the user typed a flag.
FLAGS = {
    "classes": "--classes",
    "threshold": "--threshold",
    "output": "--output",
    "json_path": "--json",
    "max_size": "--max-size",
    "codec": "--codec",
    "model": "--model",
    "class_names": "--class-names",
    "urls": "--url",
    "source": "SOURCE",
    "speed": "--speed",
    "rois": "--rois",
    "max_instances": "--max-instances",
    "inputs": "INPUTS",
    "output_dir": "--output-dir",
    "ray": "--ray",
    "serve": "--serve",
    "serve_token": "--serve-token",
}
# Errors whose fix is a flag of its own rather than another value.
REMEDIES = {"display": "run with --no-display"}


def _message(error: LivesegmentError) -> str:
    if isinstance(error, SameFileError):
        return error.render(lambda name: FLAGS.get(name, name))
    if error.parameter in REMEDIES:
        return f"{error}; {REMEDIES[error.parameter]}"
    flag = FLAGS.get(error.parameter or "")
    if flag is None:
        return str(error)
    if error.value is not None:
        return f"{flag} {error.value}: {error.detail}"
    return f"{flag}: {error.detail}"


def _terminate_as_interrupt(signum, frame) -> None:
    # SIGTERM ends a run like Ctrl-C: outputs are closed and stay playable.
    raise KeyboardInterrupt


class LivesegmentGroup(click.Group):
    """Turns package errors into one-line messages; tracebacks only with --debug."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UsageError as error:
            raise click.UsageError(_message(error), ctx) from None
        except LivesegmentError as error:
            raise click.ClickException(_message(error)) from None
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:
            if ctx.meta.get("livesegment.debug"):
                raise
            first_line = (str(error).splitlines() or [""])[0]
            raise click.ClickException(
                f"internal error: {type(error).__name__}: {first_line} "
                "(rerun with --debug for the traceback and report it)"
            ) from None

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        """Like click's, but a usage error is one line (with where to find help), not three."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as error:
            command = error.ctx.command_path if error.ctx else self.name
            if error.ctx and error.ctx.invoked_subcommand:  # a library error from a command
                command += f" {error.ctx.invoked_subcommand}"
            click.echo(f"Error: {error.format_message()} (see {command} --help)", err=True)
            sys.exit(error.exit_code)
        except click.ClickException as error:
            error.show()
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=LivesegmentGroup)
@click.version_option(package_name="livesegment")
@click.option("--verbose", is_flag=True, help="Show progress logs and TensorFlow's own output.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def main(ctx: click.Context, verbose: bool, debug: bool) -> None:
    """Real-time instance segmentation of videos with PixelLib's Mask R-CNN."""
    ctx.meta["livesegment.debug"] = debug
    ctx.meta["livesegment.verbose"] = verbose
    tfenv.quiet_tensorflow(verbose)
    tfenv.quiet_opencv(verbose)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def _checked_classes(names: tuple[str, ...] | None, spec: ModelSpec) -> frozenset[str] | None:
    # Checked before the model loads, so a typo costs no wait.
    return None if names is None else check_class_names(names, spec.object_classes, spec.name)


@main.command()
@click.argument("source")
@model_options
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the annotated video here (.mp4, .mov, .mkv or .avi); for an image, "
    "the annotated image (.png, .jpg, .webp, …); for a folder or glob of "
    "images, a folder.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Write detections as JSON Lines here.",
)
@click.option(
    "--display/--no-display",
    default=None,
    help="Show a live window (default: when a display is available).",
)
@click.option(
    "--speed",
    type=click.Choice(SPEEDS),
    default=None,
    help="Speed preset, see above (default: the model card's, else balanced).",
)
@network_size_options
@click.option(
    "--track/--no-track",
    default=None,
    help="Follow objects across frames: each detection gets a persistent track id, shown as "
    "#12 and counted as unique objects (default: on for videos, cameras and streams; off for "
    "images).",
)
@click.option(
    "--carry/--no-carry",
    default=None,
    help="Live sources and --realtime: show, record and write every captured frame; those the "
    "model had no time for get its latest masks moved along by optical flow, marked carried "
    '(HUD "carried 2", JSONL "carried": true). --no-carry drops them (default: on).',
)
@drawing_options
@click.option(
    "--realtime",
    is_flag=True,
    help="Replay a file at its own frame rate, dropping frames like a camera.",
)
@click.option(
    "--camera-size",
    type=SizeType(),
    default=None,
    metavar="WxH",
    help="Ask the camera for this resolution.",
)
@click.option(
    "--camera-fps",
    type=click.FloatRange(1, 240),
    default=None,
    help="Ask the camera for this frame rate.",
)
@click.option(
    "--output-fps",
    type=click.FloatRange(1, 240),
    default=None,
    help="Frame rate of recordings from live sources (default: the measured rate).",
)
@click.option(
    "--reconnect-timeout",
    type=click.FloatRange(0, 3600),
    default=10.0,
    show_default=True,
    help="Seconds to keep reconnecting a lost camera or stream.",
)
@click.option(
    "--snapshot-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    help="Folder for `s` snapshots and `r` recordings.",
)
@click.option(
    "--codec",
    default="h264",
    show_default=True,
    help="Video codec of --output (h264, mpeg4, mjpeg, …).",
)
@click.option(
    "--audio/--no-audio", default=True, help="Copy the source's audio into --output (files only)."
)
@click.option(
    "--serve",
    default=None,
    metavar="[HOST:]PORT",
    help="Serve a live page (video, figures, detections, controls) on PORT; on 127.0.0.1 "
    "unless HOST is given, and any other HOST asks for a token (printed in the URL).",
)
@click.option(
    "--serve-token",
    default=None,
    metavar="TOKEN",
    help="The token --serve asks for (default: a random one for any HOST but 127.0.0.1).",
)
@click.option(
    "--start",
    "start_s",
    type=click.FloatRange(0),
    default=0.0,
    help="Start at this time in the file (seconds).",
)
@click.option(
    "--end",
    "end_s",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Stop at this time in the file (seconds).",
)
@click.option(
    "--stride",
    type=click.IntRange(1),
    default=1,
    help="Process every Nth frame; the output keeps the source's duration.",
)
@click.pass_context
def run(
    ctx: click.Context,
    *,
    source: str,
    model_name: str | None,
    threshold: float | None,
    classes: str | None,
    class_names: str | None,
    output: Path | None,
    json_path: Path | None,
    display: bool | None,
    speed: str | None,
    max_size: int | None,
    rois: int | None,
    max_instances: int | None,
    track: bool | None,
    carry: bool | None,
    boxes: bool,
    labels: bool,
    masks: bool,
    realtime: bool,
    camera_size: tuple[int, int] | None,
    camera_fps: float | None,
    output_fps: float | None,
    reconnect_timeout: float,
    snapshot_dir: Path,
    codec: str,
    audio: bool,
    serve: str | None,
    serve_token: str | None,
    start_s: float,
    end_s: float | None,
    stride: int,
) -> None:
    """Segment SOURCE: a video or image file, a folder of images, a quoted glob
    ("photos/*.jpg"), a camera index (0), a device (/dev/video0) or a stream URL (rtsp://,
    http://). In the window: q/Esc quit, space pause, +/- threshold, b/l/m
    boxes/labels/masks, s snapshot, r record; --serve puts the same controls in a browser.

    \b
    Speed presets (--speed) set input size, ROIs and mask slots together (COCO values):
      accurate  the model's full configuration; PixelLib's 1024 px, 1000 ROIs, 100 masks
      balanced  the default: 512 px, 300 ROIs, 30 masks, about 3.5x faster than accurate
      fast      for live video on a CPU: 384 px, 150 ROIs, 10 masks, about 6x faster
    """
    from livesegment import pipeline
    from livesegment.serve.security import ServeAddress
    from livesegment.video.sources import parse_source

    if serve_token is not None and serve is None:
        raise UsageError("--serve-token goes with --serve")
    address = ServeAddress.parse(serve) if serve is not None else None
    spec = resolve_model(model_name, _split_names(class_names))
    from livesegment.video.media import pick_encoder

    request = parse_source(
        source,
        realtime=realtime,
        camera_size_wh=camera_size,
        camera_fps=camera_fps,
        start_s=start_s,
        end_s=end_s,
        stride=stride,
    )
    if realtime and request.kind != "file":
        raise UsageError(f"--realtime replays a video file; {source} is a {request.kind}")
    if (start_s or end_s is not None or stride > 1) and request.kind != "file":
        raise UsageError("--start, --end and --stride apply to video files")
    if end_s is not None and end_s <= start_s:
        raise UsageError(f"--end {end_s:g} must be after --start {start_s:g}")
    if output is not None:
        pick_encoder(codec)
    options = pipeline.RunOptions(
        source=request,
        output_fps=output_fps,
        reconnect_timeout_s=reconnect_timeout,
        snapshot_dir=snapshot_dir,
        codec=codec,
        audio=audio,
        output=output,
        json_path=json_path,
        display=display,
        threshold=threshold,
        classes=_checked_classes(_split_names(classes), spec),
        speed=speed,
        max_size=max_size,
        rois=rois,
        max_instances=max_instances,
        style=OverlayStyle(masks=masks, boxes=boxes, labels=labels),
        verbose=ctx.meta["livesegment.verbose"],
        progress=sys.stderr.isatty(),
        default_model=model_name is None,
        track=track,
        carry=carry,
        serve=address,
        serve_token=serve_token,
        announce=lambda url: click.echo(f"browser view: {url}", err=True),
    )
    summary = pipeline.run(options, spec)
    click.echo(summary.format())
    if summary.stop_reason is StopReason.FAILED:
        raise click.ClickException(summary.failure)
    if summary.stop_reason is StopReason.INTERRUPTED:
        ctx.exit(130)


@main.command("eval")
@click.argument("detections", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("truth", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--iou",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.5,
    help="Mask IoU at which a detection matches a truth object of its class.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def evaluate_command(detections: Path, truth: Path, iou: float, as_json: bool) -> None:
    """Score a run's DETECTIONS (JSON Lines from --json) against ground TRUTH.

    When both files carry identities (a tracked run's "track_id", the truth's "id"), tracking
    quality follows: IDF1, ID switches and MOTA (py-motmetrics, on mask IoU).
    """
    from livesegment.evaluate import evaluate, load_jsonl_frames
    from livesegment.evaluate_tracks import evaluate_tracks

    try:
        detection_frames = load_jsonl_frames(detections)
        truth_frames = load_jsonl_frames(truth)
        report = evaluate(detection_frames, truth_frames, iou_threshold=iou)
        tracking = evaluate_tracks(detection_frames, truth_frames, iou_threshold=iou)
    except (ValueError, KeyError) as error:
        raise UsageError(f"cannot score {detections} against {truth}: {error}") from error
    if as_json:
        record = report.to_dict()
        if tracking is not None:
            record["tracking"] = tracking.to_dict()
        click.echo(json.dumps(record))
    else:
        click.echo(report.format())
        if tracking is not None:
            click.echo(tracking.format())


from livesegment.cli.batch import batch  # noqa: E402
from livesegment.cli.models import doctor, models_group  # noqa: E402

main.add_command(batch)
main.add_command(models_group)
main.add_command(doctor)
