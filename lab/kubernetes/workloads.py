"""What a lab cluster's Kubernetes API keeps beyond what its nodes report, and the calls a drain makes on it.

`Workloads` is one cluster's store, shared by every control plane's API (lab.talos.fabric keeps one per cluster):
- Nodes stay registered once seen, also after their kubelet stops (as a real Node object does), until deleted;
  a deleted Node whose kubelet still runs stays gone until that kubelet stops and registers again;
- cordons (`spec.unschedulable` and the `node.kubernetes.io/unschedulable:NoSchedule` taint) and the annotations
  patched onto Nodes (a marker of who cordoned);
- workload pods tests place on nodes (`add_pod`), with an owner kind and, optionally, a PodDisruptionBudget that
  forbids evicting them for now (`block_eviction` / `allow_eviction`).

Served on top of lab.kubernetes.server, in kube-apiserver's shapes: PATCH `/api/v1/nodes/{name}` (strategic or
JSON merge patch of `spec.unschedulable` and `metadata.annotations` only; a null annotation removes it), DELETE
`/api/v1/nodes/{name}` (Status Success), GET `/api/v1/pods` with `fieldSelector=spec.nodeName=<node>` (mirror pods
included), and POST
`/api/v1/namespaces/{ns}/pods/{name}/eviction` (policy/v1 Eviction: 201 Status Success, 429 TooManyRequests with a
DisruptionBudget cause while a budget forbids it, 404 for no such pod). An evicted pod terminates for
`termination` seconds (it is listed with a deletionTimestamp meanwhile), then it is gone.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lab.httpserver import Request, Response, Router
from lab.kubernetes import objects
from lab.kubernetes.objects import NodeInfo

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
MERGE_PATCHES = ("application/strategic-merge-patch+json", "application/merge-patch+json")
_ACCEPTED_PATCHES = (
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, "
    "application/strategic-merge-patch+json"
)
_UID_NAMESPACE = uuid.UUID("0b5e9d3c-58a7-4c1e-9a53-1f6f1c1a7d21")


@dataclass
class _Pod:
    namespace: str
    name: str
    node: str
    owner_kind: str | None
    created: datetime
    budget: str | None = None
    """The PodDisruptionBudget that forbids evicting it now, if any."""
    gone_at: float | None = None
    """Monotonic time its termination ends (evicted)."""


@dataclass
class Workloads:
    """One lab cluster's Kubernetes objects beyond the nodes' own reports; thread-safe."""

    termination: float = 0.05
    """Seconds an evicted pod stays Terminating."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _registered: dict[str, NodeInfo] = field(default_factory=dict)
    _deleted: set[str] = field(default_factory=set)
    _cordoned: set[str] = field(default_factory=set)
    _annotations: dict[str, dict[str, str]] = field(default_factory=dict)
    _pods: dict[tuple[str, str], _Pod] = field(default_factory=dict)

    # -- what tests and the fabric call ------------------------------------------------------------------------

    def registered(self, live: Sequence[NodeInfo]) -> list[NodeInfo]:
        """The Node objects: every node ever reported (`live`: whose kubelet runs now), minus deleted ones."""
        with self._lock:
            names = {info.name for info in live}
            self._deleted &= names  # a kubelet that stopped registers anew when it comes back
            for info in live:
                if info.name not in self._deleted:
                    self._registered[info.name] = info
            return sorted(self._registered.values(), key=lambda info: info.internal_ip)

    def add_pod(
        self, name: str, node: str, *, namespace: str = "default", owner_kind: str | None = "ReplicaSet"
    ) -> None:
        """Place a running pod on `node` (owner_kind `DaemonSet` makes a drain skip it; None: a bare pod)."""
        with self._lock:
            self._pods[(namespace, name)] = _Pod(namespace, name, node, owner_kind, datetime.now(UTC))

    def block_eviction(self, name: str, budget: str, *, namespace: str = "default") -> None:
        """A PodDisruptionBudget named `budget` forbids evicting the pod until `allow_eviction`."""
        with self._lock:
            self._pods[(namespace, name)].budget = budget

    def allow_eviction(self, name: str, *, namespace: str = "default") -> None:
        with self._lock:
            self._pods[(namespace, name)].budget = None

    def pod_names(self, node: str) -> list[str]:
        """`namespace/name` of the workload pods bound to `node` (terminating ones included)."""
        with self._lock:
            self._expire()
            return sorted(f"{p.namespace}/{p.name}" for p in self._pods.values() if p.node == node)

    def cordoned(self, node: str) -> bool:
        with self._lock:
            return node in self._cordoned

    def annotations(self, node: str) -> dict[str, str]:
        """The annotations patched onto the Node."""
        with self._lock:
            return dict(self._annotations.get(node, {}))

    def decorate(self, node: dict[str, Any]) -> dict[str, Any]:
        """A Node object with its cordon and patched annotations, as the API shows it."""
        name = node["metadata"]["name"]
        annotations = self.annotations(name)
        if annotations:
            node = {**node, "metadata": {**node["metadata"], "annotations": annotations}}
        with self._lock:
            if name not in self._cordoned:
                return node
        taint = {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule", "timeAdded": objects.timestamp(datetime.now(UTC))}
        return {**node, "spec": {**node.get("spec", {}), "unschedulable": True, "taints": [taint]}}

    # -- the API -------------------------------------------------------------------------------------------------

    def add_routes(
        self, router: Router, nodes: Callable[[], list[dict[str, Any]]], mirror_pods: Callable[[], list[dict[str, Any]]]
    ) -> None:
        """Serve the drain's calls; `nodes` gives the Node objects, `mirror_pods` the control planes' static pods."""
        router.add("PATCH", "/api/v1/nodes/{name}", lambda request: self._patch_node(request, nodes))
        router.add("DELETE", "/api/v1/nodes/{name}", lambda request: self._delete_node(request, nodes))
        router.add("GET", "/api/v1/pods", lambda request: self._list_pods(request, mirror_pods))
        router.add("POST", "/api/v1/namespaces/{namespace}/pods/{name}/eviction", self._evict)

    def _patch_node(self, request: Request, nodes: Callable[[], list[dict[str, Any]]]) -> Response:
        name = request.params["name"]
        node = _find(nodes(), name)
        kind = (request.headers.get("Content-Type") or "").split(";")[0].strip()
        if kind not in MERGE_PATCHES:
            message = (
                f"the body of the request was in an unknown format - accepted media types include: {_ACCEPTED_PATCHES}"
            )
            return _status(415, "UnsupportedMediaType", message)
        if node is None:
            return _status(404, "NotFound", f'nodes "{name}" not found', {"name": name, "kind": "nodes"})
        try:
            patch = request.json()
        except ValueError as err:
            return _status(400, "BadRequest", f"error decoding patch: {err}")
        spec = patch.get("spec", {}) if isinstance(patch, dict) else None
        annotations = _patched_annotations(patch)
        if set(patch or {}) - {"spec", "metadata"} or not isinstance(spec, dict) or set(spec) - {"unschedulable"}:
            return _status(422, "Invalid", "the lab's Kubernetes API patches only spec.unschedulable")
        if annotations is None:
            return _status(422, "Invalid", "the lab's Kubernetes API patches only metadata.annotations (string values)")
        with self._lock:
            if "spec" in patch and spec.get("unschedulable"):
                self._cordoned.add(name)
            elif "spec" in patch:
                self._cordoned.discard(name)
            self._merge_annotations(name, annotations)
        return Response.json(200, objects.single("Node", self.decorate(node)))

    def _delete_node(self, request: Request, nodes: Callable[[], list[dict[str, Any]]]) -> Response:
        name = request.params["name"]
        node = _find(nodes(), name)
        if node is None:
            return _status(404, "NotFound", f'nodes "{name}" not found', {"name": name, "kind": "nodes"})
        with self._lock:
            self._registered.pop(name, None)
            self._deleted.add(name)
            self._cordoned.discard(name)
            self._annotations.pop(name, None)
        details = {"name": name, "kind": "nodes", "uid": node["metadata"]["uid"]}
        return Response.json(
            200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
        )

    def _list_pods(self, request: Request, mirror_pods: Callable[[], list[dict[str, Any]]]) -> Response:
        selector = request.arg("fieldSelector") or ""
        node = None
        for term in filter(None, selector.split(",")):
            key, _, value = term.replace("==", "=").partition("=")
            if key != "spec.nodeName":
                return _status(400, "BadRequest", f'field label not supported: "{key}"')
            node = value
        with self._lock:
            self._expire()
            workload = [_pod_object(pod) for pod in self._pods.values()]
        items = [*mirror_pods(), *workload]
        chosen = [item for item in items if node is None or item["spec"].get("nodeName") == node]
        return Response.json(200, objects.pod_list(chosen))

    def _evict(self, request: Request) -> Response:
        namespace, name = request.params["namespace"], request.params["name"]
        try:
            body = request.json()
        except ValueError as err:
            return _status(400, "BadRequest", f"error decoding Eviction: {err}")
        if not isinstance(body, dict) or body.get("kind", "Eviction") != "Eviction":  # kind defaults from the path
            return _status(400, "BadRequest", "the body must be a policy/v1 Eviction")
        if (body.get("metadata") or {}).get("name") != name:
            return _status(400, "BadRequest", "name in URL does not match name in Eviction object")
        with self._lock:
            self._expire()
            pod = self._pods.get((namespace, name))
            if pod is None:
                return _status(404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"})
            if pod.budget is not None:
                cause = {
                    "reason": "DisruptionBudget",
                    "message": f"The disruption budget {pod.budget} needs 1 healthy pods and has 1 currently",
                }
                return _status(
                    429,
                    "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                    {"causes": [cause]},
                )
            if pod.gone_at is None:
                pod.gone_at = time.monotonic() + self.termination
        return Response.json(
            201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
        )

    def _merge_annotations(self, name: str, patch: dict[str, str | None]) -> None:
        """Merge-patch semantics: a null value removes the key."""
        merged = {**self._annotations.get(name, {}), **patch}
        self._annotations[name] = {key: value for key, value in merged.items() if value is not None}

    def _expire(self) -> None:
        now = time.monotonic()
        for key, pod in list(self._pods.items()):
            if pod.gone_at is not None and pod.gone_at <= now:
                del self._pods[key]


def _find(items: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((item for item in items if item["metadata"]["name"] == name), None)


def _status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> Response:
    return Response.json(code, objects.status(code, reason, message, details))


def _patched_annotations(patch: Any) -> dict[str, str | None] | None:
    """The patch's `metadata.annotations` (empty when it has none); None when it patches other metadata."""
    metadata = patch.get("metadata", {}) if isinstance(patch, dict) else {}
    annotations = metadata.get("annotations", {}) if isinstance(metadata, dict) else None
    if set(metadata or {}) - {"annotations"} or not isinstance(annotations, dict):
        return None
    if any(not isinstance(value, str | None) for value in annotations.values()):
        return None
    return annotations


def _pod_object(pod: _Pod) -> dict[str, Any]:
    uid = str(uuid.uuid5(_UID_NAMESPACE, f"{pod.namespace}/{pod.name}"))
    metadata: dict[str, Any] = {
        "name": pod.name,
        "namespace": pod.namespace,
        "uid": uid,
        "creationTimestamp": objects.timestamp(pod.created),
        "labels": {"app": pod.name.rsplit("-", 1)[0]},
    }
    if pod.owner_kind:
        api = "apps/v1" if pod.owner_kind in ("ReplicaSet", "DaemonSet", "StatefulSet") else "batch/v1"
        owner = {"apiVersion": api, "kind": pod.owner_kind, "name": metadata["labels"]["app"], "uid": uid}
        metadata["ownerReferences"] = [{**owner, "controller": True, "blockOwnerDeletion": True}]
    if pod.gone_at is not None:
        metadata["deletionTimestamp"] = objects.timestamp(datetime.now(UTC))
        metadata["deletionGracePeriodSeconds"] = 30
    return {
        "metadata": metadata,
        "spec": {"nodeName": pod.node, "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]},
        "status": {"phase": "Running", "startTime": objects.timestamp(pod.created)},
    }
