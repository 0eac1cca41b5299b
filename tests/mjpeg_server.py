"""An MJPEG-over-HTTP camera served on 127.0.0.1 for tests: start, stop and restart it."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MjpegServer:
    """Serves ``multipart/x-mixed-replace`` JPEG frames at ``fps`` on ``/video``.

    ``stop()`` closes the listening socket and every open stream, as a camera that dies would;
    ``start()`` brings it back on the same port.
    """

    def __init__(self, port: int | None = None, size_wh=(320, 240), fps: float = 15.0):
        self.port = port or free_port()
        self.size_wh, self.fps = size_wh, fps
        self.frames_sent = 0
        self.connections = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._alive = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/video"

    def _frame(self, index: int) -> bytes:
        width, height = self.size_wh
        bgr = np.full((height, width, 3), 60, np.uint8)
        x = 20 + (index * 4) % (width - 80)
        cv2.rectangle(bgr, (x, 60), (x + 60, 120), (30, 200, 240), cv2.FILLED)
        cv2.putText(
            bgr, str(index), (8, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1
        )
        return cv2.imencode(".jpg", bgr)[1].tobytes()

    def start(self) -> MjpegServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                owner.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                index = 0
                try:
                    while owner._alive.is_set():
                        jpeg = owner._frame(index)
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\n"
                            + f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                            + jpeg
                            + b"\r\n"
                        )
                        owner.frames_sent += 1
                        index += 1
                        time.sleep(1 / owner.fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._alive.set()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._server.allow_reuse_address = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="test-mjpeg-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._alive.clear()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
