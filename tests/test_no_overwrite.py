"""No command writes over a file it reads (issue 12): an output that is the source, the model or
the other output, under any spelling, symlink or hard link, is refused with exit 2 before
anything is opened for writing, and before the model (or TensorFlow) loads."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import BUNDLED_CARD, ROOT, needs_bundled_model

from livesegment import pipeline
from livesegment.errors import UsageError
from livesegment.model.cards import resolve_model
from livesegment.paths import check_no_overwrite, same_file
from livesegment.pipeline import runner
from livesegment.structures import Detections, Frame, FrameResult
from livesegment.video.sources import open_source, parse_source


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _livesegment(cwd: Path, *args: str, module: str = "livesegment") -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "DISPLAY"}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _refused(result: subprocess.CompletedProcess, *labels: str) -> str:
    """Exit 2, no traceback, and one error line naming every label."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    for label in labels:
        assert label in errors[0], result.stderr
    return errors[0]


@pytest.fixture
def folder(tmp_path, video_factory) -> Path:
    """A folder holding clip.avi, a real 12-frame MJPG video, and sub/."""
    shutil.copy(video_factory(12, (160, 120)), tmp_path / "clip.avi")
    (tmp_path / "sub").mkdir()
    return tmp_path


def _link(folder: Path, kind: str) -> str:
    if kind == "symlink":
        (folder / "link.avi").symlink_to("clip.avi")
    else:
        os.link(folder / "clip.avi", folder / "link.avi")
    return "link.avi"


@pytest.mark.parametrize(
    ("source", "output_args", "labels"),
    [
        ("clip.avi", ["--output", "clip.avi"], ["--output", "SOURCE"]),
        ("clip.avi", ["--output", "./clip.avi"], ["--output", "SOURCE"]),
        ("clip.avi", ["--output", "sub/../clip.avi"], ["--output", "SOURCE"]),
        ("./sub/../clip.avi", ["--output", "{folder}/clip.avi"], ["--output", "SOURCE"]),
        ("clip.avi", ["--json", "clip.avi"], ["--json", "SOURCE"]),
        ("clip.avi", ["--json", "./sub/../clip.avi", "--output", "out.mp4"], ["--json", "SOURCE"]),
        ("clip.avi", ["--output", "symlink"], ["--output", "SOURCE"]),
        ("symlink", ["--output", "clip.avi"], ["--output", "SOURCE"]),
        ("clip.avi", ["--json", "symlink"], ["--json", "SOURCE"]),
        ("clip.avi", ["--output", "hardlink"], ["--output", "SOURCE"]),
        ("hardlink", ["--json", "clip.avi"], ["--json", "SOURCE"]),
    ],
    ids=[
        "same-path",
        "dot-slash",
        "dot-dot",
        "absolute-vs-relative",
        "json-same-path",
        "json-dot-dot",
        "output-symlink",
        "source-symlink",
        "json-symlink",
        "output-hardlink",
        "json-hardlink",
    ],
)
def test_an_output_that_is_the_source_is_refused_and_the_source_kept(
    folder, source, output_args, labels
):
    source = _link(folder, source) if source in ("symlink", "hardlink") else source
    output_args = [
        _link(folder, arg) if arg in ("symlink", "hardlink") else arg.format(folder=folder)
        for arg in output_args
    ]
    before = _sha256(folder / "clip.avi")
    listing = sorted(p.name for p in folder.iterdir())
    started = time.monotonic()
    result = _livesegment(folder, "run", source, *output_args, "--no-display")
    elapsed_s = time.monotonic() - started
    line = _refused(result, *labels)
    assert "would destroy the input" in line
    assert _sha256(folder / "clip.avi") == before
    assert sorted(p.name for p in folder.iterdir()) == listing, "no output file was created"
    assert elapsed_s < 15, "refused before the model loads"


def test_output_and_json_that_are_one_file_are_refused(folder):
    result = _livesegment(
        folder,
        "run",
        "clip.avi",
        "--output",
        "out.mp4",
        "--json",
        "./sub/../out.mp4",
        "--no-display",
    )
    line = _refused(result, "--output", "--json")
    assert "give each output its own name" in line
    assert not (folder / "out.mp4").exists()


def test_an_output_over_the_model_card_is_refused(tmp_path, video_factory):
    """`--json` pointed at the model's own card would truncate it."""
    needs_bundled_model()
    for name in ("shapes.h5", "shapes.json"):
        shutil.copy(BUNDLED_CARD.parent / name, tmp_path / name)
    shutil.copy(video_factory(12, (160, 120)), tmp_path / "clip.avi")
    before = _sha256(tmp_path / "shapes.json")
    result = _livesegment(
        tmp_path, "run", "clip.avi", "--model", "shapes.h5", "--json", "shapes.json", "--no-display"
    )
    _refused(result, "--json", "model card")
    assert _sha256(tmp_path / "shapes.json") == before


def test_refusal_comes_before_tensorflow_is_imported(folder):
    script = (
        "import sys\n"
        "from livesegment.cli import main\n"
        "try:\n"
        "    main(['run', 'clip.avi', '--output', 'clip.avi', '--no-display'])\n"
        "except SystemExit as end:\n"
        "    print('exit', end.code, 'tensorflow' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=folder, capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip() == "exit 2 False", result.stdout + result.stderr


def test_a_recording_take_never_lands_on_the_source(tmp_path, video_factory):
    """`r` pressed twice with --output out.mp4 records take 2 to out-2.mp4: here that name is
    the file being read, so the take goes to out-3.mp4 instead."""
    needs_bundled_model()
    source = tmp_path / "out-2.mp4"
    shutil.copy(video_factory(6, (160, 120), suffix=".mp4"), source)
    before = _sha256(source)
    options = pipeline.RunOptions(source=str(source), output=tmp_path / "out.mp4", display=False)
    request = parse_source(str(source))
    protected = runner._check_outputs(options, request, resolve_model(None))
    video = open_source(request)
    try:
        recorder = runner.RecordingSink(options, video, protected)
        blank = np.zeros((120, 160, 3), np.uint8)
        frame = Frame(index=0, time_s=0.0, bgr=blank, rgb=blank, captured_at=0.0)
        result = FrameResult(frame, Detections.empty((120, 160)))
        for take in range(2):
            recorder.write(result, blank)
            recorder.toggle()  # stop this take; the first toggle back starts take 2
            if take == 0:
                recorder.toggle()
    finally:
        video.release()
    assert recorder.paths == [tmp_path / "out.mp4", tmp_path / "out-3.mp4"]
    assert _sha256(source) == before


def test_snapshot_names_skip_an_input():
    protected = [("source", ROOT / "sample_videos" / "shapes.avi")]
    first = runner._numbered(ROOT / "sample_videos" / "shapes.avi")
    assert runner.free_path(first, protected) == ROOT / "sample_videos" / "shapes-1.avi"


# --- the check itself -------------------------------------------------------------------------


def test_same_file_sees_spellings_symlinks_and_hard_links(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.avi").write_bytes(b"video")
    (tmp_path / "d").mkdir()
    (tmp_path / "sym.avi").symlink_to("a.avi")
    (tmp_path / "dirlink").symlink_to("d")
    os.link("a.avi", "hard.avi")
    (tmp_path / "dangling.avi").symlink_to("new.avi")
    for other in ("a.avi", "./a.avi", "d/../a.avi", str(tmp_path / "a.avi"), "sym.avi", "hard.avi"):
        assert same_file("a.avi", other), other
    # Outputs that do not exist yet: one path spelled twice, or through a symlink.
    assert same_file("new.avi", "./d/../new.avi")
    assert same_file("dangling.avi", "new.avi")
    assert same_file("dirlink/x.mp4", "d/x.mp4")
    assert not same_file("a.avi", "b.avi")
    assert not same_file("new.avi", "d/new.avi")
    assert not same_file("~/a.avi", "a.avi"), "paths are opened as given, never ~-expanded"


def test_check_no_overwrite_names_both_and_ignores_missing_options(tmp_path):
    source = tmp_path / "a.avi"
    source.write_bytes(b"video")
    check_no_overwrite(
        [("SOURCE", source), ("--model", None)],
        [("--output", tmp_path / "b.mp4"), ("--json", None)],
    )
    with pytest.raises(UsageError, match=r"^--json .*a\.avi is the same file as SOURCE "):
        check_no_overwrite(
            [("SOURCE", source)],
            [("--output", tmp_path / "b.mp4"), ("--json", tmp_path / "." / "a.avi")],
        )
    with pytest.raises(UsageError, match=r"^--json .*b\.mp4 and --output .*b\.mp4 are the same"):
        check_no_overwrite(
            [("SOURCE", source)],
            [("--output", tmp_path / "b.mp4"), ("--json", tmp_path / "d" / ".." / "b.mp4")],
        )


# --- training ---------------------------------------------------------------------------------


def test_training_refuses_to_write_over_its_init_weights(tmp_path):
    needs_bundled_model()
    weights = tmp_path / "start.h5"
    shutil.copy(BUNDLED_CARD.with_suffix(".h5"), weights)
    before = _sha256(weights)
    result = _livesegment(
        tmp_path,
        "--steps",
        "1",
        "--init-weights",
        "start.h5",
        "--out",
        "./start.h5",
        "--checkpoint-dir",
        "ckpt",
        module="livesegment.shapes.training",
    )
    _refused(result, "--out", "--init-weights")
    assert _sha256(weights) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["start.h5"], "not even a log file"


@pytest.mark.parametrize(
    ("init", "extra", "labels"),
    [
        ("ckpt/shapes_step200.h5", [], ["a checkpoint", "--init-weights"]),
        ("w.h5", ["--log-file", "w.h5"], ["--log-file", "--init-weights"]),
        ("w.h5", ["--out", "m.json"], ["the model card", "--out"]),
    ],
)
def test_training_checks_checkpoints_log_and_card(tmp_path, monkeypatch, init, extra, labels):
    import click

    from livesegment.shapes.training import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / init).write_bytes(b"weights")
    args = [
        "--steps",
        "500",
        "--checkpoint-every",
        "100",
        "--checkpoint-dir",
        "ckpt",
        "--init-weights",
        init,
        *extra,
    ]
    if "--out" not in extra:
        args += ["--out", "m.h5"]
    with pytest.raises(click.UsageError) as raised:
        main.main(args, standalone_mode=False)
    for label in labels:
        assert label in raised.value.message
    assert (tmp_path / init).read_bytes() == b"weights"
