"""An installed livesegment works, not only a clone: the built wheel carries the bundled model and
the sample video, and installs as a tool without what PixelLib's metadata asks for but never uses.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT

OVERRIDES = ROOT / "tool-overrides.txt"
# Packages PixelLib's metadata asks for that an installed tool must not carry.
UNWANTED = ("torch", "PyQt5", "matplotlib", "imgaug", "hydra", "black", "fvcore", "labelme2coco")


def _uv() -> list[str]:
    if found := shutil.which("uv"):
        return [found]
    if importlib.util.find_spec("uv") is not None:
        return [sys.executable, "-m", "uv"]
    pytest.skip("uv is not installed (`pip install uv`; .ci/run installs it)")


def _requirement_lines(lines) -> set[str]:
    return {" ".join(line.split()) for line in lines if line.strip() and not line.startswith("#")}


def test_tool_overrides_equal_the_projects():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    expected = _requirement_lines(project["tool"]["uv"]["override-dependencies"])
    assert _requirement_lines(OVERRIDES.read_text().splitlines()) == expected


def test_clone_uses_the_repositorys_models_folder():
    import livesegment
    from livesegment import doctor
    from livesegment.model import cards as models

    if Path(livesegment.__file__).resolve().parent != ROOT / "livesegment":
        pytest.skip("livesegment is imported from an installed wheel, not from this clone")
    # Hatch's editable install also copies the force-included files into site-packages; those
    # copies go stale when models/ changes, so a clone must read models/ itself.
    assert models.BUNDLED_DIR == ROOT / "models"
    assert doctor.SAMPLE_VIDEO == ROOT / "sample_videos" / "shapes.avi"


def _run(
    command: list, cwd: Path, env: dict, timeout_s: float = 600
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
def test_built_wheel_installs_as_a_tool_and_runs(tmp_path, shapes_video_factory):
    uv = _uv()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("VIRTUAL_ENV", "PYTHONPATH", "DISPLAY", "TF_USE_LEGACY_KERAS")
    }
    env.update(
        UV_TOOL_DIR=str(tmp_path / "tools"),
        UV_TOOL_BIN_DIR=str(tmp_path / "bin"),
        LIVESEGMENT_HOME=str(tmp_path / "home"),
    )
    # Outside the repository: nothing can find ../models or the project's [tool.uv] settings.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    # The sdist first, then the wheel from the sdist, as `uv build` does for a release.
    dist = tmp_path / "dist"
    _run([*uv, "build", "--out-dir", dist], ROOT, env)
    (sdist,) = dist.glob("livesegment-*.tar.gz")
    (wheel,) = dist.glob("livesegment-*.whl")
    with tarfile.open(sdist) as archive:
        top = archive.getnames()[0].split("/")[0]
        assert {f"{top}/models/shapes.h5", f"{top}/tool-overrides.txt"} <= set(archive.getnames())
    with zipfile.ZipFile(wheel) as archive:
        assert {
            "livesegment/bundled_models/shapes.h5",
            "livesegment/bundled_models/shapes.json",
            "livesegment/bundled_samples/shapes.avi",
        } <= set(archive.namelist())

    # The README's command, with the Python running this test (no interpreter download).
    _run(
        [*uv, "tool", "install", "--python", sys.executable, "--overrides", OVERRIDES, wheel],
        elsewhere,
        env,
    )
    tool_env = tmp_path / "tools" / "livesegment"
    (site_packages,) = tool_env.glob("lib/python3*/site-packages")
    pulled = [name for name in UNWANTED if (site_packages / name).exists()]
    assert not pulled, f"the tool install pulled {pulled}"
    livesegment = tmp_path / "bin" / "livesegment"

    listed = _run([livesegment, "models", "list"], elsewhere, env).stdout
    bundled = site_packages / "livesegment" / "bundled_models" / "shapes.h5"
    assert f"shapes (bundled) {bundled}\n  tinynet, 3 classes: circle, square, triangle, " in listed
    assert "; verified (file, card, sha256)\n" in listed

    video, _ = shapes_video_factory(seed=12345, n_frames=10, size_wh=(640, 480))
    _run([livesegment, "run", video, "--no-display", "--json", "dets.jsonl"], elsewhere, env)
    records = [json.loads(line) for line in (elsewhere / "dets.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records[:-1]] == list(range(10))
    assert records[-1]["summary"]["frames_processed"] == 10
    # The bundled model, not a random one: it finds the shapes.
    assert sum(len(r["detections"]) for r in records[:-1]) >= 5
