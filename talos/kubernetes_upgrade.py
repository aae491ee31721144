"""Roll a Talos cluster's Kubernetes to another version the way `talosctl upgrade-k8s` does (v1.13).

`upgrade_kubernetes` runs, each step reported as `<node>: <component>: <what> (<elapsed>)`:
1. Checks: the path from the version kube-apiserver reports (GET /version) must stay within one minor, upwards or
   within the minor (go-kubernetes upgrade.Path); every node's Talos release must support the target
   (pkg/machinery/compatibility). Then a health gate (talos.api.waiting.wait_healthy).
2. kube-apiserver, then kube-controller-manager, then kube-scheduler, each over the control planes one by one:
   read the node's live machine config (COSI MachineConfigs), re-pin the component's image, ApplyConfiguration
   NO_REBOOT; wait until the component's config resource (`<Kind>Configs.kubernetes.talos.dev`, namespace
   `controlplane`) names the new image, then until the mirror pod on that node (kube-system, `k8s-app=<name>`,
   `status.hostIP` = the node) carries that resource's version in its `talos.dev/config-version` annotation and
   is Ready. That annotation, not the pod's image, is what upgrade-k8s waits on.
3. kube-proxy: re-pin `cluster.proxy.image` on the control planes (upgrade-k8s waits on nothing here: the
   DaemonSet follows when the bootstrap manifests are synced, which this module does not do).
4. kubelet, node by node, control planes first: the kubelet service must be healthy before; re-pin
   `machine.kubelet.image` (keeping a `-fat`/`-slim` suffix); wait until the kubelet runs healthy again and the
   Node (matched by address) reports the new `kubeletVersion` and is Ready (NotReady is accepted without a CNI;
   upgrade-k8s itself would wait for Ready forever there).
5. A health gate again.

A component whose config already names the target is not re-applied ("already on target"); only its readiness is
checked, so a re-run after a failure resumes where it stopped and never restarts a component twice.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import yaml

from common.waiting import Deadline, NotYet, Progress, WaitTimeout, format_elapsed, no_progress, wait_until
from talos.api.client import TalosClient
from talos.api.errors import TalosApiError
from talos.api.waiting import ATTEMPT_TIMEOUT, NOT_READY_WITHOUT_CNI, POLL, wait_healthy
from talos.documents import dump_documents, parse_documents
from talos.errors import TalosError
from talos.kubeapi import KUBE_API_ERRORS, KubeApi, condition_true
from talos.kubernetes_images import (
    CONFIG_TYPES,
    CONFIG_VERSION_ANNOTATION,
    STATIC_PODS,
    component_images,
    image_version,
    retag,
    with_component_images,
)
from talos.talosconfig import TalosContext
from talos.upgrade import UpgradeError
from talos.versions import parse_version

KUBERNETES_RANGES: dict[tuple[int, int], tuple[tuple[int, int], tuple[int, int]]] = {
    (1, 13): ((1, 31), (1, 36)),
    (1, 12): ((1, 30), (1, 35)),
}
"""Talos minor -> the Kubernetes minors it runs (v1.13.9 pkg/machinery/compatibility/talos11{2,3})."""
DEFAULT_STEP_TIMEOUT = 300.0
"""Seconds one component on one node may take to come back (upgrade-k8s: 5 min per static pod)."""
_KUBELET_SUFFIXES = ("-fat", "-slim")
_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")


class KubernetesUpgradeError(UpgradeError):
    """A component could not be rolled on a node; names the node, the component, the phase and the fix."""

    def __init__(self, node: str, component: str, phase: str, reason: str, fix: str) -> None:
        super().__init__(node, f"{component}: {phase}" if component else phase, reason, fix)
        self.component = component


@dataclass(frozen=True)
class ClusterNode:
    """One node of the cluster: its Kubernetes node name, its address (Talos API and Node InternalIP), its role."""

    name: str
    address: str
    control_plane: bool

    @classmethod
    def from_input(cls, node: Mapping[str, Any]) -> ClusterNode:
        """From a `{name, address, role}` entry, as the providers take the cluster's nodes."""
        return cls(str(node["name"]), str(node["address"]), node.get("role") == "controlplane")


@dataclass(frozen=True)
class KubernetesUpgradeResult:
    """What upgrade_kubernetes did: `rolled` and `skipped` list `<node>/<component>` in the order visited."""

    from_version: str
    to_version: str
    rolled: tuple[str, ...]
    skipped: tuple[str, ...]
    seconds: float

    @property
    def outcome(self) -> str:
        return "upgraded" if self.rolled else "already on target"


def parse_kubernetes_version(version: str) -> tuple[int, int, int]:
    """`v1.36.4` or `1.36.4` as numbers; TalosError with the fix otherwise."""
    match = _VERSION.match(str(version).strip())
    if not match:
        raise TalosError(f"kubernetes version {version!r} is not a release like 'v1.36.4' (fix: use a release tag)")
    return int(match[1]), int(match[2]), int(match[3])


def path_problem(from_version: str, to_version: str) -> str | None:
    """Why upgrade-k8s refuses this path (a lower minor, or more than one minor up), or None when it takes it."""
    before, after = parse_kubernetes_version(from_version)[:2], parse_kubernetes_version(to_version)[:2]
    if after == before or after == (before[0], before[1] + 1):
        return None
    if after < before:
        return (
            f"{normal(from_version)} -> {normal(to_version)} lowers the minor version, which upgrade-k8s refuses "
            f"(fix: pick a release of v{before[0]}.{before[1]} or of the next minor)"
        )
    return (
        f"{normal(from_version)} -> {normal(to_version)} skips a minor version; upgrade-k8s moves one minor at a "
        f"time (fix: go to v{before[0]}.{before[1] + 1}.x first, then on)"
    )


def support_problem(talos_version: str, kubernetes_version: str) -> str | None:
    """Why a Talos release cannot run this Kubernetes version, or None (also for a Talos minor not tabled)."""
    bounds = KUBERNETES_RANGES.get(parse_version(talos_version)[:2])
    wanted = parse_kubernetes_version(kubernetes_version)[:2]
    if bounds is None or bounds[0] <= wanted <= bounds[1]:
        return None
    (low_major, low), (high_major, high) = bounds
    return (
        f"Talos {talos_version} runs Kubernetes {low_major}.{low} to {high_major}.{high}, not "
        f"{normal(kubernetes_version)} (fix: upgrade Talos first, or pick a supported Kubernetes version)"
    )


def normal(version: str) -> str:
    return "v" + str(version).strip().removeprefix("v")


def upgrade_kubernetes(
    cluster: str,
    nodes: Sequence[ClusterNode],
    credentials: TalosContext,
    kubeconfig: str,
    version: str,
    *,
    deadline: Deadline,
    talos_port: int = 50000,
    cni_installed: bool = False,
    step_timeout: float = DEFAULT_STEP_TIMEOUT,
    health_timeout: float | None = None,
    progress: Progress = no_progress,
) -> KubernetesUpgradeResult:
    """Bring every component of the cluster's `nodes` to Kubernetes `version`; see the module docstring.

    Raises KubernetesUpgradeError naming the node (or the cluster), the component, the phase and the fix.
    """
    roll = _Roll(cluster, nodes, credentials, KubeApi.from_kubeconfig(kubeconfig), normal(version), deadline)
    roll.talos_port, roll.cni_installed, roll.progress = talos_port, cni_installed, progress
    roll.step_timeout, roll.health_timeout = step_timeout, health_timeout
    return roll.run()


@dataclass
class _Roll:
    """One run of upgrade_kubernetes: its settings, clients and what it did so far."""

    cluster: str
    nodes: Sequence[ClusterNode]
    credentials: TalosContext
    api: KubeApi
    target: str
    deadline: Deadline
    talos_port: int = 50000
    cni_installed: bool = False
    step_timeout: float = DEFAULT_STEP_TIMEOUT
    health_timeout: float | None = None
    progress: Progress = no_progress
    rolled: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    start: float = field(default_factory=time.monotonic)
    clients: dict[str, TalosClient] = field(default_factory=dict)

    @property
    def control_planes(self) -> list[ClusterNode]:
        return [node for node in self.nodes if node.control_plane]

    @property
    def workers(self) -> list[ClusterNode]:
        return [node for node in self.nodes if not node.control_plane]

    def run(self) -> KubernetesUpgradeResult:
        parse_kubernetes_version(self.target)
        if not self.control_planes:
            raise TalosError(f"{self.cluster}: no control plane among the nodes (fix: list the control planes)")
        with ExitStack() as stack:
            for node in self.nodes:
                endpoint = f"{node.address}:{self.talos_port}"
                self.clients[node.name] = stack.enter_context(TalosClient(endpoint, self.credentials))
            before = self._check()
            self._gate("before the roll")
            for component in STATIC_PODS:
                for node in self.control_planes:
                    self._static_pod(node, component)
            for node in self.control_planes:
                self._kube_proxy(node)
            for node in [*self.control_planes, *self.workers]:
                self._kubelet(node)
            self._gate("after the roll")
        seconds = time.monotonic() - self.start
        self._say(self.cluster, "", f"on {self.target}: {len(self.rolled)} rolled, {len(self.skipped)} already there")
        return KubernetesUpgradeResult(before, self.target, tuple(self.rolled), tuple(self.skipped), seconds)

    # -- checks and gates --------------------------------------------------------------------------------------

    def _check(self) -> str:
        """The version kube-apiserver reports; the path from it and every node's Talos release must allow the target."""
        fix = "check that the kubeconfig belongs to this cluster and that the control planes run"
        with self._phase(self.cluster, "", "reading the running version", fix):
            running = self._wait(self.cluster, "", "the Kubernetes API", lambda: self.api.get("/version")["gitVersion"])
        if problem := path_problem(running, self.target):
            raise KubernetesUpgradeError(self.cluster, "", "checking the upgrade path", *_split_fix(problem))
        for node in self.nodes:
            with self._phase(node.name, "", "reading the Talos version", "check the node's address and Talos API"):
                talos = self._client(node).version().tag
            if problem := support_problem(talos, self.target):
                raise KubernetesUpgradeError(node.name, "", "checking Talos support", *_split_fix(problem))
        self._say(self.cluster, "", f"rolling Kubernetes {normal(running)} -> {self.target}")
        return normal(running)

    def _gate(self, when: str) -> None:
        fix = "bring the cluster back to health (talosctl health names the rest); then run again"
        tolerate = () if self.cni_installed else (NOT_READY_WITHOUT_CNI,)
        gate_deadline = self.deadline.within(self.health_timeout) if self.health_timeout else self.deadline
        with self._phase(self.cluster, "", f"health gate {when}", fix):
            wait_healthy(
                [f"{n.address}:{self.talos_port}" for n in self.control_planes],
                [f"{n.address}:{self.talos_port}" for n in self.workers],
                self.credentials,
                gate_deadline,
                tolerate=tolerate,
                progress=lambda line: self.progress(f"{self.cluster}: health {when}: {line}"),
            )

    # -- steps -------------------------------------------------------------------------------------------------

    def _static_pod(self, node: ClusterNode, component: str) -> None:
        client = self._client(node)
        applied = self._repin(node, component)
        fix = "look at the node's kubelet and the component's logs (talosctl logs); then run again"
        with self._phase(node.name, component, "waiting for the config resource", fix):
            config_version = self._wait(
                node.name, component, "its config resource", lambda: self._config(client, component)
            )
        if applied:
            self._say(node.name, component, f"config resource at version {config_version}")
        fix = f"look at {component}'s logs on the node (talosctl logs {component}); then run again"
        with self._phase(node.name, component, "waiting for the pod", fix):
            self._wait(
                node.name, component, "the new pod Ready", lambda: self._pod_ready(node, component, config_version)
            )
        self._say(node.name, component, f"runs {self.target}, Ready")

    def _kube_proxy(self, node: ClusterNode) -> None:
        if self._repin(node, "kube-proxy"):
            self._say(node.name, "kube-proxy", "re-pinned (its DaemonSet follows when the manifests are synced)")

    def _kubelet(self, node: ClusterNode) -> None:
        client = self._client(node)
        fix = "restart the kubelet (talosctl service kubelet restart) or look at its logs; then run again"
        with self._phase(node.name, "kubelet", "checking the kubelet", fix):
            if not self._kubelet_healthy(client):
                raise KubernetesUpgradeError(
                    node.name, "kubelet", "checking the kubelet", "kubelet is not healthy", fix
                )
        self._repin(node, "kubelet")
        fix = "look at the kubelet's logs (talosctl logs kubelet) and the Node's conditions; then run again"
        with self._phase(node.name, "kubelet", "waiting for the Node", fix):
            self._wait(node.name, "kubelet", "the Node on the new version", lambda: self._node_on_target(node, client))
        self._say(node.name, "kubelet", f"Node reports {self.target}")

    def _repin(self, node: ClusterNode, component: str) -> bool:
        """Apply the node's live config with the component re-pinned; False when it already names the target."""
        client = self._client(node)
        step = f"{node.name}/{component}"
        with self._phase(node.name, component, "reading the machine config", "check the node's Talos API"):
            documents = parse_documents(client.machine_config())
        current = component_images(documents).get(component)
        if current is None:
            fix = f"set the {component} image in the node's machine config (talosctl gen config writes it)"
            reason = "the machine config names no image for it"
            raise KubernetesUpgradeError(node.name, component, "reading the machine config", reason, fix)
        wanted = self._wanted(component, current)
        if current == wanted:
            self.skipped.append(step)
            self._say(node.name, component, f"already on target ({wanted})")
            return False
        self._say(node.name, component, f"{image_version(current) or current} -> {image_version(wanted)}")
        pinned = with_component_images(documents, {component: wanted})
        fix = "read the node's answer; the node still runs its previous config"
        with self._phase(node.name, component, "applying the config (no reboot)", fix):
            client.timeout = max(1.0, min(30.0, self.deadline.remaining()))
            client.apply_configuration(dump_documents(pinned), mode="no-reboot")
        self.rolled.append(step)
        return True

    def _wanted(self, component: str, current: str) -> str:
        tag = image_version(current)
        suffix = next((s for s in _KUBELET_SUFFIXES if component == "kubelet" and tag.endswith(s)), "")
        return retag(current, self.target + suffix)

    # -- what the waits poll -----------------------------------------------------------------------------------

    def _config(self, client: TalosClient, component: str) -> str:
        """The version of the component's config resource once it names the target image."""
        resource = self._attempt(
            client, lambda: client.get_resource("controlplane", CONFIG_TYPES[component], component)
        )
        image = str((yaml.safe_load(resource.spec.yaml_spec) or {}).get("image") or "")
        if image_version(image) != self.target:
            raise NotYet(f"config resource still names {image or 'no image'}")
        return str(resource.metadata.version)

    def _pod_ready(self, node: ClusterNode, component: str, config_version: str) -> bool:
        path = f"/api/v1/namespaces/kube-system/pods?labelSelector={quote(f'k8s-app={component}')}"
        pods = [pod for pod in self._kube(path)["items"] if (pod.get("status") or {}).get("hostIP") == node.address]
        if not pods:
            raise NotYet(f"no {component} pod on {node.address} yet")
        annotations = [(pod["metadata"].get("annotations") or {}).get(CONFIG_VERSION_ANNOTATION) for pod in pods]
        if config_version not in annotations:
            raise NotYet(f"config version mismatch: got {', '.join(map(str, annotations))}, expected {config_version}")
        if not any(condition_true(pod, "Ready") for pod in pods):
            raise NotYet("pod is not ready")
        return True

    def _kubelet_healthy(self, client: TalosClient) -> bool:
        services = self._attempt(client, client.service_list)
        kubelet = next((s for s in services if s.id == "kubelet"), None)
        return kubelet is not None and kubelet.state == "Running" and kubelet.healthy is True

    def _node_on_target(self, node: ClusterNode, client: TalosClient) -> bool:
        if not self._kubelet_healthy(client):
            raise NotYet("kubelet is restarting")
        item = next((n for n in self._kube("/api/v1/nodes")["items"] if _is_node(n, node)), None)
        if item is None:
            raise NotYet(f"node {node.name} ({node.address}) not registered")
        running = (item.get("status") or {}).get("nodeInfo", {}).get("kubeletVersion", "")
        if running != self.target:
            raise NotYet(f"node version mismatch: got {running!r}, expected {self.target!r}")
        if self.cni_installed and not condition_true(item, "Ready"):
            raise NotYet("node is not ready")
        return True

    # -- plumbing ----------------------------------------------------------------------------------------------

    def _client(self, node: ClusterNode) -> TalosClient:
        client = self.clients[node.name]
        client.timeout = max(0.1, min(ATTEMPT_TIMEOUT, self.deadline.remaining()))
        return client

    def _attempt(self, client: TalosClient, call: Callable[[], Any]) -> Any:
        client.timeout = max(0.1, min(ATTEMPT_TIMEOUT, self.deadline.remaining()))
        try:
            return call()
        except TalosApiError as err:
            if err.status.name in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "NOT_FOUND"):
                raise NotYet(err.message) from None
            raise

    def _kube(self, path: str) -> Any:
        try:
            return self.api.get(path)
        except KUBE_API_ERRORS as err:
            raise NotYet(f"Kubernetes API at {self.api.server}: {err}") from None

    def _wait(self, node: str, component: str, what: str, check: Callable[[], Any]) -> Any:
        step = self.deadline.within(self.step_timeout)
        return wait_until(check, step, what=what, backoff=POLL, progress=lambda line: self._say(node, component, line))

    def _say(self, node: str, component: str, what: str) -> None:
        prefix = f"{node}: {component}: " if component else f"{node}: "
        self.progress(f"{prefix}{what} ({format_elapsed(time.monotonic() - self.start)})")

    @contextmanager
    def _phase(self, node: str, component: str, phase: str, fix: str) -> Iterator[None]:
        try:
            yield
        except (TalosApiError, WaitTimeout) as err:
            raise KubernetesUpgradeError(node, component, phase, str(err), fix) from None


def _is_node(item: dict[str, Any], node: ClusterNode) -> bool:
    addresses = {entry.get("address") for entry in (item.get("status") or {}).get("addresses") or []}
    return node.address in addresses or item.get("metadata", {}).get("name") == node.name


def _split_fix(problem: str) -> tuple[str, str]:
    """(reason, fix) of a message ending in `(fix: ...)`."""
    reason, _, fix = problem.rpartition(" (fix: ")
    return reason, fix.removesuffix(")")
