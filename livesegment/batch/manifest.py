"""The batch manifest: JSON Lines, one line per input and attempt, appended as each ends.

Each line is written with one ``write`` and flushed to disk before the next input is recorded,
so Ctrl-C or a killed process leaves whole lines; a torn last line (power loss mid-write) is
ignored on reading. The latest line of an input is its state.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from livesegment.errors import OutputError

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"


@dataclass(frozen=True, slots=True)
class OutputFile:
    path: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Record:
    """One attempt at one input.

    Attributes:
        input: the input file, absolute.
        status: "done", "failed", or "lost" (the worker died mid-video; a retry follows
            unless the retries are spent).
        attempts: attempts at this input so far, this one included (across reruns).
        frames: frames processed.
        seconds: wall time of this attempt, model loading excluded.
        error: why it failed, one line; None when done.
        outputs: kind ("video", "jsonl", "summary") -> the final file and its sha256.
        settings: what the outputs depend on (model, threshold, …); a rerun with others redoes.
        worker: who processed it (host and process id).
        node: the machine that processed it: the host name, or the Ray node's address and id.
    """

    input: str
    status: str
    attempts: int
    frames: int = 0
    seconds: float = 0.0
    error: str | None = None
    outputs: dict[str, OutputFile] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    worker: str = ""
    node: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> Record:
        data = json.loads(line)
        outputs = {kind: OutputFile(**value) for kind, value in data.pop("outputs", {}).items()}
        return cls(**data, outputs=outputs)


def read_manifest(path: Path) -> dict[str, Record]:
    """The latest record per input; a missing file is an empty manifest."""
    latest: dict[str, Record] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return latest
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = Record.from_json(line)
        except (ValueError, TypeError, KeyError):
            log.warning("%s line %d is not a record (torn by an interrupted write?)", path, number)
            continue
        latest[record.input] = record
    return latest


class ManifestWriter:
    """Appends records; each is on disk (flushed and fsynced) when ``append`` returns."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self._file = self.path.open("a", encoding="utf-8")
            if self.path.stat().st_size and not self._ends_with_newline():
                # A torn line from a killed run: end it, so the next record stands alone.
                self._file.write("\n")
        except OSError as error:
            raise OutputError(
                f"cannot write the manifest ({error.strerror})", parameter="output_dir"
            ) from error

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as file:
            file.seek(-1, os.SEEK_END)
            return file.read(1) == b"\n"

    def append(self, record: Record) -> None:
        self._file.write(record.to_json() + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
