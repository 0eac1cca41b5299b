"""Downloads against a real HTTP server on 127.0.0.1 serving a real Keras weights file.

The server can answer 404, cut a body short, send garbage of the right size, ignore Range, or
drop the first attempt half-way; it logs every request's Range header so resuming is visible.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import TINY_CLASSES, run_cli, tiny_spec

from livesegment.cli import main
from livesegment.errors import ModelError, UsageError
from livesegment.model import download
from livesegment.model.cards import read_card, read_weights_file, resolve_model
from livesegment.model.download import Downloadable


@dataclass
class Served:
    data: bytes
    mode: str = "ok"  # ok | ignore-range | short | interrupt-once | corrupt | 404 | redirect


@dataclass
class RequestLog:
    """(path, Range header or None, status) of every request, in order."""

    entries: list[tuple[str, str | None, int]] = field(default_factory=list)
    hits: Counter = field(default_factory=Counter)

    def ranges(self, path: str) -> list[str | None]:
        return [r for p, r, _ in self.entries if p == path]


class _Handler(BaseHTTPRequestHandler):
    files: dict[str, Served]
    log: RequestLog

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:
        served = self.files.get(self.path)
        header = self.headers.get("Range")
        self.log.hits[self.path] += 1
        first = self.log.hits[self.path] == 1
        if served is None or served.mode == "404":
            self._record(header, 404)
            self.send_error(404)
            return
        if served.mode == "redirect":
            self._record(header, 302)
            self.send_response(302)
            self.send_header("Location", served.data.decode())
            self.end_headers()
            return
        data = served.data
        if served.mode == "corrupt":
            data = np.random.default_rng(0).bytes(len(data))
        cut = served.mode == "short" or (served.mode == "interrupt-once" and first)
        match = re.fullmatch(r"bytes=(\d+)-", header or "")
        if match and served.mode in ("ok", "interrupt-once"):
            start = int(match[1])
            self._record(header, 206)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            body = data[start:]
        else:
            self._record(header, 200)
            self.send_response(200)
            body = data
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # A cut body promises every byte, sends half, then closes the connection.
        self.wfile.write(body[: len(body) // 2] if cut else body)

    def _record(self, header: str | None, status: int) -> None:
        self.log.entries.append((self.path, header, status))


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # the client hanging up early is part of several tests


class FileServer:
    def __init__(self) -> None:
        self.files: dict[str, Served] = {}
        self.log = RequestLog()
        handler = type("Handler", (_Handler,), {"files": self.files, "log": self.log})
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="test-http-server", daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_port}{path}"

    def serve(self, path: str, data: bytes, mode: str = "ok") -> str:
        self.files[path] = Served(data, mode)
        return self.url(path)

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def server():
    with FileServer() as running:
        yield running


@pytest.fixture(scope="module")
def tiny_bytes(tiny_model) -> bytes:
    return tiny_model.with_suffix(".h5").read_bytes()


def tiny_entry(
    data: bytes,
    sha256: str | None = None,
    size: int | None = None,
    urls: tuple[str, ...] = ("https://127.0.0.1:9/unused",),
) -> Downloadable:
    return Downloadable(
        spec=tiny_spec(Path("tiny_weights.h5")),
        urls=urls,
        size_bytes=len(data) if size is None else size,
        sha256=sha256,
    )


def test_full_download_lands_verified_with_a_card(tmp_path, server, tiny_bytes, monkeypatch):
    url = server.serve("/tiny.h5", tiny_bytes)
    folder = tmp_path / "models"
    result = download.download(tiny_entry(tiny_bytes), folder, urls=(url,))

    assert result.weights == folder / "tiny_weights.h5"
    assert result.weights.read_bytes() == tiny_bytes
    in_file = read_weights_file(result.weights).layers.values()
    assert result.layers == sum(1 for shapes in in_file if shapes), "every layer was compared"
    assert result.resumed_from == 0 and result.url == url
    assert sorted(p.name for p in folder.iterdir()) == ["tiny.json", "tiny_weights.h5"]
    card = read_card(result.card)
    assert card["sha256"] == hashlib.sha256(tiny_bytes).hexdigest()
    assert card["weights"] == "tiny_weights.h5" and card["source"] == url
    assert server.log.ranges("/tiny.h5") == [None]

    monkeypatch.setenv("LIVESEGMENT_HOME", str(tmp_path))
    spec = resolve_model("tiny")
    assert spec.class_names == TINY_CLASSES and spec.weights == result.weights

    again = download.download(tiny_entry(tiny_bytes), folder, urls=(url,))
    assert again.url is None, "a verified copy is not fetched twice"
    assert len(server.log.entries) == 1


def test_interrupted_download_resumes_with_a_range_request(tmp_path, server, tiny_bytes):
    url = server.serve("/tiny.h5", tiny_bytes, "interrupt-once")
    folder = tmp_path / "models"
    half, size = len(tiny_bytes) // 2, len(tiny_bytes)
    with pytest.raises(
        ModelError,
        match=rf"got {half:,} of {size:,} bytes; run the same "
        "command again to resume",
    ):
        download.download(tiny_entry(tiny_bytes), folder, urls=(url,))
    assert not (folder / "tiny_weights.h5").exists()
    assert (folder / "tiny_weights.h5.part").stat().st_size == half

    result = download.download(tiny_entry(tiny_bytes), folder, urls=(url,))
    assert server.log.entries == [("/tiny.h5", None, 200), ("/tiny.h5", f"bytes={half}-", 206)]
    assert result.resumed_from == half
    assert result.weights.read_bytes() == tiny_bytes
    assert not (folder / "tiny_weights.h5.part").exists()


def test_server_ignoring_range_restarts_from_zero(tmp_path, server, tiny_bytes):
    url = server.serve("/tiny.h5", tiny_bytes, "ignore-range")
    folder = tmp_path / "models"
    folder.mkdir()
    # A stale partial that is not even a prefix of the file: it must not survive.
    (folder / "tiny_weights.h5.part").write_bytes(b"x" * 1000)
    result = download.download(tiny_entry(tiny_bytes), folder, urls=(url,))
    assert server.log.entries == [("/tiny.h5", "bytes=1000-", 200)]
    assert result.weights.read_bytes() == tiny_bytes


def _assert_nothing_left(folder: Path, part_expected: bool = False) -> None:
    assert not (folder / "tiny_weights.h5").exists()
    assert not (folder / "tiny.json").exists()
    assert (folder / "tiny_weights.h5.part").exists() == part_expected


def test_404_names_url_and_status_and_suggests_url(tmp_path, server, tiny_bytes):
    url = server.url("/missing.h5")
    with pytest.raises(ModelError) as caught:
        download.download(tiny_entry(tiny_bytes), tmp_path, urls=(url,))
    message = str(caught.value)
    assert "\n" not in message
    assert f"{url} returned HTTP 404" in message and "URL of a working mirror" in message
    _assert_nothing_left(tmp_path)


def test_short_body_reports_bytes_and_keeps_the_partial(tmp_path, server, tiny_bytes):
    url = server.serve("/tiny.h5", tiny_bytes, "short")
    size = len(tiny_bytes)
    with pytest.raises(ModelError, match=rf"got {size // 2:,} of {size:,} bytes.*resume"):
        download.download(tiny_entry(tiny_bytes), tmp_path, urls=(url,))
    _assert_nothing_left(tmp_path, part_expected=True)


def test_corrupt_body_fails_verification_and_is_removed(tmp_path, server, tiny_bytes):
    url = server.serve("/tiny.h5", tiny_bytes, "corrupt")
    with pytest.raises(ModelError, match=r"failed verification and was removed.*not an HDF5"):
        download.download(tiny_entry(tiny_bytes), tmp_path, urls=(url,))
    _assert_nothing_left(tmp_path)


def test_wrong_checksum_fails_verification_and_is_removed(tmp_path, server, tiny_bytes):
    url = server.serve("/tiny.h5", tiny_bytes)
    with pytest.raises(ModelError, match="failed verification and was removed: sha256"):
        download.download(tiny_entry(tiny_bytes, sha256="0" * 64), tmp_path, urls=(url,))
    _assert_nothing_left(tmp_path)


def test_a_file_of_another_model_fails_verification(tmp_path, server, tiny_bytes):
    # Right size, real weights, but the entry expects resnet101 with 81 classes.
    url = server.serve("/tiny.h5", tiny_bytes)
    entry = Downloadable(spec=download.COCO.spec, urls=(url,), size_bytes=len(tiny_bytes))
    with pytest.raises(
        ModelError, match="holds a tinynet backbone with 4 classes, expected resnet101 with 81"
    ):
        download.download(entry, tmp_path, urls=(url,))
    assert list(tmp_path.iterdir()) == []


def test_wrong_content_length_is_refused_before_any_byte_is_kept(tmp_path, server, tiny_bytes):
    url = server.serve("/tiny.h5", tiny_bytes)
    entry = tiny_entry(tiny_bytes, size=len(tiny_bytes) + 1)
    with pytest.raises(
        ModelError,
        match=rf"offers {len(tiny_bytes):,} bytes but "
        rf"tiny_weights.h5 is {len(tiny_bytes) + 1:,}",
    ):
        download.download(entry, tmp_path, urls=(url,))
    assert list(tmp_path.iterdir()) == []


def test_next_mirror_is_tried_when_the_first_fails(tmp_path, server, tiny_bytes):
    good = server.serve("/tiny.h5", tiny_bytes)
    result = download.download(
        tiny_entry(tiny_bytes), tmp_path, urls=(server.url("/gone.h5"), good)
    )
    assert [(p, s) for p, _, s in server.log.entries] == [("/gone.h5", 404), ("/tiny.h5", 200)]
    assert result.url == good and result.weights.read_bytes() == tiny_bytes


def test_redirects_are_followed(tmp_path, server, tiny_bytes):
    server.serve("/tiny.h5", tiny_bytes)
    url = server.serve("/latest", server.url("/tiny.h5").encode(), "redirect")
    result = download.download(tiny_entry(tiny_bytes), tmp_path, urls=(url,))
    assert result.weights.read_bytes() == tiny_bytes


def test_https_only_unless_the_user_types_http(tmp_path, server, tiny_bytes):
    plain = server.serve("/tiny.h5", tiny_bytes)
    with pytest.raises(UsageError, match="not HTTPS"):
        download.download(tiny_entry(tiny_bytes, urls=(plain,)), tmp_path)
    with pytest.raises(UsageError, match="only https://"):
        download.download(tiny_entry(tiny_bytes), tmp_path, urls=("ftp://127.0.0.1/x.h5",))
    assert server.log.entries == [], "nothing is requested from a refused URL"


def test_https_never_redirects_to_http():
    handler = download._NoDowngradeRedirects()
    request = urllib.request.Request("https://example.org/mask_rcnn_coco.h5")
    with pytest.raises(urllib.error.URLError, match=r"insecure http://example\.org/x"):
        handler.redirect_request(request, None, 302, "Found", {}, "http://example.org/x")


def test_coco_entry_matches_the_issue():
    coco = download.find("coco")
    assert coco.size_bytes == 257_557_808 and coco.filename == "mask_rcnn_coco.h5"
    assert coco.spec.backbone == "resnet101" and coco.spec.num_classes == 81
    assert coco.spec.input_size == 1024
    assert coco.urls[0].startswith("https://github.com/ayoolaolafenwa/PixelLib/")
    assert "matterport/Mask_RCNN" in coco.urls[1]
    with pytest.raises(UsageError, match="available: coco"):
        download.find("cocoa")


# --- through the CLI --------------------------------------------------------------------------


def _one_line_error(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), output
    return lines[0]


@pytest.fixture
def tiny_registry(monkeypatch, tmp_path, tiny_bytes):
    monkeypatch.setenv("LIVESEGMENT_HOME", str(tmp_path))
    monkeypatch.setattr(download, "DOWNLOADS", MappingProxyType({"tiny": tiny_entry(tiny_bytes)}))
    return tmp_path / "models"


def test_cli_download_then_list(server, tiny_bytes, tiny_registry):
    url = server.serve("/tiny.h5", tiny_bytes)
    result = CliRunner().invoke(main, ["models", "download", "tiny", "--url", url])
    assert result.exit_code == 0, result.output
    assert "downloaded tiny from" in result.output
    assert f"verified: {len(tiny_bytes):,} bytes, tinynet, 4 classes" in result.output
    assert (tiny_registry / "tiny_weights.h5").read_bytes() == tiny_bytes

    listed = CliRunner().invoke(main, ["models", "list"])
    assert listed.exit_code == 0, listed.output
    assert "tiny (user)" in listed.output
    assert "3 classes: circle, square, triangle" in listed.output
    assert "verified (file, card, sha256)" in listed.output


@pytest.mark.parametrize(
    ("mode", "needle"),
    [
        ("404", "returned HTTP 404"),
        ("short", "bytes; run the same command again to resume"),
        ("corrupt", "failed verification and was removed"),
    ],
)
def test_cli_failures_are_one_line_and_leave_no_file(
    server, tiny_bytes, tiny_registry, mode, needle
):
    url = server.serve("/tiny.h5", tiny_bytes, mode)
    result = CliRunner().invoke(main, ["models", "download", "tiny", "--url", url])
    assert result.exit_code == 1
    assert needle in _one_line_error(result.output)
    assert not (tiny_registry / "tiny_weights.h5").exists()
    assert not (tiny_registry / "tiny.json").exists()


def test_cli_coco_download_refuses_a_file_of_the_wrong_size(tmp_path, server, tiny_bytes):
    url = server.serve("/mask_rcnn_coco.h5", tiny_bytes)
    result = run_cli(
        "models", "download", "coco", "--url", url, env={"LIVESEGMENT_HOME": str(tmp_path)}
    )
    assert result.returncode == 1, result.stdout + result.stderr
    line = _one_line_error(result.stderr)
    assert f"offers {len(tiny_bytes):,} bytes but mask_rcnn_coco.h5 is 257,557,808" in line
    assert "--url" in line
    assert [p.name for p in (tmp_path / "models").iterdir()] == []
    assert json.dumps(server.log.entries) == json.dumps([["/mask_rcnn_coco.h5", None, 200]])


def test_cli_download_never_overwrites_a_card_the_user_registered(
    server, tiny_bytes, tiny_registry
):
    """A card of the user's own model under the same name is kept, and nothing is fetched."""
    tiny_registry.mkdir(parents=True)
    card = tiny_registry / "tiny.json"
    card.write_text(
        json.dumps({"name": "tiny", "weights": "my_finetuned.h5", "class_names": ["BG", "cat"]})
    )
    before = card.read_bytes()
    url = server.serve("/tiny.h5", tiny_bytes)
    result = CliRunner().invoke(main, ["models", "download", "tiny", "--url", url])
    assert result.exit_code == 2, result.output
    line = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(line) == 1 and "would overwrite" in line[0] and "my_finetuned.h5" in line[0]
    assert card.read_bytes() == before
    assert server.log.entries == []
    assert sorted(p.name for p in tiny_registry.iterdir()) == ["tiny.json"]


def test_cli_download_replaces_its_own_card(server, tiny_bytes, tiny_registry):
    url = server.serve("/tiny.h5", tiny_bytes)
    assert CliRunner().invoke(main, ["models", "download", "tiny", "--url", url]).exit_code == 0
    again = CliRunner().invoke(main, ["models", "download", "tiny", "--url", url, "--force"])
    assert again.exit_code == 0, again.output
    assert read_card(tiny_registry / "tiny.json")["weights"] == "tiny_weights.h5"
