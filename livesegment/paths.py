"""Refuse to write over an input: every command that writes checks its outputs here first.

A path given twice under different spellings (``clip.mp4``, ``./clip.mp4``, ``dir/../clip.mp4``),
a symlink to it, or a hard link to it all name the same file; opening any of them for writing
truncates the other before a single frame is read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from livesegment.errors import OutputError, UsageError

# (what the user called it, the path): "--output", "SOURCE", "--json", ...
Named = tuple[str, Path]


def same_file(a: Path | str, b: Path | str) -> bool:
    """True when ``a`` and ``b`` name one file: the same inode (symlinks and hard links
    included) when both exist, else the same absolute path once symlinks are resolved."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        # At least one does not exist yet: two outputs may still be one path spelled twice.
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def check_no_overwrite(inputs: Iterable[Named], outputs: Iterable[Named]) -> None:
    """Fail before anything is opened for writing if an output is an input or another output.

    Raises:
        UsageError: naming both paths and what to do.
    """
    inputs = [(label, Path(path)) for label, path in inputs if path is not None]
    outputs = [(label, Path(path)) for label, path in outputs if path is not None]
    for position, (out_label, out_path) in enumerate(outputs):
        for in_label, in_path in inputs:
            if same_file(out_path, in_path):
                raise UsageError(f"{out_label} {out_path} is the same file as {in_label} "
                                 f"{in_path}; writing it would destroy the input, so choose "
                                 "another output name")
        for other_label, other_path in outputs[:position]:
            if same_file(out_path, other_path):
                raise UsageError(f"{out_label} {out_path} and {other_label} {other_path} are the "
                                 "same file; give each output its own name")


def check_output_path(path: Path, parameter: str, suffixes: tuple[str, ...] | None = None
                      ) -> None:
    """Fail before any work if ``path`` cannot be written.

    Args:
        parameter: the argument ``path`` was given as (``"output"``, ``"json_path"``).

    Raises:
        OutputError: the folder is missing or read-only, the path is a folder, or the suffix
            is not supported.
    """
    path = Path(path)

    def refuse(message: str) -> OutputError:
        return OutputError(message, parameter=parameter, value=path)

    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise refuse(f"unsupported file type {path.suffix or '(none)'}; "
                     f"use one of {', '.join(suffixes)}")
    if path.is_dir():
        raise refuse("is a folder; give a file name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise refuse(f"folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise refuse(f"folder {folder} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise refuse("file exists and is not writable")
