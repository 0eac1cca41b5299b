"""Who may see and steer a run: the address it is served on, its token and the Origin of
controls.

Safe by default: a run is served on 127.0.0.1 unless a host is given, and any other address
needs a token (a random one unless the caller brings their own). The token travels in the URL
(``?token=``) or an ``Authorization: token …`` header, never in a cookie: a cookie is sent by
the browser on any site's behalf, which is what cross-site request forgery lives on.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

from livesegment.errors import UsageError

DEFAULT_HOST = "127.0.0.1"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
TOKEN_MIN_CHARS = 8
_PORT_ONLY = re.compile(r"\d{1,5}")
# On every answer: the page runs only its own files (nothing from the internet), is never
# framed by another site (clickjacking the controls) and never hands its URL, token included,
# to another in a Referer.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
_HOST_PORT = re.compile(r"(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]*)):(?P<port>\d{1,5})")


@dataclass(frozen=True, slots=True)
class ServeAddress:
    """Where the browser view listens. ``port`` 0 takes a free port when binding."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> ServeAddress:
        """``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT``; a bare port is on 127.0.0.1.

        Raises:
            UsageError: anything else, or a port outside 0-65535.
        """
        text = text.strip()
        if _PORT_ONLY.fullmatch(text):
            host, port = DEFAULT_HOST, int(text)
        elif match := _HOST_PORT.fullmatch(text):
            host, port = match["v6"] or match["host"] or DEFAULT_HOST, int(match["port"])
        else:
            raise UsageError(
                "expected PORT or HOST:PORT, such as 8000 or 0.0.0.0:8000",
                parameter="serve",
                value=text,
            )
        if port > 65535:
            raise UsageError("the port must be 0-65535", parameter="serve", value=text)
        return cls(host, port)

    @property
    def loopback(self) -> bool:
        """The default address (127.0.0.1, or ::1 / localhost): the only ones served without
        a token. Any other, even elsewhere in 127.0.0.0/8, was chosen on purpose, maybe to be
        reached through a forward or a container's port, so it asks for one."""
        return self.host in LOOPBACK_HOSTS


def serve_token(address: ServeAddress, given: str | None) -> str | None:
    """The token the view asks for: ``given``, else a random one off loopback, else none.

    Raises:
        UsageError: a given token too short to protect anything.
    """
    if given is not None:
        if len(given.strip()) < TOKEN_MIN_CHARS:
            raise UsageError(
                f"a token needs at least {TOKEN_MIN_CHARS} characters", parameter="serve_token"
            )
        return given.strip()
    return None if address.loopback else secrets.token_urlsafe(24)


def view_url(host: str, port: int, token: str | None) -> str:
    """The address to open, with the token in it (as Jupyter prints it)."""
    if host in ("0.0.0.0", "::"):
        # Every interface: the URL needs one that a browser can use; this machine's works here.
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    shown = f"[{host}]" if ":" in host else host
    query = f"?token={quote(token, safe='')}" if token else ""
    return f"http://{shown}:{port}/{query}"


class Guard:
    """ASGI middleware in front of every route, the video stream and the static files
    included.

    - With a token: a request without it, or with another one, gets 401.
    - Without a token (127.0.0.1 only): the Host must be 127.0.0.1 or localhost, so a page on
      another site cannot reach the view by pointing its own name at 127.0.0.1 (DNS
      rebinding): 403.
    - A POST (every control) must come from the view's own page: an ``Origin`` equal to the
      address the request was sent to, else 403. No CORS headers are ever sent, so other
      sites cannot read any answer either.
    """

    def __init__(self, app, token: str | None):
        self.app = app
        self.token = token

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            return  # the view has no WebSocket route: nothing else gets past this
        headers = {
            key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]
        }
        refusal = self.refusal(scope["method"], scope.get("query_string", b""), headers)

        async def send_secured(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        if refusal is None:
            await self.app(scope, receive, send_secured)
            return
        status, text = refusal
        body = text.encode()
        await send_secured(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send_secured({"type": "http.response.body", "body": body})

    def refusal(self, method: str, query: bytes, headers: dict[str, str]) -> tuple[int, str] | None:
        """(status, message) when the request is refused, else None."""
        host = headers.get("host", "")
        if self.token is None and not _names_this_machine(host):
            return 403, "this view answers only to localhost addresses"
        if self.token is not None and not secrets.compare_digest(
            _token_of(query, headers).encode(), self.token.encode()
        ):
            return 401, "a token is needed: open the URL livesegment printed, token included"
        if method not in ("GET", "HEAD"):
            origin = headers.get("origin")
            if origin is None or not _same_origin(origin, host):
                return 403, "controls are accepted only from the view's own page"
        return None


def _token_of(query: bytes, headers: dict[str, str]) -> str:
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("token "):
        return authorization[6:].strip()
    values = parse_qs(query.decode("latin-1")).get("token")
    return values[0] if values else ""


def _names_this_machine(host_header: str) -> bool:
    try:
        host = urlsplit(f"//{host_header}").hostname or ""
    except ValueError:  # "[::1" and the like
        return False
    return ServeAddress(host, 0).loopback


def _same_origin(origin: str, host_header: str) -> bool:
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme == "http" and parts.netloc.lower() == host_header.lower() != ""
