"""A small threaded HTTP/1.1 server for the lab's fakes, in the manner of urllib3's dummyserver.

An app is a callable `Request -> Response`; `Router` maps method and path patterns to handlers. The
server runs in a thread, signals readiness through an event awaited with a timeout, and is used as a
context manager that yields the `Endpoint` it listens on.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Endpoint:
    """Where a lab server listens."""

    host: str
    port: int
    scheme: str = "http"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


@dataclass
class Request:
    """One HTTP request as a handler sees it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    client: str
    params: dict[str, Any] = field(default_factory=dict)

    def json(self) -> Any:
        """The body as JSON; `None` when empty. Raises ValueError when malformed."""
        if not self.body:
            return None
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        """The body as `application/x-www-form-urlencoded` fields, each a list of values."""
        return parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)

    def arg(self, name: str) -> str | None:
        """First value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Response:
    """What a handler returns. `body` may be an iterable of chunks when `length` is given; an empty body
    with a `length` answers a HEAD with the length of what a GET would send."""

    status: int
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    length: int | None = None

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        data = json.dumps(payload).encode()
        return cls(status, data, {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def text(cls, status: int, text: str, headers: dict[str, str] | None = None) -> Response:
        return cls(status, text.encode(), {"Content-Type": "text/plain; charset=utf-8", **(headers or {})})

    @classmethod
    def empty(cls, status: int, headers: dict[str, str] | None = None) -> Response:
        return cls(status, b"", dict(headers or {}))


class DropConnection(Exception):
    """Close the connection: raised by a handler, nothing is answered (a lost API, as a client sees it);
    raised by a streamed body, the transfer stops short."""


App = Callable[[Request], Response]
Handler = Callable[[Request], Response]

_PLACEHOLDER = re.compile(r"\{(\w+)(?::(int|path))?\}")


class Router:
    """Method + path-pattern dispatch. Patterns use `{name}`, `{name:int}` and `{name:path}` placeholders."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], dict[str, str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        kinds: dict[str, str] = {}

        def placeholder(match: re.Match[str]) -> str:
            name, kind = match.group(1), match.group(2) or "str"
            kinds[name] = kind
            body = {"int": r"\d+", "path": r".+", "str": r"[^/]+"}[kind]
            return f"(?P<{name}>{body})"

        regex = re.compile("^" + _PLACEHOLDER.sub(placeholder, pattern) + "$")
        self._routes.append((method.upper(), regex, kinds, handler))

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, Any]] | int:
        """The handler and path parameters, or 404 (no such path) / 405 (path exists, other method)."""
        path_known = False
        for route_method, regex, kinds, handler in self._routes:
            match = regex.match(path)
            if not match:
                continue
            path_known = True
            if route_method == method or (method == "HEAD" and route_method == "GET"):
                params = {k: int(v) if kinds[k] == "int" else v for k, v in match.groupdict().items()}
                return handler, params
        return HTTPStatus.METHOD_NOT_ALLOWED if path_known else HTTPStatus.NOT_FOUND


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms delayed-ACK stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the lab's servers do not print."""

    def _serve(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
            client=self.client_address[0],
        )
        try:
            response = self.server.app(request)
        except DropConnection:
            self.close_connection = True
            return
        self._write(response)

    def _write(self, response: Response) -> None:
        body = response.body
        chunks: Iterable[bytes]
        if isinstance(body, bytes):
            length, chunks = (len(body) if response.length is None else response.length), (body,)
        else:
            if response.length is None:
                raise ValueError("a streamed response needs its length")
            length, chunks = response.length, body
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command == "HEAD" or response.status in (HTTPStatus.NO_CONTENT, HTTPStatus.NOT_MODIFIED):
            _close(chunks)
            return
        try:
            for chunk in chunks:
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError, DropConnection):
            self.close_connection = True
        finally:
            _close(chunks)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _serve


def _close(chunks: Iterable[bytes]) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-request is normal (killed downloads); anything else is reported."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class HttpServer:
    """One app served on one address, in a background thread."""

    def __init__(self, app: App, host: str, port: int = 0) -> None:
        self._server = _Server((host, port), app)
        self._thread = threading.Thread(target=self._run, name=f"http-{host}", daemon=True)
        self._ready = threading.Event()

    @property
    def endpoint(self) -> Endpoint:
        host, port = self._server.server_address[:2]
        return Endpoint(str(host), int(port))

    def _run(self) -> None:
        self._ready.set()
        self._server.serve_forever(poll_interval=0.1)

    def start(self, timeout: float = 5.0) -> Endpoint:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"lab HTTP server on {self.endpoint.base_url} did not start within {timeout}s")
        return self.endpoint

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextmanager
def serve(app: App, host: str, port: int = 0, timeout: float = 5.0) -> Iterator[Endpoint]:
    """Serve `app` on `host:port` for the duration of the block."""
    server = HttpServer(app, host, port)
    try:
        yield server.start(timeout)
    finally:
        server.stop()
