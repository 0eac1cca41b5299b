"""Health checks: can this machine run livesegment, and why would it capture nothing?

``run_checks`` yields the ``doctor`` checks one at a time: versions, TensorFlow's device, the
legacy-Keras switch, every known model (through ``verify.verify_weights``), cameras, display,
video writers and a one-frame smoke run of the default model. TensorFlow is imported only by the
checks that need it.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from livesegment.errors import ModelError
from livesegment.model import tfenv
from livesegment.model.cards import BUNDLED_DIR, resolve_model, user_models_dir
from livesegment.model.resources import data_dir
from livesegment.model.verify import describe_classes, installed_models, verify_weights
from livesegment.video.sources import CAMERA_PROBE_INDICES, CAMERA_TIMEOUT_S, probe_camera

SAMPLE_VIDEO = data_dir("bundled_samples", "sample_videos") / "shapes.avi"

Status = Literal["ok", "info", "fail"]


@dataclass(frozen=True, slots=True)
class Check:
    """One ``doctor`` finding. ``status`` "info" is not a failure (no camera on a server);
    ``fix`` is the remedy for a failure, or a hint for information."""

    name: str
    status: Status
    detail: str
    fix: str | None = None

    def format(self) -> str:
        line = f"{self.status.upper():<4}  {self.name}: {self.detail}"
        label = "fix" if self.status == "fail" else "hint"
        return line + (f"\n      {label}: {self.fix}" if self.fix else "")


REQUIRED_PACKAGES = (
    ("TensorFlow", ("tensorflow", "tensorflow-cpu", "tensorflow-macos")),
    ("tf-keras", ("tf-keras",)),
    ("PixelLib", ("pixellib",)),
    (
        "OpenCV",
        (
            "opencv-python",
            "opencv-python-headless",
            "opencv-contrib-python",
            "opencv-contrib-python-headless",
        ),
    ),
    ("numpy", ("numpy",)),
)


def _version(distributions: tuple[str, ...]) -> str | None:
    for distribution in distributions:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def check_python() -> Check:
    version = platform.python_version()
    if (3, 10) <= sys.version_info[:2] < (3, 14):
        return Check("Python", "ok", f"{version} ({sys.executable})")
    return Check(
        "Python",
        "fail",
        f"{version} is not supported",
        "use Python 3.10-3.13 (uv python install 3.12)",
    )


def check_packages() -> list[Check]:
    """Installed versions, read from package metadata so nothing heavy is imported."""
    versions = {label: _version(names) for label, names in REQUIRED_PACKAGES}
    checks = []
    for label, version in versions.items():
        if version is None:
            checks.append(Check(label, "fail", "not installed", "run `uv sync` in the project"))
        else:
            checks.append(Check(label, "ok", version))
    tf_version, keras_version = versions["TensorFlow"], versions["tf-keras"]
    if tf_version and keras_version and tf_version.split(".")[:2] != keras_version.split(".")[:2]:
        checks.append(
            Check(
                "tf-keras",
                "fail",
                f"{keras_version} does not match TensorFlow "
                f"{tf_version} (Keras 2 must be the same minor release)",
                "run `uv sync` (pins both to 2.21)",
            )
        )
    if versions["PixelLib"] and versions["PixelLib"] != "0.7.1":
        checks.append(
            Check(
                "PixelLib",
                "fail",
                f"{versions['PixelLib']} installed; livesegment is written against 0.7.1",
                "run `uv sync` (pins pixellib==0.7.1)",
            )
        )
    return checks


def check_display() -> Check:
    from livesegment.output.sinks import display_available

    if display_available():
        return Check("display", "ok", "available; `run` shows a window by default")
    return Check(
        "display",
        "info",
        "none usable (no DISPLAY or WAYLAND_DISPLAY that works)",
        "windows cannot open here; use --no-display with --output/--json",
    )


class _QuietOpenCV:
    """OpenCV's and FFmpeg's own log lines off the terminal while probing devices and codecs."""

    def __enter__(self) -> None:
        self._level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        # FFmpeg writes to file descriptor 2 directly, below OpenCV's logger.
        self._stderr = tfenv.silenced_stderr()
        self._stderr.__enter__()

    def __exit__(self, *exc_info) -> None:
        self._stderr.__exit__(*exc_info)
        cv2.utils.logging.setLogLevel(self._level)


def check_cameras(indices=CAMERA_PROBE_INDICES, timeout_s: float = CAMERA_TIMEOUT_S) -> Check:
    with _QuietOpenCV():
        results = {index: probe_camera(index, timeout_s) for index in indices}
    working = [str(i) for i, result in results.items() if result == "delivers frames"]
    checked = f"{min(indices)}-{max(indices)}"
    if working:
        return Check("cameras", "ok", f"{', '.join(working)} deliver frames (checked {checked})")
    others = "; ".join(f"{i}: {r}" for i, r in results.items() if r != "absent")
    return Check(
        "cameras",
        "info",
        f"none of {checked} delivers frames"
        + (f" ({others})" if others else " (no camera attached)"),
        "a camera is only needed for live input; pass a video file or stream URL",
    )


# (fourcc, suffix, what needs it). `run --output` encodes with FFmpeg through PyAV
# (``media.MediaWriter``); OpenCV's writers are still used to render the sample videos.
OPENCV_WRITERS = (
    ("mp4v", ".mp4", None),
    ("MJPG", ".avi", "`python -m livesegment.shapes`"),
    ("avc1", ".mp4", None),
)
PROBE_FRAMES = 5


def _probe_frame(index: int) -> np.ndarray:
    return np.full((48, 64, 3), index * 40, np.uint8)


def frames_read_back(path: Path) -> int:
    """Frames of 64x48 that OpenCV decodes from ``path``."""
    capture = cv2.VideoCapture(str(path))
    count = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        count += frame.shape[:2] == (48, 64)
    capture.release()
    return count


def frames_written_and_read(
    fourcc: str, suffix: str, folder: Path, n_frames: int = PROBE_FRAMES
) -> int:
    """Write ``n_frames`` 64x48 frames with OpenCV's ``fourcc`` writer; count those read back."""
    path = folder / f"probe_{fourcc}{suffix}"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, (64, 48))
    if not writer.isOpened():
        return 0
    for index in range(n_frames):
        writer.write(_probe_frame(index))
    writer.release()
    return frames_read_back(path)


def check_writers() -> list[Check]:
    from livesegment.errors import LivesegmentError
    from livesegment.video.media import MediaWriter

    checks = []
    with tempfile.TemporaryDirectory(prefix="livesegment-doctor-") as folder, _QuietOpenCV():
        name = "video encoder h264/.mp4 (PyAV, used by run --output)"
        path = Path(folder) / "probe_h264.mp4"
        try:
            writer = MediaWriter(path, (64, 48), 10)
            try:
                for index in range(PROBE_FRAMES):
                    writer.write(_probe_frame(index))
            finally:
                writer.close()
            count = frames_read_back(path)
            problem = (
                None if count == PROBE_FRAMES else f"{count} of {PROBE_FRAMES} frames read back"
            )
        except LivesegmentError as error:
            problem = str(error)
        checks.append(
            Check(name, "ok", f"writes {PROBE_FRAMES} frames that read back")
            if problem is None
            else Check(
                name, "fail", problem, "pass --codec mpeg4 to run, or reinstall PyAV with `uv sync`"
            )
        )
        for fourcc, suffix, needed_by in OPENCV_WRITERS:
            name = f"OpenCV writer {fourcc}/{suffix}"
            count = frames_written_and_read(fourcc, suffix, Path(folder))
            if count == PROBE_FRAMES:
                checks.append(Check(name, "ok", f"writes {PROBE_FRAMES} frames that read back"))
            elif needed_by:
                checks.append(
                    Check(
                        name,
                        "fail",
                        f"{count} of {PROBE_FRAMES} frames read back; {needed_by} needs it",
                        "reinstall OpenCV with `uv sync`",
                    )
                )
            else:
                checks.append(
                    Check(
                        name,
                        "info",
                        "not available in this OpenCV build",
                        "not needed: run --output encodes with PyAV",
                    )
                )
    return checks


def check_tensorflow() -> list[Check]:
    with tfenv.importing_tensorflow():
        import tensorflow as tf
        import tf_keras
    gpus = tf.config.list_physical_devices("GPU")
    device = Check(
        "TensorFlow device",
        "ok",
        f"GPU: {', '.join(g.name for g in gpus)}" if gpus else "CPU (no GPU visible to TensorFlow)",
    )
    switch = os.environ.get("TF_USE_LEGACY_KERAS")
    is_tf_keras = getattr(tf.keras, "Model", None) is tf_keras.Model
    if switch == "1" and is_tf_keras:
        keras = Check(
            "Keras", "ok", f"TF_USE_LEGACY_KERAS=1 and tf.keras is tf-keras {tf_keras.__version__}"
        )
    else:
        keras = Check(
            "Keras",
            "fail",
            f"TF_USE_LEGACY_KERAS={switch}, tf.keras is "
            f"{tf.keras.__name__}: PixelLib needs Keras 2 (tf-keras)",
            "load livesegment's models before importing TensorFlow, or export "
            "TF_USE_LEGACY_KERAS=1",
        )
    return [device, keras]


def check_models() -> list[Check]:
    from livesegment.model.download import partial_downloads

    models = installed_models()
    checks = []
    if not models:
        checks.append(
            Check(
                "models",
                "fail",
                f"no model found in {BUNDLED_DIR} or {user_models_dir()}",
                "reinstall livesegment (its wheel ships the "
                "shapes model), or `livesegment models download coco`",
            )
        )
    for model in models:
        report = verify_weights(model.weights, card=model.card, full=True)
        name = f"model {model.name} ({model.location})"
        if report.ok:
            checks.append(
                Check(
                    name,
                    "ok",
                    f"{report.backbone}, "
                    f"{describe_classes(report.class_names or ())}; loads completely "
                    f"({report.model_layers} layers) from {model.weights}",
                )
            )
        else:
            problem = report.problem or ""
            detail = problem if str(model.weights) in problem else f"{model.weights}: {problem}"
            checks.append(
                Check(
                    name,
                    "fail",
                    f"does not load: {detail}",
                    f"`livesegment models verify {model.weights}` for details; "
                    "download it again or remove it",
                )
            )
    for entry, part in partial_downloads(user_models_dir()):
        command = f"`livesegment models download {entry.name}`" if entry else "a download"
        checks.append(
            Check(
                "unfinished download",
                "info",
                f"{part} ({part.stat().st_size / 1e6:.1f} MB so far)",
                f"re-run {command} to resume it, or delete the file",
            )
        )
    return checks


def check_smoke_run(video: Path = SAMPLE_VIDEO) -> Check:
    """Segment one frame of the bundled sample with the default model; it must find something.

    The frame is the first one its ground truth says holds objects.
    """
    name = "smoke run"
    truth = video.with_suffix(".truth.jsonl")
    if not video.exists() or not truth.exists():
        return Check(
            name,
            "info",
            f"skipped: sample video {video} not found",
            "reinstall livesegment (its wheel ships the sample video)",
        )
    records = (json.loads(line) for line in truth.read_text().splitlines() if line.strip())
    first = next((r for r in records if r["objects"]), None)
    if first is None:
        return Check(
            name,
            "fail",
            f"{truth} lists no object in any frame",
            "regenerate the sample (see sample_videos/README.md)",
        )
    frame_index, expected = first["frame"], [obj["class"] for obj in first["objects"]]
    try:
        spec = resolve_model(None)
    except ModelError as error:
        return Check(
            name,
            "fail",
            f"default model unavailable: {error}",
            "reinstall livesegment, or restore models/ in a clone",
        )
    capture = cv2.VideoCapture(str(video))
    capture.set(cv2.CAP_PROP_POS_FRAMES, frame_index)
    ok, bgr = capture.read()
    capture.release()
    if not ok:
        return Check(
            name, "fail", f"OpenCV cannot decode {video}", "reinstall OpenCV with `uv sync`"
        )
    from livesegment.model.detector import Detector

    try:
        detector = Detector.load(spec)
    except ModelError as error:
        return Check(name, "fail", str(error), f"`livesegment models verify {spec.weights}`")
    started = time.monotonic()
    detections = detector(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    elapsed_ms = (time.monotonic() - started) * 1000
    found = sorted(detections.class_names.tolist())
    where = f"frame {frame_index} of {video.name} (truth: {', '.join(sorted(expected))})"
    if not found:
        return Check(
            name,
            "fail",
            f"{spec.name} found nothing on {where}: {detections.empty_reason}",
            f"the weights loaded completely, so the model itself is too weak at "
            f"threshold {spec.default_threshold:.2f}: retrain it (python -m "
            "livesegment.shapes train) or lower default_threshold in its card",
        )
    return Check(
        name, "ok", f"{spec.name} found {', '.join(found)} on {where} in {elapsed_ms:.0f} ms"
    )


CHECKS: tuple[Callable[[], Check | list[Check]], ...] = (
    check_python,
    check_packages,
    check_display,
    check_cameras,
    check_writers,
    check_tensorflow,
    check_models,
    check_smoke_run,
)


def run_checks(reraise: bool = False) -> Iterator[Check]:
    """Every check in order, cheap ones first; a check that crashes is reported as failed."""
    for check in CHECKS:
        try:
            result = check()
        except Exception as error:
            if reraise:
                raise
            first_line = (str(error).splitlines() or [""])[0]
            result = Check(
                check.__name__.removeprefix("check_"),
                "fail",
                f"check crashed: {type(error).__name__}: {first_line}",
                "rerun with --debug and report it",
            )
        yield from result if isinstance(result, list) else [result]
