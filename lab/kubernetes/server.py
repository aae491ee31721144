"""The lab's minimal kube-apiserver: what a control plane answers on `:6443` once the cluster is bootstrapped.

Serves, over TLS with client certificates (lab.kubernetes.tls, lab.kubernetes.access): `/version`,
`/healthz`, `/livez`, `/readyz`, the legacy discovery documents (`/api`, `/api/v1`, `/apis`) and read-only
nodes (`/api/v1/nodes`, `/api/v1/nodes/{name}`) and the control plane's mirror pods
(`/api/v1/namespaces/kube-system/pods`); anything else is a 404 Status. Nodes come from a callable
asked on every request (from the server's threads, so it must be thread-safe); a node is registered the
first time it is seen, which is its creationTimestamp.

    with KubernetesApi(address, ca=secrets.k8s, server_names=[endpoint_host, address],
                       nodes=lambda: [...], version="v1.36.3") as api:
        ...  # api.endpoint.base_url
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lab.httpserver import Endpoint, Request, Response, Router
from lab.kubernetes import objects
from lab.kubernetes.access import authorize, forbidden, request_attributes, unauthorized, user_from_certificate
from lab.kubernetes.objects import NodeInfo, PodInfo
from lab.kubernetes.tls import server_context, serving_certificate
from lab.kubernetes.workloads import Workloads
from talos.pki import CertAndKey

API_PORT = 6443
_IDLE_TIMEOUT = 30.0
"""Seconds a connection may sit without a byte (the handshake included) before it is closed."""
_LINGER_TIMEOUT = 1.0
_UNSUPPORTED_QUERIES = ("fieldSelector", "watch")


class KubernetesApi:
    """One control plane's Kubernetes API on `host:port`; binds on construction, serves from `start()`."""

    def __init__(
        self,
        host: str,
        port: int = API_PORT,
        *,
        ca: CertAndKey,
        server_names: Sequence[str],
        nodes: Callable[[], Sequence[NodeInfo]],
        version: str | Callable[[], str],
        pods: Callable[[], Sequence[PodInfo]] = tuple,
        workloads: Workloads | None = None,
    ) -> None:
        """`version` may be a callable asked on every GET /version (what kube-apiserver runs right now);
        `pods` lists the cluster's control-plane mirror pods, like `nodes` from the server's threads."""
        self._version = version if callable(version) else lambda: version
        objects.version_info(self._version())  # a malformed version fails here, not on the first GET
        self._nodes = nodes
        self._pods = pods
        self._workloads = workloads
        """The cluster's cordons, workload pods and deleted nodes, with the drain's calls (lab.kubernetes.workloads)."""
        self._registered: dict[str, datetime] = {}
        self._lock = threading.Lock()
        serving = serving_certificate(ca, server_names)
        self.serving_certificate = serving.crt
        """The PEM certificate served (its key stays inside the TLS context)."""
        self._router = self._routes()
        self._server = _TlsHttpServer((host, port), self, server_context(ca, serving))
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,), name=f"k8s-{host}")
        self._thread.daemon = True
        self._started = False

    @property
    def endpoint(self) -> Endpoint:
        host, port = self._server.server_address[:2]
        return Endpoint(str(host), int(port), "https")

    def start(self) -> Endpoint:
        self._thread.start()
        self._started = True
        return self.endpoint

    def stop(self) -> None:
        """Stop serving and free the port (also when never started)."""
        if self._started:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> KubernetesApi:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def answer(self, request: Request, peer: dict[str, Any] | None) -> Response:
        """Authenticate, authorise, then route, in kube-apiserver's order."""
        user = user_from_certificate(peer)
        if user is None:
            return _status(unauthorized())
        attributes = request_attributes(request.method, request.path, request.query)
        if not authorize(user, attributes):
            return _status(forbidden(user, attributes))
        resolved = self._router.resolve(request.method, request.path)
        if resolved == HTTPStatus.METHOD_NOT_ALLOWED:
            message = "the server does not allow this method on the requested resource"
            return _status(objects.status(405, "MethodNotAllowed", message, {}))
        if isinstance(resolved, int):
            return _status(objects.status(404, "NotFound", "the server could not find the requested resource"))
        handler, request.params = resolved
        return handler(request)

    def _routes(self) -> Router:
        """kube-apiserver answers the version and discovery paths with or without a trailing slash."""
        router = Router()
        for path in ("/healthz", "/livez", "/readyz"):
            router.add("GET", path, lambda _request: Response.text(200, "ok", {"X-Content-Type-Options": "nosniff"}))
        documents: dict[str, Callable[[], Any]] = {
            "/version": lambda: objects.version_info(self._version()),
            "/api": lambda: objects.api_versions(self._address()),
            "/api/v1": objects.core_resources,
            "/apis": objects.api_groups,
        }
        for path, document in documents.items():
            for variant in (path, path + "/"):
                router.add("GET", variant, lambda _request, document=document: Response.json(200, document()))
        router.add("GET", "/api/v1/nodes", self._list_nodes)
        router.add("GET", "/api/v1/nodes/{name}", self._get_node)
        router.add("GET", "/api/v1/namespaces/{namespace}/pods", self._list_pods)
        if self._workloads is not None:
            self._workloads.add_routes(router, self._node_objects, self._mirror_pod_objects)
        return router

    def _list_nodes(self, request: Request) -> Response:
        unsupported = [name for name in _UNSUPPORTED_QUERIES if request.arg(name)]
        if unsupported:
            return _bad_request(f"the lab's Kubernetes API does not serve {unsupported[0]} (fix: list without it)")
        selector = request.arg("labelSelector") or ""
        items = self._node_objects()
        try:
            chosen = [item for item in items if objects.matches_label_selector(item["metadata"]["labels"], selector)]
        except ValueError as err:
            return _bad_request(str(err))
        return Response.json(200, objects.node_list(chosen))

    def _get_node(self, request: Request) -> Response:
        name = request.params["name"]
        for item in self._node_objects():
            if item["metadata"]["name"] == name:
                return Response.json(200, objects.single("Node", item))
        details = {"name": name, "kind": "nodes"}
        return _status(objects.status(404, "NotFound", f'nodes "{name}" not found', details))

    def _list_pods(self, request: Request) -> Response:
        """The control-plane mirror pods in `kube-system` (no other namespace has pods here)."""
        unsupported = [name for name in _UNSUPPORTED_QUERIES if request.arg(name)]
        if unsupported:
            return _bad_request(f"the lab's Kubernetes API does not serve {unsupported[0]} (fix: list without it)")
        now = datetime.now(UTC)
        infos = list(self._pods()) if request.params["namespace"] == "kube-system" else []
        items = [objects.pod_object(info, started=now) for info in infos]
        try:
            selector = request.arg("labelSelector") or ""
            chosen = [item for item in items if objects.matches_label_selector(item["metadata"]["labels"], selector)]
        except ValueError as err:
            return _bad_request(str(err))
        return Response.json(200, objects.pod_list(chosen))

    def _node_objects(self) -> list[dict[str, Any]]:
        infos = list(self._nodes())
        now = datetime.now(UTC)
        with self._lock:
            registered = {info.name: self._registered.setdefault(info.name, now) for info in infos}
        items = [objects.node_object(info, registered=registered[info.name], now=now) for info in infos]
        return [self._workloads.decorate(item) for item in items] if self._workloads else items

    def _mirror_pod_objects(self) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        return [objects.pod_object(info, started=now) for info in self._pods()]

    def _address(self) -> str:
        return f"{self.endpoint.host}:{self.endpoint.port}"


def _status(document: dict[str, Any]) -> Response:
    return Response.json(document["code"], document)


def _bad_request(message: str) -> Response:
    return _status(objects.status(400, "BadRequest", message))


class _TlsHttpServer(ThreadingHTTPServer):
    """HTTP/1.1 over TLS; the handshake runs on the connection's own thread, never on the accept loop."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], api: KubernetesApi, context: ssl.SSLContext) -> None:
        self.api = api
        self.context = context
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, client = super().get_request()
        connection.settimeout(_IDLE_TIMEOUT)
        # Headers and body leave in separate writes: without this, Nagle and delayed ACKs add 40 ms to each
        # answer. Go, so kube-apiserver, sets it on every TCP connection.
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.context.wrap_socket(connection, server_side=True, do_handshake_on_connect=False), client

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            request.do_handshake()
        except OSError:  # a refused client certificate or a client that went away: nothing to answer
            _linger(request)
            return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection dropped mid-request is normal; anything else is reported."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


def _linger(connection: ssl.SSLSocket) -> None:
    """Let a TLS alert reach the client. With TLS 1.3 the client sends its request before the server has
    checked its certificate; closing with that request unread would reset the connection and could discard
    the alert. So half-close, then read (in the clear: the TLS layer is gone) until the client closes."""
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_WR)
        connection.settimeout(_LINGER_TIMEOUT)
        while connection.recv(4096):
            pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _TlsHttpServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the lab's servers do not print."""

    def _serve(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=self.headers,
            body=self.rfile.read(length) if length else b"",
            client=self.client_address[0],
        )
        connection: ssl.SSLSocket = self.connection  # type: ignore[assignment]
        response = self.server.api.answer(request, connection.getpeercert())
        body = response.body if isinstance(response.body, bytes) else b"".join(response.body)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve
