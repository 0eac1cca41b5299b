"""``WebView``: the browser view of a run, as a sink beside the files and the window.

uvicorn serves the app on a thread of its own (``livesegment-web``) with its own event loop;
the run's threads only publish frames to the hub and read queued controls, so a viewer, slow
or not, never holds up the pipeline. The socket is bound here, on the caller's thread, so an
address in use is an error before the run starts rather than a log line after.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import threading
import time
from collections.abc import Callable

import numpy as np
import uvicorn

from livesegment.errors import ServeError
from livesegment.pipeline.controls import RemoteControls
from livesegment.serve.app import create_app
from livesegment.serve.hub import FrameHub
from livesegment.serve.security import ServeAddress, view_url
from livesegment.structures import FrameResult

log = logging.getLogger(__name__)


def bind(address: ServeAddress) -> socket.socket:
    """A listening socket on ``address``.

    Raises:
        ServeError: the address is taken, not this machine's, or not allowed.
    """
    try:
        family, kind, proto, _, where = socket.getaddrinfo(
            address.host, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as error:
        raise ServeError(
            f"unknown host ({error.strerror})", parameter="serve", value=address.host
        ) from error
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart within TIME_WAIT
        sock.bind(where)
        sock.listen(64)
    except OSError as error:
        sock.close()
        hint = {
            errno.EADDRINUSE: "in use by another program; choose another port (0 picks a free one)",
            errno.EADDRNOTAVAIL: "not an address of this machine",
            errno.EACCES: "ports below 1024 need root; choose another",
        }.get(error.errno or 0, error.strerror)
        raise ServeError(
            f"cannot listen there: {hint}",
            parameter="serve",
            value=f"{address.host}:{address.port}",
        ) from error
    return sock


class WebView:
    """Serves the live page of a run; ``write`` publishes each annotated frame to it.

    Args:
        address: where to listen (bound now).
        token: what every request must carry; None (loopback only) asks for none.
        class_names: the model's classes, for the page's checkboxes.
        remote: where the page's controls are queued for the run.
        title: the page's title (the source's name).

    Raises:
        ServeError: the address cannot be listened on, or the server did not start.
    """

    STARTUP_TIMEOUT_S = 10.0
    CLOSE_TIMEOUT_S = 5.0
    STREAMS_END_S = 0.5
    wants_picture = True  # the page shows every frame, whether or not a file is written

    def __init__(
        self,
        address: ServeAddress,
        token: str | None,
        class_names: tuple[str, ...],
        remote: RemoteControls,
        title: str = "livesegment",
    ):
        self.paths: list = []
        self.hub = FrameHub()
        self.remote = remote
        self._status: Callable[[], dict] = dict
        self._loop: asyncio.AbstractEventLoop | None = None
        sock = bind(address)
        port = sock.getsockname()[1]
        self.url = view_url(address.host, port, token)
        app = create_app(self.hub, remote, lambda: self._status(), class_names, token, title)
        self._server = uvicorn.Server(
            uvicorn.Config(
                app,
                http="h11",
                ws="none",
                lifespan="off",
                log_config=None,
                access_log=False,
                # Streams end when the hub closes; a viewer stuck in a full socket does not
                # hold the run's end for longer than this.
                timeout_graceful_shutdown=2,
            )
        )
        self._thread = threading.Thread(
            target=self._serve, args=(sock,), name="livesegment-web", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + self.STARTUP_TIMEOUT_S
        while not self._server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                self.close()
                raise ServeError("the web server did not start", parameter="serve")
            time.sleep(0.01)
        if not self._server.started:
            raise ServeError("the web server stopped at once", parameter="serve")

    def _cut_connections(self) -> None:
        for connection in list(self._server.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()

    def _serve(self, sock: socket.socket) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self.hub.attach(self._loop)
            await self._server.serve(sockets=[sock])

        try:
            asyncio.run(main())
        finally:
            sock.close()

    def show_status(self, status: Callable[[], dict]) -> None:
        """Where the page's live figures and control states come from (called from the
        server's thread: it must only read)."""
        self._status = status

    def write(self, result: FrameResult, picture: np.ndarray) -> None:
        """Publish the (H, W, 3) uint8 BGR ``picture`` of ``result`` to every viewer."""
        self.hub.publish(result, picture)

    def close(self) -> None:
        """End every stream and stop the server; safe to call twice."""
        self.hub.close()
        # Streams end once the hub closes, except one whose viewer reads slowly: it waits in a
        # full socket for as long as that viewer likes. Those are cut.
        deadline = time.monotonic() + self.STREAMS_END_S
        while self.hub.viewers and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.hub.viewers and self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._cut_connections)
            except RuntimeError:  # the loop has just stopped
                pass
        self._server.should_exit = True
        self._thread.join(self.CLOSE_TIMEOUT_S)
        if self._thread.is_alive():
            log.warning("the web server did not stop within %.0f s", self.CLOSE_TIMEOUT_S)
