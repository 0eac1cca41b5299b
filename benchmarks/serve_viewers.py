"""Does watching a run in browsers slow it down? The pipeline's frame rate with ``--serve`` and
nobody watching, against three viewers at once, one of them reading slowly.

    uv run python benchmarks/serve_viewers.py                       # about 6 minutes, 2 cores
    uv run python benchmarks/serve_viewers.py --frames 90 --rounds 1
    uv run python benchmarks/serve_viewers.py --screenshot docs/serve.png   # the README's

Each run is ``livesegment run VIDEO --no-display --json … [--serve 127.0.0.1:0]`` as a user
types it (the bundled ``shapes`` model on a fresh 640x480 shapes video, every frame processed
as fast as the machine allows); its rate is the JSONL summary's frames / elapsed seconds.
Configurations are interleaved round by round, so drift on a shared machine hits each alike:

- ``no --serve``: the baseline, no web view at all;
- ``--serve, 0 viewers``: the server runs and every frame is drawn and JPEG-encoded;
- ``--serve, 3 viewers``: two viewers read the MJPEG stream as fast as it comes and poll
  ``/state`` like the page (every 0.3 s); the third has a 4 KiB receive buffer and reads 4 KiB
  a second, so its socket stays full for the whole run.

The viewers are in this process, on raw sockets; they connect as soon as the URL is printed
(before the model loads) and read until the run ends the stream.
"""

from __future__ import annotations

import json
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import click

ROOT = Path(__file__).resolve().parent.parent
BOUNDARY = b"--frame\r\n"


class Viewer(threading.Thread):
    """Reads ``/stream.mjpg`` (and polls ``/state`` unless slow), counting frames."""

    def __init__(self, url: str, slow: bool):
        super().__init__(daemon=True, name="viewer-slow" if slow else "viewer")
        parts = urlsplit(url)
        self.address = (parts.hostname, parts.port)
        self.slow = slow
        self.frames = 0
        self.bytes = 0
        self.done = threading.Event()

    def _connect(self) -> socket.socket:
        sock = socket.socket()
        if self.slow:
            # Set before connecting, so the window the server sees is small from the start.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(self.address)
        return sock

    def _poll_state(self) -> None:
        while not self.done.is_set():
            try:
                with self._connect() as sock:
                    sock.sendall(
                        b"GET /state HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                    )
                    while sock.recv(65536):
                        pass
            except OSError:
                return
            time.sleep(0.3)

    def run(self) -> None:
        if not self.slow:
            threading.Thread(target=self._poll_state, daemon=True).start()
        try:
            with self._connect() as sock:
                sock.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                tail = b""
                while True:
                    chunk = sock.recv(4096 if self.slow else 65536)
                    if not chunk:
                        break
                    self.bytes += len(chunk)
                    data = tail + chunk
                    self.frames += data.count(BOUNDARY)
                    tail = data[-len(BOUNDARY) :]
                    if self.slow:
                        time.sleep(1.0)
        except OSError:
            pass
        finally:
            self.done.set()


def make_video(folder: Path, frames: int) -> Path:
    from livesegment import shapes

    video = folder / "shapes.avi"
    scenes = list(shapes.simulate_video(7, frames, (480, 640), 15.0))
    shapes.write_video(video, scenes, 15.0)
    return video


def one_run(video: Path, folder: Path, name: str, serve: bool, viewers: int) -> dict:
    jsonl = folder / f"{name}.jsonl"
    command = [sys.executable, "-m", "livesegment", "run", str(video), "--no-display"]
    command += ["--json", str(jsonl)] + (["--serve", "127.0.0.1:0"] if serve else [])
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    started: list[Viewer] = []
    stderr = []
    for line in process.stderr:
        stderr.append(line)
        if match := re.match(r"browser view: (\S+)", line):
            started = [Viewer(match[1], slow=index == viewers - 1) for index in range(viewers)]
            for viewer in started:
                viewer.start()
            break
    stderr += process.stderr.readlines()
    process.wait()
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    for viewer in started:
        viewer.join(10)
    if process.returncode != 0:
        raise SystemExit(f"{name}: exit {process.returncode}: {''.join(stderr)}")
    summary = json.loads(jsonl.read_text().splitlines()[-1])["summary"]
    return {
        "fps": summary["frames_processed"] / summary["elapsed_s"],
        "frames": summary["frames_processed"],
        "viewer_frames": [viewer.frames for viewer in started],
        # The whole process (model load included), which other jobs on the machine do not
        # inflate as they do the wall clock.
        "cpu_s": (cpu_after.ru_utime + cpu_after.ru_stime)
        - (cpu_before.ru_utime + cpu_before.ru_stime),
    }


def _frame_index(page) -> int:
    match = re.search(r"#(\d+)", page.locator("#hud-frame").inner_text())
    return int(match[1]) if match else -1


def screenshot(path: Path) -> None:
    """The page, watching the bundled model on the bundled sample, as a desktop and a phone
    show it (``path`` and ``…-phone.png``)."""
    from playwright.sync_api import sync_playwright

    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "livesegment", "run", "sample_videos/shapes.avi"),
            *("--realtime", "--no-display", "--serve", "127.0.0.1:0"),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = next(m[1] for line in process.stderr if (m := re.match(r"browser view: (\S+)", line)))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
            for suffix, viewport, scale in (("", (1280, 760), 1), ("-phone", (390, 844), 2)):
                page = browser.new_page(
                    viewport={"width": viewport[0], "height": viewport[1]},
                    device_scale_factor=scale,
                )
                page.goto(url)
                deadline = time.monotonic() + 120
                # Some seconds in, so the rates are measured, with a frame shown and detections.
                while time.monotonic() < deadline and not (
                    page.locator("#detections li").count() >= 2
                    and page.evaluate("document.getElementById('video').naturalWidth") > 0
                    and _frame_index(page) >= 40
                ):
                    time.sleep(0.2)
                time.sleep(0.5)
                page.screenshot(path=str(path.with_stem(path.stem + suffix)), full_page=not suffix)
                page.close()
            browser.close()
    finally:
        process.terminate()
        process.wait(30)


@click.command()
@click.option("--frames", default=150, show_default=True, help="Frames of the test video.")
@click.option("--rounds", default=2, show_default=True, help="Runs of each configuration.")
@click.option("--screenshot", "shot", type=click.Path(path_type=Path), default=None)
def main(frames: int, rounds: int, shot: Path | None) -> None:
    if shot is not None:
        screenshot(shot)
        click.echo(f"wrote {shot}")
        return
    configs = {
        "no --serve": (False, 0),
        "--serve, 0 viewers": (True, 0),
        "--serve, 3 viewers (1 slow)": (True, 3),
    }
    results: dict[str, list[dict]] = {name: [] for name in configs}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        video = make_video(folder, frames)
        for round_ in range(rounds):
            for name, (serve, viewers) in configs.items():
                run = one_run(video, folder, f"r{round_}-{len(results[name])}", serve, viewers)
                results[name].append(run)
                click.echo(
                    f"round {round_ + 1} {name:28s} {run['fps']:6.2f} frames/s "
                    f"({run['frames']} frames, {run['cpu_s']:.1f} CPU s)"
                    + (
                        f"; frames per viewer {run['viewer_frames']}"
                        if run["viewer_frames"]
                        else ""
                    )
                )
    medians = {name: statistics.median(r["fps"] for r in runs) for name, runs in results.items()}
    click.echo("")
    for name, fps in medians.items():
        cpu_s = statistics.median(r["cpu_s"] for r in results[name])
        click.echo(f"{name:28s} median {fps:6.2f} frames/s, {cpu_s:.1f} CPU s a run")
    base, watched = medians["--serve, 0 viewers"], medians["--serve, 3 viewers (1 slow)"]
    click.echo(
        f"3 viewers / 0 viewers: {watched / base:.3f} ({(1 - watched / base) * 100:+.1f} % slower)"
    )
    # Paired within a round: the two ran a minute apart, under the same load from elsewhere.
    paired = [
        w["fps"] / b["fps"]
        for w, b in zip(
            results["--serve, 3 viewers (1 slow)"], results["--serve, 0 viewers"], strict=True
        )
    ]
    click.echo(
        "per round, 3 viewers / 0 viewers: "
        + ", ".join(f"{ratio:.3f}" for ratio in paired)
        + f" (median {statistics.median(paired):.3f})"
    )
    click.echo(f"--serve with 0 viewers / no --serve: {base / medians['no --serve']:.3f}")


if __name__ == "__main__":
    main()
