"""The browser view's routes: one page, its video stream, its state and its controls.

Every route sits behind ``security.Guard`` (token, Host and Origin checks). Controls never
touch the run directly: each becomes a change queued on ``RemoteControls``, which the run
applies between frames exactly as it applies the window's keys.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from importlib import resources
from urllib.parse import quote

import cv2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from livesegment.pipeline.controls import Change, RemoteControls, ViewState
from livesegment.serve.hub import FrameHub
from livesegment.serve.security import Guard

STATIC_TYPES = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
BOUNDARY = b"frame"
NO_STORE = {"Cache-Control": "no-store"}
DRAWN = ("boxes", "labels", "masks")


class ControlError(ValueError):
    """A control request the view does not understand (answered with 400)."""


def _static(name: str) -> bytes:
    return (resources.files("livesegment.serve") / "static" / name).read_bytes()


def parse_controls(body: object, class_names: tuple[str, ...]) -> list[Change]:
    """The changes a control request asks for, checked before any is queued.

    ``body`` is a JSON object with any of: ``threshold`` (0-1), ``classes`` (a list of the
    model's class names to keep), ``boxes``/``labels``/``masks`` (booleans), ``paused``
    (boolean), ``record`` (``"toggle"``: start or stop a recording, as the ``r`` key).

    Raises:
        ControlError: an unknown field or a value out of range.
    """
    if not isinstance(body, dict) or not body:
        raise ControlError("expected a JSON object of controls")
    changes: list[Change] = []
    for key, value in body.items():
        if key == "threshold":
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not (math.isfinite(value) and 0 <= value <= 1)
            ):
                raise ControlError("threshold: expected a number from 0 to 1")
            changes.append(lambda state, value=float(value): state.set_threshold(value))
        elif key == "classes":
            if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
                raise ControlError("classes: expected a list of class names")
            unknown = sorted(set(value) - set(class_names))
            if unknown:
                raise ControlError(f"classes: the model has no {', '.join(unknown)}")
            names = None if set(value) == set(class_names) else frozenset(value)
            changes.append(lambda state, names=names: state.set_classes(names))
        elif key in DRAWN or key == "paused":
            if not isinstance(value, bool):
                raise ControlError(f"{key}: expected true or false")
            if key == "paused":
                changes.append(lambda state, value=value: state.set_paused(value))
            else:
                changes.append(lambda state, key=key, value=value: state.set_drawn(key, value))
        elif key == "record":
            if value != "toggle":
                raise ControlError('record: expected "toggle"')
            changes.append(_request_record_toggle)
        else:
            raise ControlError(f"unknown control {key!r}")
    return changes


def _request_record_toggle(state: ViewState) -> str:
    state.record_toggle_requested = True
    return "record"


def create_app(
    hub: FrameHub,
    remote: RemoteControls,
    status: Callable[[], dict],
    class_names: tuple[str, ...],
    token: str | None,
    title: str = "livesegment",
) -> Guard:
    """The ASGI app of the view.

    Args:
        hub: the newest frame, published by the run.
        remote: where controls are queued for the run.
        status: the run's live figures and controls as JSON-ready values (called per request,
            from the server's threads).
        class_names: the model's classes, for the class checkboxes.
        token: the token every request must carry; None on loopback without one.
        title: shown in the page's title and header (the source's name).
    """
    token_query = f"?token={quote(token, safe='')}" if token else ""

    async def page(request: Request) -> Response:
        text = _static("index.html").decode()
        text = text.replace("{{title}}", html.escape(title)).replace(
            "{{token_query}}", html.escape(token_query)
        )
        return Response(text, media_type="text/html; charset=utf-8", headers=NO_STORE)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_TYPES:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(_static(name), media_type=STATIC_TYPES[name], headers=NO_STORE)

    async def stream(request: Request) -> Response:
        async def parts():
            hub.viewers += 1
            try:
                serial = 0
                while not hub.closed:
                    published = await hub.newer_than(serial)
                    if published is None:
                        continue  # paused, or closing: the loop condition decides
                    serial = published.serial
                    yield (
                        (
                            b"--" + BOUNDARY + b"\r\nContent-Type: image/jpeg\r\n"
                            b"Content-Length: " + str(len(published.jpeg)).encode() + b"\r\n\r\n"
                        )
                        + published.jpeg
                        + b"\r\n"
                    )
            finally:
                hub.viewers -= 1

        return StreamingResponse(
            parts(),
            media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY.decode()}",
            headers=NO_STORE,
        )

    async def frame(request: Request) -> Response:
        published = hub.latest
        if published is None:
            return Response("no frame yet", status_code=503, media_type="text/plain")
        return Response(published.jpeg, media_type="image/jpeg", headers=NO_STORE)

    async def snapshot(request: Request) -> Response:
        published = hub.latest
        if published is None:
            return Response("no frame yet", status_code=503, media_type="text/plain")
        ok, png = await run_in_threadpool(cv2.imencode, ".png", published.picture_bgr)
        if not ok:
            return Response("could not encode the frame", status_code=500)
        name = f"livesegment-frame-{published.info['index']}.png"
        return Response(
            png.tobytes(),
            media_type="image/png",
            headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def state(request: Request) -> Response:
        published = hub.latest
        return JSONResponse(
            {
                "running": not hub.closed,
                "title": title,
                "frame": published.info if published is not None else None,
                "all_classes": list(class_names),
                **status(),
            },
            headers=NO_STORE,
        )

    async def control(request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            # A form post from another site cannot send JSON without a CORS preflight.
            return JSONResponse({"error": "send controls as application/json"}, 415)
        try:
            changes = parse_controls(await request.json(), class_names)
        except ValueError as error:  # ControlError, or a body that is not JSON
            return JSONResponse({"error": str(error)}, 400)
        if hub.closed:
            return JSONResponse({"error": "the run has ended"}, 409)
        for change in changes:
            remote.submit(change)
        return JSONResponse({"queued": len(changes)}, 202)

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/static/{name}", static),
            Route("/stream.mjpg", stream),
            Route("/frame.jpg", frame),
            Route("/snapshot.png", snapshot),
            Route("/state", state),
            Route("/control", control, methods=["POST"]),
        ]
    )
    return Guard(app, token)
