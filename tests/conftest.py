"""Shared fixtures: real tiny videos whose frame i encodes i, a real tiny Mask R-CNN, and a
guard that fails any test leaving a ``livesegment-*`` thread alive."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

# Selects tf-keras before any fixture imports TensorFlow (running one test file alone).
from livesegment.model import tfenv

tfenv.ensure_legacy_keras()

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
SAMPLE_VIDEO = ROOT / "sample_videos" / "shapes.avi"
BUNDLED_CARD = ROOT / "models" / "shapes.json"
TINY_CLASSES = ("BG", "circle", "square", "triangle")


def frame_for_index(index: int, size_wh: tuple[int, int]) -> np.ndarray:
    """A BGR frame whose grey level encodes ``index`` (steps of 8, readable after MJPG)."""
    width, height = size_wh
    level = (index * 8) % 256
    frame = np.full((height, width, 3), level, np.uint8)
    cv2.putText(
        frame, str(index), (4, height - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255 - level,) * 3, 1
    )
    return frame


def index_of_frame(bgr: np.ndarray) -> int:
    """Inverse of ``frame_for_index`` modulo 32 (reads the grey level of the top-left block)."""
    return round(float(np.median(bgr[:8, :8])) / 8) % 32


def write_video(
    path: Path, n_frames: int, size_wh=(160, 120), fps: float = 10.0, fourcc: str = "MJPG"
) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size_wh)
    assert writer.isOpened(), f"cannot write {path}"
    for index in range(n_frames):
        writer.write(frame_for_index(index, size_wh))
    writer.release()
    return path


def write_oriented_video(
    path: Path,
    upright_bgr,
    rotation: int = 0,
    hflip: bool = False,
    vflip: bool = False,
    rate=Fraction(10),
    codec: str = "mpeg4",
    pix_fmt: str = "yuv420p",
) -> Path:
    """A phone-style video: a player (display matrix applied) shows the (H, W, 3) uint8 BGR
    pictures ``upright_bgr``, while the file stores them turned the other way.

    ``rotation`` is degrees counter-clockwise on screen, then ``hflip``/``vflip`` mirror the
    rotated picture (PyAV's ``set_display_rotation``; libavutil's display matrix). A phone
    held upright writes ``rotation=270`` (shown turned 90° clockwise).
    """
    if rotation % 90:
        raise ValueError(f"rotation {rotation} is not a multiple of 90")
    with av.open(str(path), "w") as container:
        stream = None
        for index, upright in enumerate(upright_bgr):
            # Undo what a player does: mirror back first, then rotate clockwise.
            stored = upright[:, ::-1] if hflip else upright
            stored = stored[::-1] if vflip else stored
            stored = np.ascontiguousarray(np.rot90(stored, k=-(rotation // 90) % 4))
            if stream is None:
                stream = container.add_stream(codec, rate=rate)
                stream.width, stream.height = stored.shape[1], stored.shape[0]
                stream.pix_fmt = pix_fmt
                stream.bit_rate = 4_000_000
                if rotation % 360 or hflip or vflip:
                    stream.set_display_rotation(rotation, hflip=hflip, vflip=vflip)
            frame = av.VideoFrame.from_ndarray(stored, format="bgr24")
            frame.pts, frame.time_base = index, 1 / Fraction(rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        assert stream is not None, "no pictures"
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.fixture(scope="session")
def video_factory(tmp_path_factory):
    """Writes real MJPG/MP4 files: ``video_factory(n_frames, size_wh, fps, suffix)``."""
    folder = tmp_path_factory.mktemp("videos")
    made: dict[tuple, Path] = {}

    def make(
        n_frames: int = 12, size_wh=(160, 120), fps: float = 10.0, suffix: str = ".avi"
    ) -> Path:
        key = (n_frames, size_wh, fps, suffix)
        if key not in made:
            fourcc = "MJPG" if suffix == ".avi" else "mp4v"
            name = f"v{n_frames}_{size_wh[0]}x{size_wh[1]}_{fps}{suffix}"
            made[key] = write_video(folder / name, n_frames, size_wh, fps, fourcc)
        return made[key]

    return make


@pytest.fixture(scope="session")
def shapes_video_factory(tmp_path_factory):
    """Writes shapes-world videos with ground truth: ``(seed, n_frames, size_wh, fps)``."""
    from livesegment import shapes

    folder = tmp_path_factory.mktemp("shapes_videos")

    def make(
        seed: int = 12345, n_frames: int = 60, size_wh=(640, 480), fps: float = 15.0
    ) -> tuple[Path, Path]:
        video = folder / f"shapes_{seed}_{n_frames}_{size_wh[0]}x{size_wh[1]}.avi"
        truth = video.with_suffix(".truth.jsonl")
        if not video.exists():
            scenes = list(shapes.simulate_video(seed, n_frames, (size_wh[1], size_wh[0]), fps))
            shapes.write_video(video, scenes, fps)
            shapes.write_truth(truth, scenes)
        return video, truth

    return make


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A real PixelLib Mask R-CNN (tinynet, narrow heads) with random weights and a card.

    Returns the card path; the weights are ``tiny.h5`` beside it.
    """
    import tf_keras

    from livesegment.model.cards import write_card
    from livesegment.model.segmenter import build_model

    folder = tmp_path_factory.mktemp("tiny_model")
    spec = tiny_spec(folder / "tiny.h5")
    # Seeded: tests that need some detection at threshold 0 must not depend on the luck of an
    # unseeded initialisation (some draws let background win every ROI).
    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(1234)
    model = build_model(spec)
    model.keras_model.save_weights(str(spec.weights))
    card = folder / "tiny.json"
    write_card(spec, card)
    return card


def remove_layer(path: Path, layer: str = "mrcnn_mask_conv1") -> None:
    """Delete one layer's weights from a Keras .h5 file, as a broken export would."""
    import h5py

    with h5py.File(path, "r+") as h5:
        del h5[layer]
        h5.attrs["layer_names"] = [
            n for n in h5.attrs["layer_names"] if n not in (layer.encode(), layer)
        ]


def tiny_spec(weights: Path, class_names=TINY_CLASSES):
    from livesegment.model.cards import ModelSpec

    return ModelSpec(
        name="tiny",
        weights=Path(weights),
        backbone="tinynet",
        class_names=tuple(class_names),
        input_size=128,
        detection_max_instances=4,
        post_nms_rois_inference=50,
        pyramid_size=16,
        fc_layers_size=32,
        rpn_anchor_scales=(8, 16, 32, 64, 128),
        default_threshold=0.5,
    )


def run_cli(
    *args: str, timeout_s: float = 600, env: dict | None = None, module: str = "livesegment"
) -> subprocess.CompletedProcess:
    """Run ``python -m MODULE ARGS`` as a user would, capturing both streams."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("TF_USE_LEGACY_KERAS", None)  # prove the package sets it itself
    full_env.pop("DISPLAY", None)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=full_env,
    )


def invoke_cli(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI in this process (TensorFlow already loaded: seconds faster than a
    subprocess); same result shape as ``run_cli``.

    The streams hold what a terminal would show: click's output, the log lines of the CLI's
    own ``logging.basicConfig`` (pytest's handlers are set aside, as a fresh process has none)
    and whatever C libraries (FFmpeg, OpenCV) write straight to file descriptors 1 and 2. Only
    what a fresh process prints while importing TensorFlow cannot show here: tests of that
    use ``run_cli``."""
    import logging
    import signal
    import tempfile

    from click.testing import CliRunner

    from livesegment.cli import main

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    previous = signal.getsignal(signal.SIGTERM)
    with tempfile.TemporaryFile() as raw_out, tempfile.TemporaryFile() as raw_err:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(raw_out.fileno(), 1)
        os.dup2(raw_err.fileno(), 2)
        root.handlers = []
        try:
            result = CliRunner().invoke(main, list(args), env={"DISPLAY": None})
        finally:
            root.handlers = handlers
            root.setLevel(level)
            signal.signal(signal.SIGTERM, previous)
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        raw_out.seek(0)
        raw_err.seek(0)
        fd_out = raw_out.read().decode(errors="replace")
        fd_err = raw_err.read().decode(errors="replace")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(
        args, result.exit_code, result.stdout + fd_out, result.stderr + fd_err
    )


def needs_shared_data(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/data is only on the project's machines)")
    return path


def needs_bundled_model() -> Path:
    if not BUNDLED_CARD.exists():
        pytest.skip("models/shapes.json is not built yet (see python -m livesegment.shapes train)")
    return BUNDLED_CARD


@pytest.fixture(autouse=True)
def fresh_keras_graph():
    """PixelLib runs Keras in TF1 graph mode, where every model built in this process stays in
    one global graph and makes each later build and load slower; no test keeps a model."""
    yield
    if "tf_keras" in sys.modules:
        sys.modules["tf_keras"].backend.clear_session()


@pytest.fixture(autouse=True)
def no_leaked_threads():
    yield
    deadline = time.monotonic() + 2.0
    while True:
        alive = [
            t.name
            for t in threading.enumerate()
            if t.name.startswith("livesegment-") and t.is_alive()
        ]
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not alive, f"threads outlived the test: {alive}"


def probe(path):
    """(video codec, frames decoded, average rate, video duration s, audio duration s|None)."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio_duration = None
        if container.streams.audio:
            audio = container.streams.audio[0]
            last_end = 0.0
            for packet in container.demux(audio):
                if packet.pts is not None:
                    last_end = max(
                        last_end, float((packet.pts + packet.duration) * packet.time_base)
                    )
            audio_duration = last_end
        container.seek(0)
        times = []
        for packet in container.demux(video=0):
            try:  # a player skips a damaged last packet (a full disk cut it short)
                times += [float(frame.time) for frame in packet.decode()]
            except av.error.FFmpegError:
                pass
        codec = video.codec_context.name
        rate = video.average_rate
    step = times[1] - times[0] if len(times) > 1 else 0
    return codec, len(times), rate, (times[-1] + step if times else 0.0), audio_duration


# ``livesegment batch``: the inputs every batch test shares, and the wall times they measured.
BATCH_SEEDS = (5, 8, 12, 21)
BATCH_WALL_TIMES: dict[str, float] = {}


def jsonl_without_timing(path: Path) -> list[dict]:
    """A detections JSONL's lines with the summary's elapsed time removed."""
    import json

    lines = [json.loads(line) for line in Path(path).read_text().splitlines()]
    lines[-1]["summary"].pop("elapsed_s")
    return lines


@pytest.fixture(scope="session")
def batch_videos(tmp_path_factory, shapes_video_factory):
    """Four tiny shapes videos in one folder, and each one's JSONL from a sequential
    ``livesegment run`` (stem -> lines)."""
    import shutil

    needs_bundled_model()
    folder = tmp_path_factory.mktemp("batch_inputs")
    expected = {}
    started = time.monotonic()
    for seed in BATCH_SEEDS:
        made, _ = shapes_video_factory(seed, 12, (160, 120), 10.0)
        video = shutil.copy(made, folder / f"clip{seed}.avi")
        dets = folder.parent / f"run{seed}.jsonl"
        result = invoke_cli("run", str(video), "--no-display", "--json", str(dets))
        assert result.returncode == 0, result.stderr
        expected[f"clip{seed}"] = jsonl_without_timing(dets)
    BATCH_WALL_TIMES["4 x run, one after another (in this process)"] = time.monotonic() - started
    return folder, expected


@pytest.fixture(scope="session")
def long_batch_video(tmp_path_factory, shapes_video_factory):
    """A 40-frame shapes video, long enough to kill a worker in the middle of it, and the
    JSONL ``livesegment run`` writes for it."""
    needs_bundled_model()
    video, _ = shapes_video_factory(3, 40, (160, 120), 10.0)
    reference = tmp_path_factory.mktemp("long_run") / "run.jsonl"
    result = invoke_cli("run", str(video), "--no-display", "--json", str(reference))
    assert result.returncode == 0, result.stderr
    return video, jsonl_without_timing(reference)


def wait_for_frames(path: Path, frames: int, process: subprocess.Popen, timeout_s=300) -> None:
    """Until the JSONL at ``path`` has ``frames`` lines (the video is under way)."""
    deadline = time.monotonic() + timeout_s
    while not (path.exists() and path.read_text().count("\n") >= frames):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} did not get {frames} frames in {timeout_s} s"
        time.sleep(0.05)


def batch_manifest(folder: Path) -> list[dict]:
    """Every line of a batch's manifest, in order."""
    import json

    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


def running_processes() -> Iterator[tuple[int, int, bytes]]:
    """(pid, parent pid, command line with NULs) of each process, from /proc."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # ended while being read
        yield int(entry.name), ppid, command


def assert_batch_matches_run(out: Path, expected: dict[str, list[dict]]) -> None:
    """Each batch output equals what ``run`` wrote (``batch_videos``), nothing half-written."""
    import json

    for stem, lines in expected.items():
        assert jsonl_without_timing(out / f"{stem}.jsonl") == lines, f"{stem} differs from run's"
        assert (out / f"{stem}.mp4").stat().st_size > 0
        summary = json.loads((out / f"{stem}.summary.json").read_text())
        assert summary["summary"]["frames_processed"] == 12
    assert not list(out.glob("*.partial.*")), "no partial file is left behind"
    assert not list(out.glob(".livesegment-*")), "the output folder's marker is removed"


def pytest_terminal_summary(terminalreporter):
    if BATCH_WALL_TIMES:
        terminalreporter.section("batch wall times (4 videos of 12 frames, bundled model)")
        for name, seconds in BATCH_WALL_TIMES.items():
            terminalreporter.write_line(f"{seconds:6.1f} s  {name}")
