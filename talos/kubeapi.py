"""A small Kubernetes API client over an admin kubeconfig: plain HTTPS GETs with the kubeconfig's CA and client
certificate (Talos hands out a kubeconfig with embedded certificate data), answers decoded from JSON."""

from __future__ import annotations

import base64
import functools
import http.client
import json
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

from talos.api.tls import load_certificate_chain

_TIMEOUT = 5.0


@dataclass(frozen=True)
class KubeApi:
    """Plain HTTPS to the Kubernetes API with the kubeconfig's CA and client certificate (read-only GETs)."""

    server: str
    ca: bytes
    crt: bytes
    key: bytes = field(repr=False)

    @classmethod
    def from_kubeconfig(cls, text: str) -> KubeApi:
        return _from_kubeconfig(text)

    def get(self, path: str) -> Any:
        """GET `path` (with its query); HTTPException for any status but 200."""
        status, body = self.request("GET", path)
        if status != 200:
            raise http.client.HTTPException(f"GET {path}: HTTP {status}")
        return json.loads(body)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        server: str | None = None,
        timeout: float = _TIMEOUT,
    ) -> tuple[int, bytes]:
        """One HTTPS request to `server` (default: the kubeconfig's); the status and the raw answer.

        The TLS socket is made before it connects, so it is closed on every outcome: wrapping a connected socket
        that the server resets at once (a restarting kube-apiserver) leaks it inside the ssl module.
        """
        context = ssl.create_default_context(cadata=self.ca.decode())
        load_certificate_chain(context, self.crt, self.key)
        url = urlsplit(server or self.server)
        host, port = url.hostname or "", url.port or 443
        family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with context.wrap_socket(socket.socket(family, kind, proto), server_hostname=host) as tls:
            tls.settimeout(timeout)
            tls.connect(address)
            connection = http.client.HTTPSConnection(host, port, context=context, timeout=timeout)
            connection.sock = tls
            connection.request(method, path, body=body, headers={"Accept": "application/json", **(headers or {})})
            response = connection.getresponse()
            return response.status, response.read()


KUBE_API_ERRORS = (OSError, http.client.HTTPException, ssl.SSLError)
"""What a GET raises while the API is unreachable, restarting or answering with an error status."""


def condition_true(item: dict[str, Any], kind: str) -> bool:
    """Whether an object's status carries condition `kind` with status True (a Node's or a Pod's `Ready`)."""
    conditions = (item.get("status") or {}).get("conditions") or []
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)


@functools.lru_cache(maxsize=8)
def _from_kubeconfig(text: str) -> KubeApi:
    """Parsed once per kubeconfig: every resource of a preview checks the same one."""
    document = yaml.safe_load(text)
    cluster = document["clusters"][0]["cluster"]
    user = document["users"][0]["user"]
    return KubeApi(
        server=cluster["server"],
        ca=base64.b64decode(cluster["certificate-authority-data"]),
        crt=base64.b64decode(user["client-certificate-data"]),
        key=base64.b64decode(user["client-key-data"]),
    )
