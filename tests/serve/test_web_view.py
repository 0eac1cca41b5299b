"""The browser view's parts without a run: addresses, the default loopback rules over real
HTTP, the newest-frame hub and control parsing. The full view, with a real run and a real
browser, is tests/e2e/test_serve.py."""

from __future__ import annotations

import asyncio
import time

import httpx
import numpy as np
import pytest

from livesegment.errors import ServeError, UsageError
from livesegment.pipeline.controls import RemoteControls, ViewState
from livesegment.serve.app import ControlError, parse_controls
from livesegment.serve.hub import FrameHub
from livesegment.serve.security import ServeAddress, serve_token, view_url
from livesegment.serve.view import WebView, bind
from livesegment.structures import Detections, Frame, FrameResult

CLASSES = ("circle", "square", "triangle")


def _result(index: int, shape_hw=(48, 64)) -> FrameResult:
    bgr = np.full((*shape_hw, 3), index % 256, np.uint8)
    frame = Frame(index, index / 10, bgr, bgr[..., ::-1].copy(), time.monotonic())
    return FrameResult(frame, Detections.empty(shape_hw, "nothing found"), threshold=0.5)


@pytest.mark.parametrize(
    ("text", "host", "port", "loopback"),
    [
        ("8000", "127.0.0.1", 8000, True),
        ("localhost:0", "localhost", 0, True),
        ("0.0.0.0:8080", "0.0.0.0", 8080, False),
        ("127.0.0.2:9", "127.0.0.2", 9, False),  # chosen on purpose: a token is asked
        ("[::1]:8000", "::1", 8000, True),
        (":8000", "127.0.0.1", 8000, True),
    ],
)
def test_addresses(text, host, port, loopback):
    address = ServeAddress.parse(text)
    assert (address.host, address.port, address.loopback) == (host, port, loopback)
    token = serve_token(address, None)
    assert (token is None) == loopback
    if token is not None:
        assert len(token) >= 24 and token != serve_token(address, None), "random per run"


@pytest.mark.parametrize("text", ["", "http://x:80", "host", "1.2.3.4:99999", "a:b"])
def test_bad_addresses_are_usage_errors(text):
    with pytest.raises(UsageError) as error:
        ServeAddress.parse(text)
    assert error.value.parameter == "serve"


def test_tokens():
    anywhere = ServeAddress("0.0.0.0", 80)
    assert serve_token(anywhere, "  secret-token ") == "secret-token"
    with pytest.raises(UsageError, match="at least 8"):
        serve_token(anywhere, "short")
    assert view_url("0.0.0.0", 8000, "a b/c") == "http://127.0.0.1:8000/?token=a%20b%2Fc"
    assert view_url("::1", 8000, None) == "http://[::1]:8000/"


def test_a_taken_port_is_refused_before_anything_starts():
    taken = bind(ServeAddress("127.0.0.1", 0))
    try:
        port = taken.getsockname()[1]
        with pytest.raises(ServeError, match="in use by another program") as error:
            bind(ServeAddress("127.0.0.1", port))
        assert error.value.value == f"127.0.0.1:{port}"
    finally:
        taken.close()


def test_controls_are_checked_then_applied_between_frames():
    changes = parse_controls(
        {"threshold": 0.8, "classes": ["circle"], "masks": False, "paused": True}, CLASSES
    )
    remote, state = RemoteControls(), ViewState(threshold=0.5, classes=None)
    for change in changes:
        remote.submit(change)
    assert state.threshold == 0.5, "nothing changes until the loop applies the queue"
    remote.apply(state)
    assert (state.threshold, state.classes) == (0.8, frozenset({"circle"}))
    assert not state.style.masks and state.style.boxes and state.paused
    remote.submit(parse_controls({"classes": list(CLASSES), "record": "toggle"}, CLASSES)[0])
    remote.submit(parse_controls({"record": "toggle"}, CLASSES)[0])
    remote.apply(state)
    assert state.classes is None and state.record_toggle_requested, "all classes: no filter"
    for bad in (
        {"threshold": 1.5},
        {"threshold": True},
        {"threshold": float("nan")},
        {"classes": ["dog"]},
        {"boxes": "yes"},
        {"record": "start"},
        {"quit": True},
        {},
        [1],
    ):
        with pytest.raises(ControlError):
            parse_controls(bad, CLASSES)


def test_a_slow_viewer_gets_the_newest_frame_not_a_queue():
    hub = FrameHub()
    picture = np.zeros((48, 64, 3), np.uint8)

    async def viewer() -> list[int]:
        hub.attach(asyncio.get_running_loop())
        first = await hub.newer_than(0, timeout_s=5)
        # While this viewer is busy, four frames come; it then gets only the newest.
        for index in range(1, 5):
            hub.publish(_result(index), picture)
        newest = await hub.newer_than(first.serial, timeout_s=5)
        waiting = asyncio.ensure_future(hub.newer_than(newest.serial, timeout_s=5))
        await asyncio.sleep(0.05)
        hub.close()
        return [first.info["index"], newest.info["index"], await waiting]

    hub.publish(_result(0), picture)
    first, newest, after_close = asyncio.run(viewer())
    assert (first, newest, after_close) == (0, 4, None)
    assert hub.latest.jpeg[:2] == b"\xff\xd8", "encoded once, as JPEG"


@pytest.fixture
def local_view():
    view = WebView(ServeAddress("127.0.0.1", 0), None, CLASSES, RemoteControls(), "clip.mp4")
    try:
        yield view
    finally:
        view.close()


def test_the_default_address_needs_no_token_but_refuses_other_sites(local_view):
    base = local_view.url
    assert base.startswith("http://127.0.0.1:") and "token" not in base
    host = base.removeprefix("http://").rstrip("/")
    with httpx.Client(base_url=base, timeout=10) as client:
        page = client.get("/")
        assert page.status_code == 200 and "clip.mp4" in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert "access-control-allow-origin" not in page.headers
        assert client.get("/state").json()["frame"] is None
        assert client.get("/snapshot.png").status_code == 503, "no frame yet"
        # A page elsewhere that points its own name at 127.0.0.1 (DNS rebinding).
        assert (
            client.get("/", headers={"Host": f"evil.example:{host.split(':')[1]}"}).status_code
            == 403
        )
        assert client.get("/", headers={"Host": "[::1"}).status_code == 403, "malformed"
        control = {"json": {"boxes": False}}
        assert (
            client.post("/control", headers={"Origin": f"http://{host}"}, **control).status_code
            == 202
        )
        assert (
            client.post(
                "/control", headers={"Origin": "http://evil.example"}, **control
            ).status_code
            == 403
        )
        assert client.post("/control", **control).status_code == 403, "no Origin: not the page"
        form = client.post(
            "/control",
            headers={"Origin": f"http://{host}"},
            content=b"boxes=false",
        )
        assert form.status_code == 415, "a form post from another site cannot be JSON"
    local_view.hub.publish(_result(3), np.zeros((48, 64, 3), np.uint8))
    with httpx.Client(base_url=base, timeout=10) as client:
        state = client.get("/state").json()
        assert state["frame"]["index"] == 3 and state["frame"]["empty_reason"] == "nothing found"
        assert client.get("/snapshot.png").content[:8] == b"\x89PNG\r\n\x1a\n"
        with client.stream("GET", "/stream.mjpg") as stream:
            assert b"Content-Type: image/jpeg" in next(stream.iter_bytes())
            assert local_view.hub.viewers == 1
    # A viewer that leaves stops its stream: nothing is sent to nobody until the run ends.
    deadline = time.monotonic() + 5
    while local_view.hub.viewers and time.monotonic() < deadline:
        time.sleep(0.02)
    assert local_view.hub.viewers == 0
    local_view.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(base, timeout=2)


def test_a_viewer_that_stops_reading_does_not_hold_the_end_of_the_run(caplog):
    import socket

    view = WebView(ServeAddress("127.0.0.1", 0), None, CLASSES, RemoteControls())
    port = int(view.url.rsplit(":", 1)[1].strip("/"))
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", port))
    stalled.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    try:
        # Noise compresses badly: each frame is far more than the socket's buffers hold.
        noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), np.uint8)
        deadline = time.monotonic() + 10
        while view.hub.viewers == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        published = time.monotonic()
        for index in range(30):
            view.write(_result(index, (480, 640)), noise)
        assert time.monotonic() - published < 5, "publishing never waits for a viewer"
        time.sleep(0.3)
        started = time.monotonic()
        view.close()
        assert time.monotonic() - started < 2.0
        assert not view._thread.is_alive()
        assert "Cancel" not in caplog.text
    finally:
        stalled.close()
        view.close()
