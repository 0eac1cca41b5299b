"""``python -m livesegment.shapes make-sample|train|quality``: the bundled model's tools."""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from livesegment.cli.main import LivesegmentGroup
from livesegment.cli.types import SizeType
from livesegment.shapes.world import make_sample

# train and quality import TensorFlow; load them only when they are the command asked for.
COMMANDS = {
    "make-sample": "livesegment.shapes.__main__:make_sample_command",
    "train": "livesegment.shapes.training:main",
    "quality": "livesegment.shapes.quality:main",
}


class _LazyGroup(LivesegmentGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attribute)


@click.command("make-sample")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--frames", "n_frames", type=click.IntRange(min=1), default=90, show_default=True)
@click.option(
    "--size",
    "size_wh",
    type=SizeType(min_side=32),
    default="640x480",
    show_default=True,
    help="Frame size as WIDTHxHEIGHT.",
)
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=15.0, show_default=True)
def make_sample_command(
    out_dir: Path, seed: int, n_frames: int, size_wh: tuple[int, int], fps: float
) -> None:
    """Write OUT_DIR/shapes.avi and OUT_DIR/shapes.truth.jsonl."""
    w, h = size_wh
    video_path, truth_path = make_sample(out_dir, seed, n_frames, (h, w), fps)
    click.echo(f"{video_path}: {n_frames} frames, {w}x{h}, {video_path.stat().st_size} bytes")
    click.echo(f"{truth_path}: ground truth")


@click.group(cls=_LazyGroup)
def main() -> None:
    """The shapes world: synthetic videos with exact ground truth, and the model trained on it."""


if __name__ == "__main__":
    main()
