"""Upgrade one Talos node to an installer image as `talosctl upgrade` does, gated on the cluster's health.

`upgrade_node` runs these phases, each reported as `<node>: <what> (<elapsed>)`:
1. Read what the node runs: its version and, from its extension list, the Image Factory schematic of its image.
   A node already on the target is left alone ("already on target"): a re-run after a failure resumes and never
   upgrades a node twice.
2. Health gate: every control plane ready with an etcd leader and one member per control plane, and this node
   ready. Without a CNI, Talos keeps the `nodeReady` condition unmet for good; that alone is tolerated.
3. Upgrade through the API `talosctl upgrade` picks for the node's version (cmd/talosctl/cmd/talos/upgrade.go,
   v1.13): on nodes newer than v1.13.0-alpha.2, ImageService/Pull of the installer into the system containerd,
   LifecycleService/Upgrade (runs the installer, streams its output), then MachineService/Reboot; on older nodes
   MachineService/Upgrade, which installs and reboots by itself.
   With a kubeconfig, the Kubernetes node is cordoned and drained right before the reboot, as `talosctl upgrade`
   does by default (`--drain`): after the installer ran, or before MachineService/Upgrade, which reboots by itself
   (talosctl does not drain on that legacy path). The cordon is marked as the upgrade's (talos.kube_drain); a node
   someone else cordoned is drained but stays cordoned. Without a kubeconfig the node is not drained.
4. Wait until the node answers with mTLS again, on the target.
5. Health gate again, so the next node starts from a healthy cluster; then undo the upgrade's cordon.

A node already on the target whose cordon an interrupted run left is uncordoned, so a re-run converges.

A node's image is read from its `schematic` virtual extension (ExtensionStatuses), which Image Factory images
carry; a node without it runs a vanilla image. A node that does not list its extensions is judged by version.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, TypeVar

import yaml

from common.waiting import Deadline, NotYet, Progress, WaitTimeout, format_elapsed, no_progress, wait_until
from talos.api.client import TalosClient
from talos.api.errors import (
    CallTimeoutError,
    FailedPreconditionError,
    NodeInMaintenanceError,
    NodeUnreachableError,
    NotFoundError,
    PermissionDeniedError,
    TalosApiError,
    UnimplementedError,
)
from talos.api.transport import split_endpoint
from talos.api.waiting import ATTEMPT_TIMEOUT, NOT_READY_WITHOUT_CNI, POLL, wait_for_configured, wait_healthy
from talos.errors import TalosError, UnsupportedVersionError
from talos.kube_drain import KubeCluster, KubeError, KubeUnreachableError, cordon_for, drain, find_node, uncordon_for
from talos.talosconfig import TalosContext
from talos.versions import parse_version

VANILLA_SCHEMATIC = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"
"""The Image Factory schematic without customizations: what the vanilla ghcr.io installer installs."""
SCHEMATIC_EXTENSION = "schematic"
"""The virtual extension Image Factory adds to its images; its version is the schematic ID."""
EXTENSION_STATUSES = ("runtime", "ExtensionStatuses.runtime.talos.dev")
VANILLA_INSTALLER = "ghcr.io/siderolabs/installer"
_FACTORY_INSTALLER = re.compile(
    r"^factory\.talos\.dev/(?:metal-)?installer(?:-secureboot)?/(?P<schematic>[0-9a-f]{64})$"
)
_EARLY_1_13 = re.compile(r"^v?1\.13\.0-alpha\.(?P<number>\d+)")
_DOWN = (NodeUnreachableError, CallTimeoutError, NodeInMaintenanceError, FailedPreconditionError)
"""What a node answers (or fails to) while it reboots: not yet back."""

T = TypeVar("T")
Outcome = Literal["upgraded", "already on target"]
DRAIN_TIMEOUT = 300.0
"""Seconds the drain before the reboot may take (evictions a disruption budget holds back are retried)."""
CORDON_OPERATION = "upgrade"
"""The value of the cordon marker (talos.kube_drain.CORDONED_BY) of the upgrade's own cordons."""


class UpgradeError(TalosError):
    """A node could not be upgraded; names the node, the phase, what went wrong and the fix."""

    def __init__(self, node: str, phase: str, reason: str, fix: str) -> None:
        super().__init__(f"{node}: {phase}: {reason} (fix: {fix})")
        self.node, self.phase, self.reason, self.fix = node, phase, reason, fix


@dataclass(frozen=True)
class InstallerImage:
    """An installer image reference and what it installs: the version (its tag) and, if known, the schematic."""

    reference: str
    version: str
    schematic: str | None
    """The Image Factory schematic; VANILLA_SCHEMATIC for ghcr.io's installer; None for other registries."""

    @classmethod
    def parse(cls, reference: str) -> InstallerImage:
        """Read the version from the tag (`...:v1.13.9`); TalosError naming the reference otherwise."""
        text = reference.strip()
        repository, colon, tag = text.rpartition(":")
        try:
            if not colon or "/" in tag:
                raise UnsupportedVersionError(tag)
            parse_version(tag)
        except UnsupportedVersionError:
            raise TalosError(
                f"installer image {reference!r} has no Talos version as its tag "
                "(fix: pin the release it installs, e.g. ghcr.io/siderolabs/installer:v1.13.9)"
            ) from None
        factory = _FACTORY_INSTALLER.match(repository)
        schematic = VANILLA_SCHEMATIC if repository == VANILLA_INSTALLER else factory and factory["schematic"]
        return cls(text, "v" + tag.removeprefix("v"), schematic)


@dataclass(frozen=True)
class RunningImage:
    """What a node runs: its Talos version and, where it lists its extensions, its image's schematic."""

    version: str
    schematic: str | None
    """None when the node does not list its extensions: only the version can be compared."""

    def matches(self, target: InstallerImage) -> bool:
        if self.version != target.version:
            return False
        return self.schematic is None or target.schematic is None or self.schematic == target.schematic

    def describe(self) -> str:
        return self.version if self.schematic is None else f"{self.version} (schematic {self.schematic[:12]}…)"


@dataclass(frozen=True)
class UpgradeResult:
    """What upgrade_node did to the node, and how long it took."""

    outcome: Outcome
    from_version: str
    to_version: str
    seconds: float


def running_image(client: TalosClient) -> RunningImage:
    """The node's version and image schematic, read with an authenticated client."""
    version = client.version().tag
    try:
        extensions = client.list_resources(*EXTENSION_STATUSES)
    except (PermissionDeniedError, UnimplementedError, NotFoundError):
        return RunningImage(version, None)
    for resource in extensions:
        metadata = (yaml.safe_load(resource.spec.yaml_spec) or {}).get("metadata") or {}
        if metadata.get("name") == SCHEMATIC_EXTENSION:
            return RunningImage(version, str(metadata.get("version") or ""))
    return RunningImage(version, VANILLA_SCHEMATIC)


def uses_lifecycle_api(version: str) -> bool:
    """Whether talosctl upgrades a node of this version with ImageService and LifecycleService (> v1.13.0-alpha.2)."""
    numbers = parse_version(version)
    early = _EARLY_1_13.match(version.strip())
    return numbers >= (1, 13, 0) and not (early and int(early["number"]) <= 2)


def upgrade_node(
    node: str,
    endpoint: str,
    credentials: TalosContext,
    image: str,
    *,
    control_planes: Sequence[str],
    deadline: Deadline,
    health_timeout: float | None = None,
    cni_installed: bool = False,
    kubeconfig: str | None = None,
    drain_timeout: float = DRAIN_TIMEOUT,
    progress: Progress = no_progress,
) -> UpgradeResult:
    """Make the node at `endpoint` (named `node` in progress lines and errors) run `image`; see the module docstring.

    `control_planes` are the cluster's control-plane endpoints for the health gates; each gate waits at most
    `health_timeout` seconds (default: until `deadline`). With an admin `kubeconfig` the Kubernetes node is drained
    (for at most `drain_timeout` seconds) before the reboot. Raises UpgradeError naming the phase and the fix.
    """
    target = InstallerImage.parse(image)
    start = time.monotonic()
    report = _reporter(node, endpoint, progress, start)

    def relay(line: str) -> None:  # lines of talos.api.waiting, which carry their own elapsed time
        progress(f"{node}: {line.removeprefix(f'{endpoint}: ')}")

    tolerate = () if cni_installed else (NOT_READY_WITHOUT_CNI,)
    workers = () if _is_control_plane(endpoint, control_planes) else (endpoint,)

    def bounded() -> Deadline:  # a health gate's wait, or kube-apiserver's
        return deadline.within(health_timeout) if health_timeout else deadline

    def gate(when: str, fix: str) -> None:
        with _phase(node, f"health gate {when}", fix):
            wait_healthy(
                control_planes,
                workers,
                credentials,
                bounded(),
                tolerate=tolerate,
                progress=lambda line: relay(f"health {when}: {line}"),
            )

    with _phase(node, "reading the running version", "check the node's address and that it runs Talos"):
        wait_for_configured(endpoint, credentials, deadline, progress=relay)
        with TalosClient(endpoint, credentials) as client:
            before = running_image(client)
    kube = _KubernetesNode.find(node, endpoint, kubeconfig, control_planes, bounded(), report) if kubeconfig else None
    if before.matches(target):
        report(f"already runs {before.describe()}: nothing to do")
        if kube is not None:
            kube.uncordon(bounded())
        return UpgradeResult("already on target", before.version, before.version, time.monotonic() - start)
    gate("before the upgrade", "bring the cluster back to health (talosctl health names the rest); then run again")
    report(f"upgrading {before.describe()} to {target.reference}")

    def before_reboot() -> None:
        if kube is None:
            report("no kubeconfig: the Kubernetes node is not drained")
        else:
            kube.drain(deadline.within(drain_timeout))

    with TalosClient(endpoint, credentials) as client:
        client.timeout = max(1.0, deadline.remaining())
        _install(client, node, target, before, before_reboot, report)
        _wait_back(client, node, target, deadline, report)
    report(f"runs {target.version}")
    gate("after the upgrade", "look at the node named; run again once it is healthy (this node is then skipped)")
    if kube is not None:
        kube.uncordon(bounded())
    seconds = time.monotonic() - start
    report(f"upgraded from {before.version} to {target.version}")
    return UpgradeResult("upgraded", before.version, target.version, seconds)


def _install(
    client: TalosClient,
    node: str,
    target: InstallerImage,
    before: RunningImage,
    before_reboot: Callable[[], None],
    report: Progress,
) -> None:
    """Install the target and reboot into it, through the API the node's version serves; `before_reboot` runs
    right before the node goes down (MachineService/Upgrade reboots by itself: before that call)."""
    pull_fix = "check that the image exists (version, schematic) and that the node reaches its registry"
    if not uses_lifecycle_api(before.version):
        before_reboot()
        report("installing, then rebooting (MachineService/Upgrade)")
        with _phase(node, "MachineService/Upgrade", f"{pull_fix}, or act on the node's reason"):
            client.upgrade(target.reference)
        return
    report("pulling the installer image (ImageService/Pull)")
    with _phase(node, "pulling the installer image", pull_fix):
        client.pull_image(target.reference, progress=report)
    report("running the installer (LifecycleService/Upgrade)")
    with _phase(node, "running the installer", "read the installer's output above; the node still runs as before"):
        client.lifecycle_upgrade(target.reference, progress=report)
    before_reboot()
    report("rebooting into the new version")
    with _phase(node, "reboot", "reboot the node (talosctl reboot); it boots the installed version"):
        client.reboot()


def _wait_back(client: TalosClient, node: str, target: InstallerImage, deadline: Deadline, report: Progress) -> None:
    """Until the node answers with mTLS on the target (noting when it went down)."""
    down: list[bool] = []

    def back() -> RunningImage:
        client.timeout = max(0.1, min(ATTEMPT_TIMEOUT, deadline.remaining()))
        try:
            running = running_image(client)
        except _DOWN as err:
            if not down:
                down.append(True)
                report("down (rebooting)")
            raise NotYet(f"not answering: {err.message}") from None
        if not running.matches(target):
            raise NotYet(f"still runs {running.describe()}")
        return running

    fix = (
        "check the node's console: a failed boot rolls back to the previous version; then run again "
        "(a node already on the target is skipped)"
    )
    with _phase(node, "coming back", fix):
        wait_until(back, deadline, what=f"the node on {target.version}", backoff=POLL, progress=report)


class _KubernetesNode:
    """The upgraded node's Kubernetes Node: cordoned (marked as the upgrade's) and drained before the reboot,
    uncordoned after it; a cordon someone else set is left alone."""

    def __init__(self, node: str, kube: KubeCluster, name: str | None, report: Progress) -> None:
        self.node, self.kube, self.name, self.report = node, kube, name, report

    @classmethod
    def find(
        cls,
        node: str,
        endpoint: str,
        kubeconfig: str,
        control_planes: Sequence[str],
        deadline: Deadline,
        report: Progress,
    ) -> _KubernetesNode:
        """The Node whose address is the endpoint's host (else one named `node`), once kube-apiserver answers."""
        with _phase(node, "finding the Kubernetes node", "check the kubeconfig and that kube-apiserver answers"):
            kube = KubeCluster.from_kubeconfig(kubeconfig, control_planes=control_planes)
            name = _when_answering(lambda: find_node(kube, endpoint, [node]), deadline, report)
        if name is None:
            report("no Kubernetes node with its address or name: nothing to cordon or drain")
        return cls(node, kube, name, report)

    def drain(self, deadline: Deadline) -> None:
        if self.name is None:
            return
        fix = (
            "raise timeouts.drain; the node still runs the previous version, cordoned by this upgrade until a run "
            "succeeds (or `kubectl uncordon` it)"
        )
        with _phase(self.node, "draining", fix):
            name = self.name
            mine = _when_answering(lambda: cordon_for(self.kube, name, CORDON_OPERATION), deadline, self.report)
            if mine is None:
                self.report(f"Kubernetes node {self.name} is gone: not drained")
                return
            owner = "" if mine else " (cordoned by someone else before: it stays cordoned)"
            self.report(f"cordoned {self.name}{owner}; evicting its pods")
            evicted = drain(self.kube, self.name, deadline, fix=fix, progress=self.report)
        self.report(f"drained ({evicted} pod(s) evicted)")

    def uncordon(self, deadline: Deadline) -> None:
        """Undo the upgrade's cordon, waiting for kube-apiserver to answer (it may be on this very node)."""
        if self.name is None:
            return
        name = self.name
        fix = f"check that kube-apiserver answers; then run again (or `kubectl uncordon {name}`)"
        with _phase(self.node, "uncordoning", fix):
            if _when_answering(lambda: uncordon_for(self.kube, name, CORDON_OPERATION), deadline, self.report):
                self.report(f"uncordoned {name}")


def _when_answering(call: Callable[[], T], deadline: Deadline, report: Progress) -> T:
    """`call`, repeated while no Kubernetes API server answers (kube-apiserver starting, or on a rebooted node)."""

    def attempt() -> tuple[T]:  # in a tuple: `call` may return None, which wait_until reads as "not yet"
        try:
            return (call(),)
        except KubeUnreachableError as err:
            raise NotYet(str(err)) from None

    return wait_until(attempt, deadline, what="kube-apiserver", backoff=POLL, progress=report)[0]


@contextmanager
def _phase(node: str, phase: str, fix: str) -> Iterator[None]:
    """Turn the phase's API (Talos, Kubernetes) errors and timeouts into an UpgradeError naming node, phase and fix."""
    try:
        yield
    except (TalosApiError, KubeError, WaitTimeout) as err:
        raise UpgradeError(node, phase, str(err), fix) from None


def _reporter(node: str, endpoint: str, progress: Progress, start: float) -> Progress:
    """Progress lines `<node>: <what> (<elapsed since start>)`; lines the client prefixes with the endpoint too."""

    def report(line: str) -> None:
        text = line.removeprefix(f"{endpoint}: ")
        progress(f"{node}: {text} ({format_elapsed(time.monotonic() - start)})")

    return report


def _is_control_plane(endpoint: str, control_planes: Collection[str]) -> bool:
    return split_endpoint(endpoint) in {split_endpoint(address) for address in control_planes}
