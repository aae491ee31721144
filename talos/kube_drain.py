"""Take a node out of Kubernetes the way `kubectl drain` + `kubectl delete node` do, with an admin kubeconfig.

- cordon: PATCH the Node's `spec.unschedulable` (strategic merge patch), so nothing new lands on it;
- drain: evict (policy/v1 Eviction, the subresource that honours PodDisruptionBudgets) every pod bound to the node
  (field selector `spec.nodeName`) except DaemonSet-owned and mirror (static) pods, as `kubectl drain
  --ignore-daemonsets --delete-emptydir-data --force` does; 429 means a disruption budget forbids it now, so it is
  retried until the drain deadline; then wait until the evicted pods are gone;
- delete: DELETE the Node object; a Node already gone counts as done;
- cordon for / uncordon for an operation that brings the node back (an upgrade): the cordon carries the annotation
  CORDONED_BY naming the operation, and only a cordon so marked is undone, so a re-run after an interruption
  uncordons what an earlier run cordoned while a node someone else cordoned stays cordoned (`kubectl drain` keeps no
  such record; tools that reboot nodes, such as kured, remember the prior state the same way).

Each request goes to the kubeconfig's server and, when that does not answer (it may be the very node being removed),
to the other control planes' `:6443` in turn: Talos' API server certificates name every control-plane address.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from common.waiting import Backoff, Deadline, NotYet, Progress, WaitTimeout, no_progress, wait_until
from talos.api.transport import split_endpoint
from talos.errors import TalosError
from talos.kubeapi import KUBE_API_ERRORS, KubeApi

API_PORT = 6443
REQUEST_TIMEOUT = 10.0
DRAIN_POLL = Backoff(first=0.05, factor=1.5, cap=2.0)
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
STRATEGIC_MERGE = "application/strategic-merge-patch+json"
CORDONED_BY = "talos-hetzner/cordoned-by"
"""Node annotation set with a cordon this project will undo; its value names the operation (e.g. `upgrade`)."""


class KubeError(TalosError):
    """A Kubernetes API call failed or a drain did not finish; the message names the node and the fix."""


class KubeUnreachableError(KubeError):
    """No Kubernetes API server answered at all (not one that answered with an error)."""


@dataclass(frozen=True)
class KubeResponse:
    status: int
    body: Any


@dataclass(frozen=True)
class KubeCluster:
    """A cluster's Kubernetes API: the kubeconfig's credentials, tried at each of `servers` in order."""

    credentials: KubeApi
    servers: tuple[str, ...]

    @classmethod
    def from_kubeconfig(cls, text: str, *, control_planes: Sequence[str] = ()) -> KubeCluster:
        """The kubeconfig's server first, then `https://<host>:6443` of each control plane (`host[:port]` entries)."""
        try:
            credentials = KubeApi.from_kubeconfig(text)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as err:
            raise KubeError(
                f"the kubeconfig has no cluster server or client certificate ({type(err).__name__}) "
                "(fix: pass the kubeconfig ClusterBootstrap outputs)"
            ) from None
        servers = [credentials.server]
        for endpoint in control_planes:
            host = split_endpoint(endpoint)[0]
            server = f"https://[{host}]:{API_PORT}" if ":" in host else f"https://{host}:{API_PORT}"
            if server not in servers:
                servers.append(server)
        return cls(credentials, tuple(servers))

    def request(
        self, method: str, path: str, body: Any = None, *, content_type: str = "application/json"
    ) -> KubeResponse:
        """One call, answered by the first server that answers at all; KubeError when none does."""
        failures = []
        for server in self.servers:
            try:
                return _send(self.credentials, server, method, path, body, content_type)
            except KUBE_API_ERRORS as err:
                failures.append(f"{server}: {err or type(err).__name__}")
        raise KubeUnreachableError(f"{method} {path}: no Kubernetes API server answered ({'; '.join(failures)})")


def find_node(kube: KubeCluster, address: str, names: Sequence[str] = ()) -> str | None:
    """The name of the Node with `address` among its status addresses, else one named like `names`; None if none."""
    host = split_endpoint(address)[0]
    items = _ok(kube.request("GET", "/api/v1/nodes"), "listing nodes")["items"]
    for item in items:
        addresses = ((item.get("status") or {}).get("addresses")) or []
        if any(entry.get("address") == host for entry in addresses):
            return str(item["metadata"]["name"])
    wanted = set(names)
    return next((str(item["metadata"]["name"]) for item in items if item["metadata"]["name"] in wanted), None)


def cordon(kube: KubeCluster, name: str) -> bool:
    """Mark the Node unschedulable; False when there is no such Node."""
    return _patch_node(kube, name, {"spec": {"unschedulable": True}}, "cordoning")


def cordon_for(kube: KubeCluster, name: str, operation: str) -> bool | None:
    """Cordon the Node for `operation`, marked with CORDONED_BY, unless someone else cordoned it already.

    True: the cordon is the operation's (now, or left by an earlier run); False: another's, left as it is (not
    marked); None: there is no such Node.
    """
    node = get_node(kube, name)
    if node is None:
        return None
    if _unschedulable(node) and _cordoned_by(node) != operation:
        return False
    patch = {"metadata": {"annotations": {CORDONED_BY: operation}}, "spec": {"unschedulable": True}}
    return _patch_node(kube, name, patch, "cordoning") or None


def uncordon_for(kube: KubeCluster, name: str, operation: str) -> bool:
    """Undo the cordon `operation` set (schedulable again, marker removed); False, untouched, when the Node is
    gone or its cordon is not marked as the operation's."""
    node = get_node(kube, name)
    if node is None or _cordoned_by(node) != operation:
        return False
    patch = {"metadata": {"annotations": {CORDONED_BY: None}}, "spec": {"unschedulable": False}}
    return _patch_node(kube, name, patch, "uncordoning")


def get_node(kube: KubeCluster, name: str) -> dict[str, Any] | None:
    """The Node object; None when there is none."""
    response = kube.request("GET", f"/api/v1/nodes/{quote(name)}")
    if response.status == 404:
        return None
    return dict(_ok(response, f"reading node {name}"))


def pods_to_evict(kube: KubeCluster, name: str) -> list[dict[str, Any]]:
    """Pods bound to the node that a drain evicts: all but DaemonSet-owned and mirror pods."""
    selector = quote(f"spec.nodeName={name}")
    pods = _ok(kube.request("GET", f"/api/v1/pods?fieldSelector={selector}"), f"listing pods on {name}")["items"]
    return [pod for pod in pods if not _daemon_set_owned(pod) and not _mirror(pod)]


def evict(kube: KubeCluster, pod: dict[str, Any]) -> str | None:
    """Ask to evict the pod; None when accepted (or the pod is gone), else why not yet (a disruption budget)."""
    metadata = pod["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace}}
    path = f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(name)}/eviction"
    response = kube.request("POST", path, eviction)
    if response.status in (200, 201, 404):
        return None
    if response.status == 429:
        details = response.body.get("details") if isinstance(response.body, dict) else None
        causes = [str(cause.get("message")) for cause in (details or {}).get("causes") or [] if cause.get("message")]
        return f"{namespace}/{name}: {' '.join([_message(response), *causes])}"
    _ok(response, f"evicting {namespace}/{name}")
    return None


def drain(
    kube: KubeCluster,
    name: str,
    deadline: Deadline,
    *,
    fix: str = "raise timeouts.drain, or set policy.drain to false to skip draining",
    progress: Progress = no_progress,
) -> int:
    """Evict the node's pods and wait until they are gone; returns how many were evicted.

    KubeError at the deadline, naming the pods left and the budgets blocking them; `fix` completes its advice.
    """
    asked: set[str] = set()

    def drained() -> bool:
        pods = pods_to_evict(kube, name)
        if not pods:
            return True
        blocked = []
        for pod in pods:
            uid = pod["metadata"].get("uid") or pod["metadata"]["name"]
            if uid in asked:
                continue
            refusal = evict(kube, pod)
            if refusal is None:
                asked.add(uid)
            else:
                blocked.append(refusal)
        names = ", ".join(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pods)
        raise NotYet(f"{len(pods)} pod(s) left ({names})" + (f"; blocked: {'; '.join(blocked)}" if blocked else ""))

    try:
        wait_until(drained, deadline, what=f"node {name} drained", backoff=DRAIN_POLL, progress=progress)
    except WaitTimeout as err:
        raise KubeError(
            f"drain of node {name} did not finish: {err} (fix: let the disruption budgets named allow it, or {fix})"
        ) from None
    return len(asked)


def delete_node(kube: KubeCluster, name: str) -> bool:
    """Delete the Node object; False when it was gone already."""
    response = kube.request("DELETE", f"/api/v1/nodes/{quote(name)}")
    if response.status == 404:
        return False
    _ok(response, f"deleting node {name}")
    return True


def _patch_node(kube: KubeCluster, name: str, patch: dict[str, Any], what: str) -> bool:
    """A strategic merge patch of the Node; False when there is no such Node."""
    response = kube.request("PATCH", f"/api/v1/nodes/{quote(name)}", patch, content_type=STRATEGIC_MERGE)
    if response.status == 404:
        return False
    _ok(response, f"{what} node {name}")
    return True


def _unschedulable(node: dict[str, Any]) -> bool:
    return bool((node.get("spec") or {}).get("unschedulable"))


def _cordoned_by(node: dict[str, Any]) -> str | None:
    return ((node.get("metadata") or {}).get("annotations") or {}).get(CORDONED_BY)


def _daemon_set_owned(pod: dict[str, Any]) -> bool:
    owners = pod["metadata"].get("ownerReferences") or []
    return any(owner.get("kind") == "DaemonSet" and owner.get("controller") for owner in owners)


def _mirror(pod: dict[str, Any]) -> bool:
    return MIRROR_ANNOTATION in (pod["metadata"].get("annotations") or {})


def _ok(response: KubeResponse, what: str) -> Any:
    if response.status >= 300:
        raise KubeError(f"{what}: HTTP {response.status}: {_message(response)}")
    return response.body


def _message(response: KubeResponse) -> str:
    body = response.body
    return str(body.get("message") or body) if isinstance(body, dict) else str(body)[:200]


def _send(api: KubeApi, server: str, method: str, path: str, body: Any, content_type: str) -> KubeResponse:
    """One request with the kubeconfig's credentials to `server`; a body that is not JSON is kept as text."""
    payload = None if body is None else json.dumps(body).encode()
    headers = {} if payload is None else {"Content-Type": content_type}
    status, raw = api.request(method, path, body=payload, headers=headers, server=server, timeout=REQUEST_TIMEOUT)
    try:
        document = json.loads(raw) if raw else None
    except ValueError:
        document = raw.decode(errors="replace")
    return KubeResponse(status, document)
