"""Who a request comes from and whether it may proceed, decided as kube-apiserver decides under Talos.

Authentication: the x509 authenticator only (the user is the client certificate's CN, the groups its O
values). Talos runs kube-apiserver with `--anonymous-auth=false`, so a request without a verified client
certificate is 401 on every path. Authorisation: RBAC with the default bindings that matter here —
`system:masters` may do anything; any authenticated user may GET the public-info and discovery paths
(`system:public-info-viewer`, `system:discovery`); everything else is 403 with the RBAC denial message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lab.kubernetes.objects import status

MASTERS = "system:masters"
_PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version", "/version/", "/api", "/apis", "/openapi"})
_PUBLIC_PREFIXES = ("/api/", "/apis/", "/openapi/")
_RESOURCE_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class RequestAttributes:
    """What kube-apiserver's RequestInfo resolver makes of a request (the fields authorisation uses)."""

    verb: str
    path: str
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""


def user_from_certificate(peer: Mapping[str, Any] | None) -> User | None:
    """The user of a verified client certificate (`ssl.SSLSocket.getpeercert()`), None without one."""
    if not peer:
        return None
    attributes = [attribute for rdn in peer.get("subject", ()) for attribute in rdn]
    name = next((value for key, value in attributes if key == "commonName"), "")
    return User(name, tuple(value for key, value in attributes if key == "organizationName"))


def request_attributes(method: str, path: str, query: Mapping[str, list[str]]) -> RequestAttributes:
    """Resource requests are `/api/<version>/...` and `/apis/<group>/<version>/...`; the rest are paths."""
    parts = [part for part in path.strip("/").split("/") if part]
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, rest = parts[1], parts[3:]
    else:
        return RequestAttributes(verb=method.lower(), path=path)
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    name = rest[1] if len(rest) > 1 else ""
    return RequestAttributes(
        verb=_resource_verb(method, bool(name), query),
        path=path,
        api_group=group,
        resource=rest[0],
        subresource=rest[2] if len(rest) > 2 else "",
        namespace=namespace,
        name=name,
    )


def authorize(user: User, request: RequestAttributes) -> bool:
    if MASTERS in user.groups:
        return True
    public = request.path in _PUBLIC_PATHS or request.path.startswith(_PUBLIC_PREFIXES)
    return not request.resource and request.verb == "get" and public


def unauthorized() -> dict[str, Any]:
    return status(401, "Unauthorized", "Unauthorized")


def forbidden(user: User, request: RequestAttributes) -> dict[str, Any]:
    """The Status RBAC's denial produces (apiserver responsewriters.Forbidden + apierrors.NewForbidden)."""
    if not request.resource:
        message = f'forbidden: User "{user.name}" cannot {request.verb} path "{request.path}"'
        return status(403, "Forbidden", message, {})
    resource = request.resource + (f"/{request.subresource}" if request.subresource else "")
    scope = f'in the namespace "{request.namespace}"' if request.namespace else "at the cluster scope"
    reason = (
        f'User "{user.name}" cannot {request.verb} resource "{resource}" in API group "{request.api_group}" {scope}'
    )
    qualified = request.resource + (f".{request.api_group}" if request.api_group else "")
    subject = f'{qualified} "{request.name}"' if request.name else qualified
    details = {"name": request.name, "group": request.api_group, "kind": request.resource}
    return status(403, "Forbidden", f"{subject} is forbidden: {reason}", {k: v for k, v in details.items() if v})


def _resource_verb(method: str, named: bool, query: Mapping[str, list[str]]) -> str:
    if method in ("GET", "HEAD"):
        if query.get("watch", [""])[0] in ("1", "true"):
            return "watch"
        return "get" if named else "list"
    if method == "DELETE":
        return "delete" if named else "deletecollection"
    return _RESOURCE_VERBS.get(method, method.lower())
