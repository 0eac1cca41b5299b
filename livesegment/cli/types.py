"""Parameter types shared by the commands (``livesegment`` and ``python -m livesegment.shapes``)."""

from __future__ import annotations

import re

import click


class SizeType(click.ParamType):
    """``WxH`` (``1280x720``) -> (width, height), each side at least ``min_side`` pixels."""

    name = "WxH"

    def __init__(self, min_side: int = 16):
        self.min_side = min_side

    def convert(self, value, param, ctx) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(value))
        if not match:
            self.fail(f"expected WIDTHxHEIGHT such as 640x480, got {value!r}", param, ctx)
        width, height = int(match[1]), int(match[2])
        if min(width, height) < self.min_side:
            self.fail(f"{value!r}: each side must be at least {self.min_side} pixels", param, ctx)
        return width, height
