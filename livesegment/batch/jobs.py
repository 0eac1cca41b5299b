"""INPUTS (files, folders, quoted globs) -> a sorted list of ``VideoJob`` with output paths."""

from __future__ import annotations

import glob
import hashlib
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from livesegment.errors import UsageError
from livesegment.video.images import is_glob
from livesegment.video.media import CONTAINER_SUFFIXES

# What a folder contributes: the containers we write plus common camera and web formats. A
# file named on the command line is taken whatever its suffix (and fails alone if unreadable).
VIDEO_SUFFIXES = (*CONTAINER_SUFFIXES, ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".wmv")
# Written beside a final output until it is complete; never taken for one.
PARTIAL_MARK = ".partial"


@dataclass(frozen=True, slots=True)
class VideoJob:
    """One input video and where its outputs go.

    Attributes:
        source: the input file, absolute.
        video: the annotated video; None when the batch writes detections only.
        jsonl: the detections, one JSON object per frame and a summary line (as ``run --json``).
        summary: the run's summary as one JSON object.
    """

    source: Path
    video: Path | None
    jsonl: Path
    summary: Path

    @property
    def outputs(self) -> dict[str, Path]:
        """The outputs by kind, in the order they are made final."""
        named = {"video": self.video, "jsonl": self.jsonl, "summary": self.summary}
        return {kind: path for kind, path in named.items() if path is not None}


def partial_path(path: Path) -> Path:
    """Where ``path`` is written until complete: ``clip.partial.mp4`` keeps the suffix that
    picks the container."""
    return path.with_name(f"{path.stem}{PARTIAL_MARK}{path.suffix}")


def frame_count(path: Path) -> int | None:
    """How many frames the container says the video has; None when it does not say or
    cannot be read (the batch finds out why when it gets there)."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if stream.frames:
                return stream.frames
            if stream.duration and stream.time_base and stream.average_rate:
                return round(float(stream.duration * stream.time_base * stream.average_rate))
    except (av.FFmpegError, IndexError, OSError, ValueError):
        return None
    return None


def _folder_videos(folder: Path) -> list[Path]:
    return [
        path
        for path in folder.iterdir()
        if path.suffix.lower() in VIDEO_SUFFIXES
        and not path.name.startswith(".")
        and PARTIAL_MARK not in path.name
        and path.is_file()
    ]


def expand_inputs(inputs: tuple[str, ...] | list[str]) -> list[Path]:
    """Files as given, a folder's videos (not its subfolders), a glob's files; absolute,
    without duplicates, sorted.

    Raises:
        UsageError: an input that does not exist, a folder without videos, a glob that
            matches no file, or nothing at all.
    """
    found: set[Path] = set()
    for text in inputs:
        path = Path(text).expanduser()
        if path.is_dir():
            videos = _folder_videos(path)
            if not videos:
                suffixes = ", ".join(VIDEO_SUFFIXES)
                raise UsageError(
                    f"folder has no videos ({suffixes})", parameter="inputs", value=text
                )
            found.update(videos)
        elif path.exists():
            found.add(path)
        elif is_glob(text):
            matches = [Path(m) for m in glob.glob(os.path.expanduser(text)) if Path(m).is_file()]
            if not matches:
                raise UsageError("no file matches this pattern", parameter="inputs", value=text)
            found.update(matches)
        else:
            raise UsageError(
                "no such file or folder; check the path", parameter="inputs", value=text
            )
    if not found:
        raise UsageError("no inputs given", parameter="inputs")
    return sorted({path.absolute() for path in found})


def _output_stems(sources: list[Path]) -> dict[Path, str]:
    """The file name without suffix; two inputs with one stem (``a/clip.mp4``,
    ``b/clip.avi``) each get a short digest of their path, so a rerun maps them alike."""
    counts = Counter(source.stem for source in sources)
    stems = {}
    for source in sources:
        stem = source.stem
        if counts[stem] > 1:
            stem += "-" + hashlib.sha256(str(source).encode()).hexdigest()[:8]
        stems[source] = stem
    return stems


def plan_jobs(sources: list[Path], output_dir: Path, video: bool = True) -> list[VideoJob]:
    """One job per source, outputs named after it under ``output_dir``: ``clip.mp4``,
    ``clip.jsonl``, ``clip.summary.json``."""
    stems = _output_stems(sources)
    return [
        VideoJob(
            source=source,
            video=output_dir / f"{stems[source]}.mp4" if video else None,
            jsonl=output_dir / f"{stems[source]}.jsonl",
            summary=output_dir / f"{stems[source]}.summary.json",
        )
        for source in sources
    ]
