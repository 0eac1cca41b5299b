"""Still images: read them upright, list a folder or a glob, and write annotated copies.

A photo's EXIF orientation says how to turn the stored pixels to show them upright (a phone
held in portrait stores a landscape JPEG with orientation 6). Frames reach the model upright,
detections are in upright pixels, and annotated copies are written upright without EXIF, so no
viewer turns them a second time.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from livesegment.errors import OutputError, SourceError, UsageError
from livesegment.paths import Named, check_no_overwrite, check_output_path
from livesegment.video.media import CONTAINER_SUFFIXES

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
GLOB_CHARACTERS = re.compile(r"[*?[]")
# Annotated photos stay close to the source's look without the size of lossless files.
WRITE_PARAMS = {
    ".jpg": [cv2.IMWRITE_JPEG_QUALITY, 95],
    ".jpeg": [cv2.IMWRITE_JPEG_QUALITY, 95],
    ".webp": [cv2.IMWRITE_WEBP_QUALITY, 95],
}


@dataclass(frozen=True, slots=True)
class ImageEntry:
    """One input image: its path and the name it is known by in outputs (``a.png``, or
    ``sub/a.png`` for a glob that spans folders)."""

    path: Path
    name: str


def is_glob(text: str) -> bool:
    return bool(GLOB_CHARACTERS.search(text))


def read_upright(path: Path) -> np.ndarray:
    """Decode an image file, turned upright by its EXIF orientation.

    ``IMREAD_COLOR`` (without ``IMREAD_IGNORE_ORIENTATION``) applies the orientation of a
    JPEG's APP1, a PNG's eXIf chunk, a WebP's EXIF chunk and a TIFF's tag, all eight values.
    Decoding from bytes rather than ``cv2.imread``: OpenCV 5's imread fails outright on a TIFF
    whose orientation swaps width and height, while imdecode turns it.

    Returns:
        (H, W, 3) uint8 BGR, upright; alpha is dropped, grey and 16-bit become 8-bit BGR.

    Raises:
        SourceError: the file cannot be read or is not an image OpenCV decodes.
    """
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as error:
        raise SourceError(f"{path}: cannot read ({error.strerror or error})") from error
    if data.size == 0:
        raise SourceError(f"{path}: file is empty (0 bytes); nothing to segment")
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is None:
        raise SourceError(f"{path}: not a readable image; check the file")
    return image


def _natural_key(name: str) -> tuple[list, str]:
    # img2 before img10, as a file manager lists them; the raw name breaks ties.
    parts = re.split(r"([0-9]+)", name)
    return [int(part) if index % 2 else part.casefold() for index, part in enumerate(parts)], name


def list_images(target: str) -> list[ImageEntry]:
    """The images of a folder (not its subfolders) or of a glob pattern, sorted by name with
    numbers compared as numbers (``img2`` before ``img10``).

    Only files with an image suffix are taken; hidden files (``.name``) are skipped.

    Raises:
        SourceError: nothing matches, or nothing that matches is an image.
    """
    suffixes = ", ".join(IMAGE_SUFFIXES)
    folder = Path(target).expanduser()
    if folder.is_dir():
        files = [
            path
            for path in folder.iterdir()
            if path.suffix.lower() in IMAGE_SUFFIXES
            and not path.name.startswith(".")
            and path.is_file()
        ]
        if not files:
            raise SourceError(f"{target}: no images in this folder (looked for {suffixes})")
        entries = [ImageEntry(path, path.name) for path in files]
    else:
        matches = [Path(match) for match in glob.glob(os.path.expanduser(target), recursive=True)]
        files = [
            path for path in matches if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
        ]
        if not matches:
            raise SourceError(f"{target}: no file matches this pattern")
        if not files:
            raise SourceError(f"{target}: matches no image file (looked for {suffixes})")
        # Names relative to the deepest common folder: unique, and as short as they can be.
        common = Path(os.path.commonpath([str(path.absolute().parent) for path in files]))
        entries = [
            ImageEntry(path, path.absolute().relative_to(common).as_posix()) for path in files
        ]
    return sorted(entries, key=lambda entry: _natural_key(entry.name))


@dataclass(frozen=True, slots=True)
class ImageOutputs:
    """Where annotated copies go: ``paths[i]`` for input ``i``; ``folder`` is the --output
    folder (created when missing), or None for a single output file."""

    paths: tuple[Path, ...]
    folder: Path | None


def _writable_folder(folder: Path, output: Path) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"folder {folder} is not writable", parameter="output", value=output)


def plan_image_outputs(
    entries: Sequence[ImageEntry], output: Path, source: str, single: bool
) -> ImageOutputs:
    """Decide the annotated copy of each input: ``output`` itself for a single image given an
    image file name, else ``output/<name>`` with each input's own name and format.

    Raises:
        UsageError: a video suffix, an unsupported suffix, or a file where a folder is needed.
        OutputError: the folder (or the folder that would hold it) is missing or read-only.
    """
    output = Path(output)
    if single and not output.is_dir():
        _check_image_file_output(output, source)
        return ImageOutputs((output,), None)
    _check_folder_output(output, source, len(entries))
    return ImageOutputs(tuple(output / entry.name for entry in entries), output)


def _check_image_file_output(output: Path, source: str) -> None:
    suffix = output.suffix.lower()
    kinds = ", ".join(IMAGE_SUFFIXES)
    if suffix in CONTAINER_SUFFIXES:
        raise UsageError(
            f"the source {source} is an image, so the output is an image too; use "
            f"{kinds} (a video output needs a video source)",
            parameter="output",
            value=output,
        )
    if suffix not in IMAGE_SUFFIXES:
        raise UsageError(
            f"unsupported file type {suffix or '(none)'} for an image source; use "
            f"{kinds} or an existing folder",
            parameter="output",
            value=output,
        )
    check_output_path(output, "output")


def _check_folder_output(output: Path, source: str, count: int) -> None:
    suffix = output.suffix.lower()
    if output.is_dir():
        _writable_folder(output, output)
        source_folder = Path(source).expanduser()
        if source_folder.is_dir() and os.path.samefile(source_folder, output):
            raise UsageError(
                "is the source folder: the annotated images would replace the "
                "originals, so choose another folder",
                parameter="output",
                value=output,
            )
        return
    if suffix in IMAGE_SUFFIXES or suffix in CONTAINER_SUFFIXES:
        raise UsageError(
            f"the source {source} is {count} images, so the output must be a "
            f"folder (one annotated image per input), e.g. "
            f"{output.with_suffix('')}/",
            parameter="output",
            value=output,
        )
    if output.exists():
        raise UsageError(
            f"is a file; the source {source} needs a folder for its annotated images",
            parameter="output",
            value=output,
        )
    parent = output.parent if str(output.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(
            f"folder {parent} does not exist; create it first (only "
            f"{output.name} itself is created)",
            parameter="output",
            value=output,
        )
    _writable_folder(parent, output)


def check_image_outputs(
    entries: Sequence[ImageEntry],
    outputs: ImageOutputs,
    json_path: Path | None,
    protected: Sequence[Named] = (),
) -> None:
    """Refuse, before anything is written, any output that is an input image, one of the
    ``protected`` files (the model's), or another output.

    Raises:
        SameFileError: naming the output and the file it would overwrite.
    """
    written: list[Named] = [("output", path) for path in outputs.paths]
    if json_path is not None:
        if outputs.folder is not None:
            check_no_overwrite([], [("output", outputs.folder), ("json_path", Path(json_path))])
        written.append(("json_path", Path(json_path)))
    check_no_overwrite([*protected, *(("source", entry.path) for entry in entries)], written)


class ImageWriter:
    """Writes each annotated frame to its own file, whole or not at all (a temporary name, then
    a rename), in the format its suffix names and without EXIF: pixels are already upright."""

    def __init__(self, outputs: ImageOutputs):
        self.outputs = outputs
        self.folder = outputs.folder
        self.written: list[Path] = []
        if self.folder is not None:
            try:
                self.folder.mkdir(exist_ok=True)
            except OSError as error:
                raise OutputError(
                    f"cannot create the folder ({error.strerror or error})",
                    parameter="output",
                    value=self.folder,
                ) from error

    def write(self, bgr: np.ndarray, index: int) -> Path:
        """Write (H, W, 3) uint8 BGR ``bgr`` as the annotated copy of input ``index``.

        Raises:
            OutputError: it cannot be encoded or written (disk full, permissions).
        """
        path = self.outputs.paths[index]
        suffix = path.suffix.lower()
        try:
            ok, encoded = cv2.imencode(suffix, bgr, WRITE_PARAMS.get(suffix, []))
        except cv2.error:
            ok = False
        if not ok:
            raise OutputError(
                f"OpenCV cannot encode {suffix} here; try .png or .jpg",
                parameter="output",
                value=path,
            )
        partial = path.with_name(f".{path.name}.partial")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(encoded.tobytes())
            os.replace(partial, path)
        except OSError as error:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
            raise OutputError(
                f"write failed ({error.strerror or error})", parameter="output", value=path
            ) from error
        self.written.append(path)
        return path
