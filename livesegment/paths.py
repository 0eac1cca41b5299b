"""Refuse to write over an input: every command that writes checks its outputs here first.

A path given twice under different spellings (``clip.mp4``, ``./clip.mp4``, ``dir/../clip.mp4``),
a symlink to it, or a hard link to it all name the same file; opening any of them for writing
truncates the other before a single frame is read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from livesegment.errors import OutputError, SameFileError

# (the argument it was given as, the path): ("source", …), ("output", …), ("json_path", …); the
# CLI shows its own flag for each.
Named = tuple[str, Path]


def _identity(path: Path | str) -> tuple:
    """What makes two names one file: device and inode when it exists (symlinks followed, hard
    links equal), else the absolute path with every symlink on the way resolved."""
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        # Not there yet (an output): two outputs may still be one path spelled twice. Paths
        # are taken as given, with no ``~`` expansion, because that is how they are opened.
        return ("path", os.path.realpath(path))
    return ("inode", status.st_dev, status.st_ino)


def same_file(a: Path | str, b: Path | str) -> bool:
    """True when ``a`` and ``b`` name one file: the same inode (symlinks and hard links
    included) when both exist, else the same absolute path once symlinks are resolved."""
    return _identity(a) == _identity(b)


def clash(path: Path | str, others: Iterable[Named]) -> str | None:
    """The label of the first of ``others`` that ``path`` is the same file as, if any."""
    identity = _identity(path)
    return next(
        (label for label, other in others if other is not None and _identity(other) == identity),
        None,
    )


def check_no_overwrite(inputs: Iterable[Named], outputs: Iterable[Named]) -> None:
    """Fail before anything is opened for writing if an output is an input or another output.

    Raises:
        SameFileError: naming both paths and what to do.
    """
    read: dict[tuple, Named] = {}
    for label, path in inputs:
        if path is not None:
            read.setdefault(_identity(path), (label, Path(path)))
    written: dict[tuple, Named] = {}
    for out_label, out_path in outputs:
        if out_path is None:
            continue
        identity = _identity(out_path)
        if identity in read:
            in_label, in_path = read[identity]
            raise SameFileError(
                (out_label, Path(out_path)), (in_label, in_path), overwrites_input=True
            )
        if identity in written:
            other_label, other_path = written[identity]
            raise SameFileError(
                (out_label, Path(out_path)), (other_label, other_path), overwrites_input=False
            )
        written[identity] = (out_label, Path(out_path))


def check_output_path(path: Path, parameter: str, suffixes: tuple[str, ...] | None = None) -> None:
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
        raise refuse(
            f"unsupported file type {path.suffix or '(none)'}; use one of {', '.join(suffixes)}"
        )
    if path.is_dir():
        raise refuse("is a folder; give a file name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise refuse(f"folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise refuse(f"folder {folder} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise refuse("file exists and is not writable")
