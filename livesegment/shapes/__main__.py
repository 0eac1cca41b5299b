"""``python -m livesegment.shapes make-sample|train|quality``: the bundled model's tools."""

from __future__ import annotations

import importlib

import click

# train and quality import TensorFlow; load them only when they are the command asked for.
COMMANDS = {"make-sample": "livesegment.shapes.world:make_sample_command",
            "train": "livesegment.shapes.training:main",
            "quality": "livesegment.shapes.quality:main"}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=_LazyGroup)
def main() -> None:
    """The shapes world: synthetic videos with exact ground truth, and the model trained on it."""


if __name__ == "__main__":
    main()
