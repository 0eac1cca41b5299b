"""A real window on a virtual X screen: masks, tracked labels and HUD on screen, keys change
the run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import cv2
import httpx
import numpy as np
import pytest
from conftest import ROOT
from mjpeg_server import free_port

from livesegment.output.overlay import FONT, class_colour_bgr, track_colour_bgr

TOOLS = ("Xvfb", "xdotool", "xwd", "convert")


@pytest.fixture
def x_display():
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"needs {', '.join(missing)} (Debian: xvfb xdotool x11-apps imagemagick; "
            ".ci/run installs them)"
        )
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    try:
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)


def _x(display: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, env={**os.environ, "DISPLAY": display}, capture_output=True, timeout=30
    )


def _screenshot(display: str, window: str) -> np.ndarray | None:
    """The window's own pixels, wherever the X server placed it; None while it cannot be
    captured (xwd refuses a window that is not mapped yet)."""
    xwd = _x(display, "xwd", "-id", window, "-silent").stdout
    if not xwd:
        return None
    png = subprocess.run(
        ["convert", "xwd:-", "png:-"], input=xwd, capture_output=True, timeout=30
    ).stdout
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR) if png else None


def _shows_hud(screen: np.ndarray | None) -> bool:
    if screen is None:
        return False
    hud = screen[:80, :400]
    white_text = (hud > 230).all(axis=2).sum()
    dark_strip = (hud < 70).all(axis=2).sum()
    return white_text > 100 and dark_strip > 2000


LABEL_SCALE = 0.5


def _labels_with_ids(screen: np.ndarray, max_id: int = 60) -> list[int]:
    """Track ids whose label, ``#<id> class score`` on the track's colour, is on ``screen``
    (BGR), found by redrawing the ``#<id>`` prefix the way the overlay draws it and comparing."""
    found = []
    for track_id in range(1, max_id + 1):
        colour = np.array(track_colour_bgr(track_id), np.int16)
        exact = (np.abs(screen.astype(np.int16) - colour).max(axis=2) <= 2).astype(np.uint8)
        # Fill the text's holes, then drop the 2-px box outline: filled label rectangles stay.
        solid = cv2.morphologyEx(exact, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
        solid = cv2.morphologyEx(solid, cv2.MORPH_OPEN, np.ones((7, 7), np.uint8))
        count, _, stats, _ = cv2.connectedComponentsWithStats(solid)
        prefix = f"#{track_id}"
        (width, height), baseline = cv2.getTextSize(prefix, FONT, LABEL_SCALE, 1)
        for x, y, w, h, _ in stats[1:count]:
            if h < 10 or w <= width:
                continue
            # The label is somewhere in this blob (its box's outline may have joined it).
            patch = np.empty((height + baseline + 6, width + 6, 3), np.uint8)
            patch[:] = colour.astype(np.uint8)
            luminance = 0.114 * colour[0] + 0.587 * colour[1] + 0.299 * colour[2]
            ink = (0, 0, 0) if luminance > 128 else (255, 255, 255)
            cv2.putText(patch, prefix, (3, height + 3), FONT, LABEL_SCALE, ink, 1, cv2.LINE_AA)
            patch = patch[2 : height + 5, 2 : width + 4]  # the text and a pixel of label around
            area = screen[max(0, y - 4) : y + h + 4, max(0, x - 4) : x + w + 4]
            if area.shape[0] < patch.shape[0] or area.shape[1] < patch.shape[1]:
                continue
            match = cv2.matchTemplate(area, patch, cv2.TM_SQDIFF_NORMED)
            if match.min() < 0.02:
                found.append(track_id)
                break
    return found


def _window_id(display: str, timeout_s: float = 120) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = _x(
            display, "xdotool", "search", "--onlyvisible", "--name", "^livesegment$"
        ).stdout.split()
        if found:
            return found[0].decode()
        time.sleep(0.5)
    raise AssertionError("the livesegment window never appeared")


def test_window_shows_masks_and_hud_and_obeys_keys(
    tmp_path, x_display, shapes_video_factory, tiny_model
):
    # 60 s of video: the run must outlast a slow model load on a busy machine (q ends it).
    source, _ = shapes_video_factory(seed=4, n_frames=900, size_wh=(480, 360), fps=15.0)
    snapshots = tmp_path / "snaps"
    snapshots.mkdir()
    port = free_port()  # the browser view beside the window
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "livesegment",
            "run",
            str(source),
            "--realtime",
            "--display",
            "--model",
            str(tiny_model.with_suffix(".h5")),
            "--threshold",
            "0",
            "--snapshot-dir",
            str(snapshots),
            "--serve",
            str(port),
        ],
        cwd=ROOT,
        env={**os.environ, "DISPLAY": x_display},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        window = _window_id(x_display)
        # The window opens before the model loads; wait for the first annotated frame.
        deadline = time.monotonic() + 120
        while not _shows_hud(before := _screenshot(x_display, window)):
            if process.poll() is not None:
                raise AssertionError(
                    f"livesegment exited early ({process.returncode}): {process.communicate()[1]}"
                )
            if time.monotonic() > deadline:
                assert before is not None, "the window could never be captured with xwd"
                cv2.imwrite(str(tmp_path / "no_hud.png"), before)
                raise AssertionError(
                    f"no HUD (white text on a dark strip) appeared; "
                    f"screen saved to {tmp_path / 'no_hud.png'}"
                )
            time.sleep(1)
        # Tracked objects take their track's colour, untracked ones their class's.
        colours = np.array(
            [class_colour_bgr(i) for i in (1, 2, 3)] + [track_colour_bgr(i) for i in range(1, 61)],
            np.int16,
        )
        distance = np.abs(before[None].astype(np.int16) - colours[:, None, None]).sum(axis=3)
        assert (distance < 30).sum() > 200, "boxes/masks in class or track colours are on screen"
        assert _labels_with_ids(before), "no '#<track id> class score' label on screen"

        _x(x_display, "xdotool", "key", "--window", window, "plus")
        time.sleep(1.5)
        after = _screenshot(x_display, window)
        assert after is not None, "the window could not be captured after a key press"
        threshold_line = (slice(50, 80), slice(0, 400))
        assert not np.array_equal(before[threshold_line], after[threshold_line])
        # The browser view shows the same run, and the key's change.
        state = httpx.get(f"http://127.0.0.1:{port}/state", timeout=10).json()
        assert state["controls"]["threshold"] == 0.05 and state["frame"] is not None
        frame = httpx.get(f"http://127.0.0.1:{port}/frame.jpg", timeout=10)
        assert cv2.imdecode(np.frombuffer(frame.content, np.uint8), 1).shape == (360, 480, 3)

        _x(x_display, "xdotool", "key", "--window", window, "s")
        deadline = time.monotonic() + 10
        while not list(snapshots.glob("*.png")) and time.monotonic() < deadline:
            time.sleep(0.2)
        _x(x_display, "xdotool", "key", "--window", window, "q")
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            stdout, stderr = process.communicate()
    assert process.returncode == 0, stderr
    assert "stopped early: quit from the window" in stdout
    assert "threshold at the end: 0.05" in stdout
    pngs = list(snapshots.glob("*.png"))
    assert len(pngs) == 1 and cv2.imread(str(pngs[0])).shape == (360, 480, 3)
    assert "QFontDatabase" not in stderr and "Traceback" not in stderr
