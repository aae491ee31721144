"""Kubernetes API objects in the JSON kube-apiserver serves: version.Info, core/v1 Node and NodeList,
meta/v1 Status, and the legacy discovery documents.

Shapes follow the API reference and the official client's models (`kubernetes.client.models`: VersionInfo,
V1Node, V1NodeSystemInfo, V1Status, V1APIVersions, V1APIResourceList, V1APIGroupList); every field those
models require is present. Node status mirrors what a kubelet posts: the four conditions in the kubelet's
order, and with no CNI installed `Ready=False` with the kubelet's `KubeletNotReady` reason.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from talos.kubernetes_images import image_version

Role = Literal["control-plane", "worker"]

CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
NOT_READY_REASON = "KubeletNotReady"
NOT_READY_MESSAGE = (
    "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
    "message:Network plugin returns error: cni plugin not initialized"
)
"""What the kubelet posts while no CNI is installed (containerd's network status, wrapped by the kubelet)."""

READY_MESSAGE = "kubelet is posting ready status"

_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)([-+][0-9A-Za-z.+-]+)?")
_PRESSURES = (
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
)
_UID_NAMESPACE = uuid.UUID("4a1e5b0e-6c43-4f2b-9a57-2d3c1f0b7e11")
_KUBELET_PORT = 10250


@dataclass(frozen=True)
class NodeInfo:
    """One node as its kubelet registered it."""

    name: str
    internal_ip: str
    role: Role
    kubelet_version: str
    """`v1.36.3`: the kubelet's gitVersion."""
    ready: bool = False
    """False while no CNI is installed, as on a real cluster."""
    os_image: str = "Talos"
    """status.nodeInfo.osImage; Talos reports `Talos (v1.13.9)`."""

    def __post_init__(self) -> None:
        if self.role not in get_args(Role):
            raise ValueError(f"node {self.name!r}: role {self.role!r} is not 'control-plane' or 'worker'")

    def labels(self) -> dict[str, str]:
        """The labels the kubelet sets, plus the control-plane role label Talos registers control planes with."""
        labels = {
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
        }
        if self.role == "control-plane":
            labels[CONTROL_PLANE_LABEL] = ""
        return labels


def parse_version(version: str) -> tuple[int, int, str]:
    """(major, minor, gitVersion) of a Kubernetes version such as `1.36.3` or `v1.36.3`."""
    match = _VERSION.fullmatch(version)
    if match is None:
        raise ValueError(f"Kubernetes version {version!r} is not a version like 'v1.36.3' (fix: pass the version)")
    return int(match[1]), int(match[2]), "v" + version.removeprefix("v")


def version_info(version: str) -> dict[str, str]:
    """GET /version. Build fields (commit, date, Go version) name no real build: the lab has none."""
    major, minor, git_version = parse_version(version)
    return {
        "major": str(major),
        "minor": str(minor),
        "emulationMajor": str(major),
        "emulationMinor": str(minor),
        "minCompatibilityMajor": str(major),
        "minCompatibilityMinor": str(max(minor - 1, 0)),
        "gitVersion": git_version,
        "gitCommit": "0" * 40,
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "unknown",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def node_object(info: NodeInfo, *, registered: datetime, now: datetime) -> dict[str, Any]:
    """A Node as a list item (a single GET adds kind and apiVersion, see `single`)."""
    ids = str(uuid.uuid5(_UID_NAMESPACE, info.name))
    return {
        "metadata": {
            "name": info.name,
            "uid": ids,
            "creationTimestamp": timestamp(registered),
            "labels": info.labels(),
        },
        "spec": {},
        "status": {
            "conditions": _conditions(info.ready, registered, now),
            "addresses": [
                {"type": "InternalIP", "address": info.internal_ip},
                {"type": "Hostname", "address": info.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": _KUBELET_PORT}},
            "nodeInfo": {
                "machineID": ids.replace("-", ""),
                "systemUUID": ids,
                "bootID": str(uuid.uuid5(_UID_NAMESPACE, f"{info.name}@{timestamp(registered)}")),
                "kernelVersion": "6.18.0-talos",
                "osImage": info.os_image,
                "containerRuntimeVersion": "containerd://2.1.0",
                "kubeletVersion": info.kubelet_version,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }


def single(kind: str, item: Mapping[str, Any]) -> dict[str, Any]:
    """A core/v1 object as a single GET returns it: kind and apiVersion first."""
    return {"kind": kind, "apiVersion": "v1", **item}


def node_list(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": list(items)}


def status(code: int, reason: str, message: str, details: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A failure meta/v1 Status; `details` is omitted when None, as the server omits a nil pointer."""
    document: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        document["details"] = dict(details)
    document["code"] = code
    return document


def api_versions(server_address: str) -> dict[str, Any]:
    """GET /api: the legacy core group's versions."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def core_resources() -> dict[str, Any]:
    """GET /api/v1: only what this server serves (nodes, read-only)."""
    nodes = {
        "name": "nodes",
        "singularName": "node",
        "namespaced": False,
        "kind": "Node",
        "verbs": ["get", "list"],
        "shortNames": ["no"],
    }
    return {"kind": "APIResourceList", "groupVersion": "v1", "resources": [nodes]}


def api_groups() -> dict[str, Any]:
    """GET /apis: no named groups are served."""
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": []}


def matches_label_selector(labels: Mapping[str, str], selector: str) -> bool:
    """Whether `labels` satisfy an equality-based selector: comma-joined `key`, `!key`, `key=value`,
    `key==value`, `key!=value`. Set-based terms (`in`, `notin`) raise ValueError: the lab does not serve them."""
    for term in filter(None, (part.strip() for part in selector.split(","))):
        if "(" in term or " " in term:
            raise ValueError(
                f"label selector term {term!r} is set-based; the lab serves only equality-based terms "
                "(key, !key, key=value, key!=value)"
            )
        if "!=" in term:
            key, value = term.split("!=", 1)
            ok = labels.get(key) != value
        elif "=" in term:
            key, value = term.split("==", 1) if "==" in term else term.split("=", 1)
            ok = labels.get(key) == value
        elif term.startswith("!"):
            ok = term[1:] not in labels
        else:
            ok = term in labels
        if not ok:
            return False
    return True


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with whole seconds, as metav1.Time marshals."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _conditions(ready: bool, registered: datetime, now: datetime) -> list[dict[str, str]]:
    times = {"lastHeartbeatTime": timestamp(now), "lastTransitionTime": timestamp(registered)}
    conditions = [
        {"type": kind, "status": "False", **times, "reason": reason, "message": message}
        for kind, reason, message in _PRESSURES
    ]
    reason, message = ("KubeletReady", READY_MESSAGE) if ready else (NOT_READY_REASON, NOT_READY_MESSAGE)
    state = "True" if ready else "False"
    return [*conditions, {"type": "Ready", "status": state, **times, "reason": reason, "message": message}]


@dataclass(frozen=True)
class PodInfo:
    """A control-plane static pod as its mirror pod in `kube-system` shows it (Talos renders the manifest)."""

    component: str
    """`kube-apiserver`, `kube-controller-manager` or `kube-scheduler`."""
    node_name: str
    host_ip: str
    image: str
    config_version: str
    """The `talos.dev/config-version` annotation: the version of the component's config resource."""
    ready: bool


def pod_object(info: PodInfo, *, started: datetime) -> dict[str, Any]:
    """A mirror Pod as a list item: Talos' labels and annotations, the kubelet's `<pod>-<node>` name."""
    name = f"{info.component}-{info.node_name}"
    version = image_version(info.image)
    state = "True" if info.ready else "False"
    times = {"lastProbeTime": None, "lastTransitionTime": timestamp(started)}
    return {
        "metadata": {
            "name": name,
            "namespace": "kube-system",
            "uid": str(uuid.uuid5(_UID_NAMESPACE, f"{name}@{info.config_version}")),
            "creationTimestamp": timestamp(started),
            "labels": {
                "tier": "control-plane",
                "k8s-app": info.component,
                "component": info.component,
                "app.kubernetes.io/name": info.component,
                "app.kubernetes.io/version": version.removeprefix("v"),
                "app.kubernetes.io/component": "control-plane",
                "app.kubernetes.io/managed-by": "Talos",
            },
            "annotations": {
                "talos.dev/config-version": info.config_version,
                "talos.dev/secrets-version": "1",
                "kubernetes.io/config.source": "file",
                "kubernetes.io/config.mirror": uuid.uuid5(_UID_NAMESPACE, f"{name}@{info.config_version}").hex,
            },
        },
        "spec": {
            "nodeName": info.node_name,
            "hostNetwork": True,
            "priorityClassName": "system-cluster-critical",
            "containers": [{"name": info.component, "image": info.image}],
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": kind, "status": "True" if kind == "PodScheduled" else state, **times}
                for kind in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
            ],
            "hostIP": info.host_ip,
            "hostIPs": [{"ip": info.host_ip}],
            "podIP": info.host_ip,
            "podIPs": [{"ip": info.host_ip}],
            "startTime": timestamp(started),
            "containerStatuses": [
                {
                    "name": info.component,
                    "image": info.image,
                    "imageID": "",
                    "ready": info.ready,
                    "restartCount": 0,
                    "started": True,
                    "state": {"running": {"startedAt": timestamp(started)}},
                }
            ],
        },
    }


def pod_list(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": list(items)}
