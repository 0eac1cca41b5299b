"""``run --serve``: one real run (the real Mask R-CNN, a realtime replay) on 127.0.0.2, so
a token is asked, watched and steered by a real headless Chromium, and refused to a plain
HTTP client without the token or from another Origin; Ctrl-C then ends the run and the
server. The tests share the run and go in file order."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import cv2
import httpx
import pytest
from conftest import ROOT, invoke_cli

CHROMIUM = os.environ.get("LIVESEGMENT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
HOST = "127.0.0.2"
SIZE_WH = (480, 360)


def _chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (.ci/run installs Debian's chromium)")
    return CHROMIUM


class ServedRun:
    """The ``livesegment run --serve`` process, its printed URL and its files."""

    def __init__(self, folder: Path, source: Path, model: Path):
        self.jsonl = folder / "dets.jsonl"
        self.snapshots = folder / "snaps"
        self.snapshots.mkdir()
        env = {**os.environ}
        env.pop("DISPLAY", None)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "livesegment",
                "run",
                str(source),
                "--realtime",
                "--no-carry",
                "--no-display",
                "--model",
                str(model),
                "--threshold",
                "0",
                "--json",
                str(self.jsonl),
                "--snapshot-dir",
                str(self.snapshots),
                "--serve",
                f"{HOST}:0",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr: list[str] = []
        self._url = threading.Event()
        self.url = ""
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            self.stderr.append(line)
            if match := re.match(r"browser view: (\S+)", line):
                self.url = match[1]
                self._url.set()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self._reader.join(10)
        self.process.stdout.close()
        self.process.stderr.close()

    def wait_for_url(self, timeout_s: float = 120) -> str:
        if not self._url.wait(timeout_s):
            self.process.kill()
            raise AssertionError(f"no URL printed; stderr: {''.join(self.stderr)}")
        return self.url

    @property
    def token(self) -> str:
        return parse_qs(urlsplit(self.url).query)["token"][0]

    @property
    def base(self) -> str:
        return self.url.split("?")[0]

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.jsonl.read_text().splitlines() if line]


@pytest.fixture(scope="module")
def served(tmp_path_factory, shapes_video_factory, tiny_model):
    # 60 s of video: it must outlast a slow model load and every check on a busy machine.
    source, _ = shapes_video_factory(seed=4, n_frames=900, size_wh=SIZE_WH, fps=15.0)
    run = ServedRun(tmp_path_factory.mktemp("served"), source, tiny_model.with_suffix(".h5"))
    try:
        run.wait_for_url()
        yield run
    finally:
        run.close()


def _state(page) -> dict:
    return page.evaluate(
        """async () => {
            const token = new URLSearchParams(location.search).get("token");
            const answer = await fetch("state", {headers: {Authorization: `token ${token}`}});
            return answer.json();
        }"""
    )


def _wait(condition, timeout_s: float, what: str, every_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every_s)


@pytest.mark.slow
@pytest.mark.model
def test_the_page_shows_the_run_and_steers_it(served, tmp_path):
    from playwright.sync_api import sync_playwright

    url = served.url
    assert urlsplit(url).hostname == HOST and served.token, "off 127.0.0.1 the URL has a token"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page(accept_downloads=True, viewport={"width": 1280, "height": 800})
            failed: list[str] = []
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.goto(url)
            # The model loads after the server listens: wait for the first frames.
            _wait(
                lambda: page.evaluate("document.getElementById('video').naturalWidth") > 0,
                120,
                "the first frame",
            )
            video = page.locator("#video")
            assert page.evaluate("document.getElementById('video').naturalWidth") == SIZE_WH[0]
            first = video.screenshot()
            _wait(lambda: video.screenshot() != first, 20, "the video to change")
            frame = page.locator("#hud-frame")
            _wait(lambda: "#" in frame.inner_text(), 20, "a frame number in the figures")
            index = int(re.search(r"#(\d+)", frame.inner_text())[1])
            _wait(
                lambda: int(re.search(r"#(\d+)", frame.inner_text())[1]) > index,
                20,
                "the frame number to advance",
            )
            assert "FPS" in page.locator("#hud-inference").inner_text()
            assert "FPS" in page.locator("#hud-capture").inner_text()
            assert page.locator("#hud-latency").inner_text().endswith("ms")

            # Untick the class of a listed detection: it leaves the list (and the JSONL).
            items = page.locator("#detections li")
            _wait(lambda: items.count() > 0, 30, "a detection in the list")
            name = items.first.get_attribute("data-class")
            page.locator(f"#classes input[value='{name}']").uncheck()
            _wait(
                lambda: name not in (_state(page)["controls"]["classes"] or [name]),
                20,
                f"the run to drop {name} from its classes",
            )
            # Frames inferred before the change may still be on their way to the page.
            seen: set[int] = set()

            def frames_without_class() -> bool:
                frame_now = _state(page)["frame"]
                if name in [d["class"] for d in frame_now["detections"]]:
                    seen.clear()
                    return False
                seen.add(frame_now["index"])
                return len(seen) >= 3

            _wait(frames_without_class, 20, f"three frames in a row without {name}")
            for _ in range(5):  # and it stays out
                listed = [items.nth(i).get_attribute("data-class") for i in range(items.count())]
                assert name not in listed
                page.wait_for_timeout(300)
            assert not page.locator(f"#classes input[value='{name}']").is_checked()
            assert all(
                name not in [d["class"] for d in line["detections"]] for line in served.lines()[-3:]
            )

            # Move the threshold slider to its end: the HUD, the empty-frame reason and the
            # JSONL follow.
            slider = page.locator("#threshold")
            slider.focus()
            page.keyboard.press("End")
            assert slider.input_value() == "1"
            _wait(
                lambda: page.locator("#hud-threshold").inner_text() == "1.00",
                20,
                "the threshold in the figures",
            )
            empty = page.locator("#empty-reason")
            _wait(empty.is_visible, 20, "the empty-frame reason")
            assert len(empty.inner_text()) > len("No detections: ")
            assert empty.inner_text().startswith("No detections: ")
            _wait(
                lambda: any(line.get("threshold") == 1.0 for line in served.lines()),
                20,
                "a JSONL frame kept at threshold 1",
            )
            assert served.lines()[0]["threshold"] == 0.0

            # The snapshot button downloads the frame as a real PNG.
            with page.expect_download(timeout=20_000) as download:
                page.locator("#snapshot").click()
            saved = tmp_path / download.value.suggested_filename
            download.value.save_as(saved)
            assert saved.suffix == ".png" and saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            picture = cv2.imread(str(saved))
            assert picture.shape == (SIZE_WH[1], SIZE_WH[0], 3) and picture.std() > 5

            # Pause holds the frame; resume lets it go on.
            page.locator("#pause").click()
            _wait(lambda: page.locator("#run-state").inner_text() == "paused", 20, "paused")
            page.wait_for_timeout(600)
            held = _state(page)["frame"]["index"]
            page.wait_for_timeout(1000)
            assert _state(page)["frame"]["index"] == held, "no new frame while paused"
            page.locator("#pause").click()
            _wait(lambda: _state(page)["frame"]["index"] > held, 20, "frames after resuming")

            # Record start/stop: the file is written on the server and named on the page.
            page.locator("#record").click()
            record_file = page.locator("#record-file")
            _wait(lambda: "Recording to" in record_file.inner_text(), 20, "the recording's name")
            page.wait_for_timeout(1500)
            page.locator("#record").click()
            _wait(lambda: "Saved on the server" in record_file.inner_text(), 20, "saved")
            recorded = Path(record_file.inner_text().split(": ", 1)[1])
            assert recorded.parent == served.snapshots and recorded.suffix == ".mp4"
            assert _wait(lambda: recorded.exists() and recorded.stat().st_size > 0, 10, "the file")
            assert not failed, f"requests failed: {failed}"
        finally:
            browser.close()


@pytest.mark.slow
@pytest.mark.model
def test_without_the_token_nothing_is_served(served):
    assert urlsplit(served.url).hostname == HOST
    origin = f"http://{urlsplit(served.base).netloc}"
    with httpx.Client(base_url=served.base, timeout=10) as client:
        for path in (
            "/",
            "/stream.mjpg",
            "/state",
            "/snapshot.png",
            "/frame.jpg",
            "/static/app.js",
        ):
            for params in ({}, {"token": "not-the-token"}):
                answer = client.get(path, params=params)
                assert answer.status_code == 401, (path, params, answer.status_code)
                assert "access-control-allow-origin" not in answer.headers
        refused = client.post("/control", json={"masks": False}, headers={"Origin": origin})
        assert refused.status_code == 401
        header = {"Authorization": f"token {served.token}"}
        assert client.get("/", headers=header).status_code == 200
        with client.stream("GET", "/stream.mjpg", params={"token": served.token}) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("multipart/x-mixed-replace")
            chunk = next(stream.iter_bytes())
            assert b"image/jpeg" in chunk
        # The token is right but the request comes from another site, or from no page at all.
        for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {}):
            wrong = client.post("/control", json={"masks": False}, headers={**header, **headers})
            assert wrong.status_code == 403, headers
        right = client.post("/control", json={"masks": True}, headers={**header, "Origin": origin})
        assert right.status_code == 202


@pytest.mark.slow
@pytest.mark.model
def test_ctrl_c_ends_the_run_and_the_view(served):
    assert served.process.poll() is None, "the run went on while the page watched"
    served.process.send_signal(signal.SIGINT)
    served.process.wait(60)
    stdout = served.process.stdout.read()
    assert served.process.returncode == 130, "".join(served.stderr)
    others = [line for line in served.stderr if not line.startswith("browser view: ")]
    assert others == [], "the server logs nothing of its own (no access log, no errors)"
    assert "threshold at the end:" in stdout
    *lines, last = served.lines()
    assert "summary" in last, "the JSONL is complete"
    assert lines and all("threshold" in line for line in lines)
    with pytest.raises(httpx.ConnectError):
        httpx.get(served.base, timeout=2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--serve", "nonsense"], "--serve nonsense: expected PORT or HOST:PORT"),
        (["--serve", "0.0.0.0:0", "--serve-token", "short"], "--serve-token: a token needs"),
        (["--serve-token", "long-enough-token"], "--serve-token goes with --serve"),
    ],
)
def test_bad_serve_options_are_usage_errors(args, message, video_factory):
    result = invoke_cli("run", str(video_factory()), "--no-display", *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_taken_port_fails_before_the_model_loads(video_factory):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = invoke_cli("run", str(video_factory()), "--no-display", "--serve", str(port))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error: --serve 127.0.0.1:{port}: cannot listen there: in use by another program; "
        "choose another port (0 picks a free one)"
    )
    assert time.monotonic() - started < 10, "no model was loaded"


@pytest.mark.model
def test_serve_beside_output_and_json_leaves_both_whole(tmp_path, shapes_video_factory):
    """The view is one more sink: the recording and the JSONL get every frame as without it."""
    source, _ = shapes_video_factory(seed=6, n_frames=12, size_wh=(160, 120), fps=10.0)
    output, jsonl = tmp_path / "out.mp4", tmp_path / "dets.jsonl"
    result = invoke_cli(
        "run", str(source), "--no-display", "--output", str(output), "--json", str(jsonl),
        "--serve", "127.0.0.1:0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert re.search(r"browser view: http://127\.0\.0\.1:\d+/", result.stderr), result.stderr
    frames = [json.loads(line) for line in jsonl.read_text().splitlines()][:-1]
    assert len(frames) == 12
    capture = cv2.VideoCapture(str(output))
    written = 0
    while capture.read()[0]:
        written += 1
    capture.release()
    assert written == 12
