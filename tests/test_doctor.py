"""``livesegment doctor``: every check printed, failures named with their fix, exit status."""

from __future__ import annotations

import shutil
import time

import pytest
from click.testing import CliRunner
from conftest import BUNDLED_CARD, needs_bundled_model, run_cli, tiny_spec

from livesegment import doctor
from livesegment.cli import main
from livesegment.model.cards import write_card

EVERY_CHECK = (
    "Python: 3.",
    "TensorFlow: 2.",
    "tf-keras: 2.",
    "PixelLib: 0.7.1",
    "OpenCV: ",
    "numpy: ",
    "display: ",
    "cameras: ",
    "video encoder h264/.mp4 (PyAV, used by run --output): ",
    "OpenCV writer mp4v/.mp4: ",
    "OpenCV writer MJPG/.avi: ",
    "OpenCV writer avc1/.mp4: ",
    "TensorFlow device: ",
    "Keras: TF_USE_LEGACY_KERAS=1 and tf.keras is tf-keras 2.",
    "model shapes (bundled): ",
    "smoke run: ",
)


@pytest.fixture(scope="module")
def doctor_here(tmp_path_factory):
    needs_bundled_model()
    home = tmp_path_factory.mktemp("home")
    return run_cli("doctor", env={"LIVESEGMENT_HOME": str(home)})


def test_doctor_prints_every_check(doctor_here):
    result = doctor_here
    for needle in EVERY_CHECK:
        assert needle in result.stdout, f"{needle!r} missing from:\n{result.stdout}"
    assert not [line for line in result.stdout.splitlines() if line.startswith("FAIL")], (
        result.stdout
    )
    assert "Traceback" not in result.stdout + result.stderr
    assert (
        "model shapes (bundled): tinynet, 3 classes: circle, square, triangle; "
        "loads completely" in result.stdout
    )


def test_doctor_passes_on_this_machine(doctor_here):
    result = doctor_here
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == "", "no TensorFlow or OpenCV noise on stderr"
    assert "FAIL" not in result.stdout
    assert (
        "model shapes (bundled): tinynet, 3 classes: circle, square, triangle; "
        "loads completely" in result.stdout
    )
    assert "smoke run: shapes found" in result.stdout
    assert result.stdout.rstrip().endswith("doctor: everything needed works")


def test_doctor_names_a_broken_model_and_exits_1(tmp_path, tiny_model, monkeypatch):
    folder = tmp_path / "models"
    folder.mkdir()
    broken = folder / "broken.h5"
    data = tiny_model.with_suffix(".h5").read_bytes()
    broken.write_bytes(data[: len(data) // 3])
    write_card(tiny_spec(broken), folder / "broken.json")
    shutil.copy(tiny_model.with_suffix(".h5"), folder / "fine.h5")
    monkeypatch.setenv("LIVESEGMENT_HOME", str(tmp_path))

    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 1, result.output
    model_failures = [line for line in result.output.splitlines() if line.startswith("FAIL  model")]
    assert len(model_failures) == 1, result.output
    assert model_failures[0].startswith(
        f"FAIL  model broken (user): does not load: {broken}: truncated weights file"
    )
    assert f"fix: `livesegment models verify {broken}`" in result.output
    assert (
        "OK    model fine (user): tinynet, 3 classes: class_1, class_2, class_3; "
        "loads completely (45 layers)" in result.output
    )
    if BUNDLED_CARD.exists():
        assert "OK    model shapes (bundled)" in result.output
    assert "problem" in result.output.splitlines()[-1]


def test_missing_cameras_are_information_and_quick():
    started = time.monotonic()
    check = doctor.check_cameras(timeout_s=2.0)
    assert time.monotonic() - started < 4 * 2.0 + 1
    if check.status == "ok":
        pytest.skip(f"this machine has a camera: {check.detail}")
    assert check.status == "info" and check.fix, check
    assert "none of 0-9 delivers frames" in check.detail


def test_display_is_information_not_failure(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    headless = doctor.check_display()
    assert headless.status == "info" and "--no-display" in headless.fix
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert doctor.check_display().status == "ok"


def test_video_writers_are_written_and_read_back(tmp_path):
    checks = {check.name: check for check in doctor.check_writers()}
    assert checks["video encoder h264/.mp4 (PyAV, used by run --output)"].status == "ok"
    assert checks["OpenCV writer mp4v/.mp4"].status == "ok"
    assert checks["OpenCV writer MJPG/.avi"].status == "ok"
    assert checks["OpenCV writer avc1/.mp4"].status in ("ok", "info")
    assert doctor.frames_written_and_read("MJPG", ".avi", tmp_path, n_frames=3) == 3


def test_versions_come_from_package_metadata():
    checks = doctor.check_packages()
    assert [c.name for c in checks] == ["TensorFlow", "tf-keras", "PixelLib", "OpenCV", "numpy"]
    assert all(c.status == "ok" for c in checks), checks


def test_a_crashing_check_is_a_failure_not_a_traceback(monkeypatch):
    def check_broken():
        raise RuntimeError("probe exploded\nsecond line")

    monkeypatch.setattr(doctor, "CHECKS", (doctor.check_python, check_broken))
    checks = list(doctor.run_checks())
    assert [c.status for c in checks] == ["ok", "fail"]
    assert checks[1].detail == "check crashed: RuntimeError: probe exploded"
