"""Upgrading one node against standalone lab Talos nodes: the API path per version, skipping a node already on
the target, the health gates before and after, and errors that name the node, the phase and the fix."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from common.waiting import Deadline, Progress
from lab.kubernetes.workloads import Workloads
from lab.talos import testing as lab_talos
from lab.talos.node import TalosNode
from lab.talos.testing import NodeFactory
from talos.api.client import TalosClient
from talos.api.errors import UnimplementedError
from talos.api.waiting import bootstrap_when_ready, wait_healthy
from talos.config import ClusterOptions, render_config
from talos.documents import dump_documents
from talos.errors import TalosError
from talos.kube_drain import CORDONED_BY, KubeCluster, cordon
from talos.secrets import SecretsBundle
from talos.talosconfig import TalosContext, issue_admin_certificate
from talos.upgrade import (
    VANILLA_SCHEMATIC,
    InstallerImage,
    RunningImage,
    UpgradeError,
    UpgradeResult,
    running_image,
    upgrade_node,
    uses_lifecycle_api,
)

talos_network = lab_talos.talos_network  # fixtures: standalone lab Talos nodes
talos_nodes = lab_talos.talos_nodes

SCHEMATIC = "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515"
VANILLA = "ghcr.io/siderolabs/installer:v1.13.9"
FACTORY = f"factory.talos.dev/metal-installer/{SCHEMATIC}:v1.13.9"


@dataclass
class LabCluster:
    control_planes: list[TalosNode]
    workers: list[TalosNode]
    admin: TalosContext

    @property
    def endpoints(self) -> list[str]:
        return [node.address for node in self.control_planes]

    def kubeconfig(self) -> str:
        """The admin kubeconfig the first control plane serves."""
        with TalosClient(self.control_planes[0].address, self.admin) as client:
            return client.kubeconfig()

    def workloads(self) -> Workloads:
        """The cluster's Kubernetes objects (cordons, annotations, workload pods) in the lab."""
        node = self.control_planes[0]
        return node.fabric.workloads(node.etcd_cluster_id())


@pytest.fixture(scope="module")
def bundle() -> SecretsBundle:
    return SecretsBundle.generate()


def start_cluster(
    talos_nodes: NodeFactory, bundle: SecretsBundle, version: str, *, control_planes: int = 1, workers: int = 0
) -> LabCluster:
    """A bootstrapped, healthy cluster of lab nodes running Talos `version`, configured as that version renders."""
    addresses = [talos_nodes.address() for _ in range(control_planes + workers)]
    options = ClusterOptions(cluster_name="lab", endpoint=f"https://{addresses[0]}:6443", talos_version=version)
    pair = issue_admin_certificate(bundle)
    admin = TalosContext(ca=bundle.os.crt, crt=pair.crt, key=pair.key)
    nodes = []
    for number, address in enumerate(addresses):
        role = "controlplane" if number < control_planes else "worker"
        config = dump_documents(render_config(options, bundle, role))
        nodes.append(talos_nodes.start(address=address, version=version, config=config))
    cluster = LabCluster(nodes[:control_planes], nodes[control_planes:], admin)
    bootstrap_when_ready(addresses[0], admin, Deadline.after(10))
    wait_healthy(cluster.endpoints, [n.address for n in cluster.workers], admin, Deadline.after(10))
    return cluster


def upgrade(
    cluster: LabCluster,
    node: TalosNode,
    image: str,
    lines: list[str] | None = None,
    *,
    seconds: float = 10,
    health_timeout: float | None = None,
    cni_installed: bool = False,
    kubeconfig: str | None = None,
    drain_timeout: float = 5,
    progress: Progress | None = None,
) -> UpgradeResult:
    return upgrade_node(
        "node-1",
        node.address,
        cluster.admin,
        image,
        control_planes=cluster.endpoints,
        deadline=Deadline.after(seconds),
        health_timeout=health_timeout,
        cni_installed=cni_installed,
        kubeconfig=kubeconfig,
        drain_timeout=drain_timeout,
        progress=progress or (lines if lines is not None else []).append,
    )


def test_node_before_1_13_is_upgraded_through_machine_service(talos_nodes: NodeFactory, bundle: SecretsBundle) -> None:
    cluster = start_cluster(talos_nodes, bundle, "v1.12.11", control_planes=1, workers=1)
    node = cluster.control_planes[0]
    lines: list[str] = []
    with TalosClient(node.address, cluster.admin) as client, pytest.raises(UnimplementedError):
        client.pull_image(VANILLA)  # ImageService is new in 1.13: only the legacy path can work here

    result = upgrade(cluster, node, VANILLA, lines)

    assert (result.outcome, result.from_version, result.to_version) == ("upgraded", "v1.12.11", "v1.13.9")
    assert node.version == "v1.13.9" and node.boots == 2
    assert any("MachineService/Upgrade" in line for line in lines)
    assert all(line.startswith("node-1: ") for line in lines)
    assert lines[-1].startswith("node-1: upgraded from v1.12.11 to v1.13.9 (")


def test_node_on_1_13_pulls_runs_the_installer_and_reboots(talos_nodes: NodeFactory, bundle: SecretsBundle) -> None:
    cluster = start_cluster(talos_nodes, bundle, "v1.13.8")
    node = cluster.control_planes[0]
    lines: list[str] = []

    result = upgrade(cluster, node, FACTORY, lines)

    assert (result.outcome, result.to_version) == ("upgraded", "v1.13.9")
    with TalosClient(node.address, cluster.admin) as client:
        assert running_image(client) == RunningImage("v1.13.9", SCHEMATIC)
    steps = ["pulling the installer", "running the installer", "upgrade: upgrade successful", "rebooting into"]
    found = [next(i for i, line in enumerate(lines) if step in line) for step in steps]
    assert found == sorted(found)


def test_node_already_on_target_is_left_alone(talos_nodes: NodeFactory, bundle: SecretsBundle) -> None:
    cluster = start_cluster(talos_nodes, bundle, "v1.13.9")
    node = cluster.control_planes[0]
    cluster.control_planes.append(talos_nodes.start(version=None))  # a gate would wait for this node in vain

    result = upgrade(cluster, node, VANILLA, seconds=2)

    assert (result.outcome, result.from_version, result.to_version) == ("already on target", "v1.13.9", "v1.13.9")
    assert node.boots == 1


def test_another_schematic_on_the_same_version_is_installed_once(
    talos_nodes: NodeFactory, bundle: SecretsBundle
) -> None:
    cluster = start_cluster(talos_nodes, bundle, "v1.13.9")
    node = cluster.control_planes[0]

    first = upgrade(cluster, node, FACTORY)
    again = upgrade(cluster, node, FACTORY)

    assert (first.outcome, again.outcome) == ("upgraded", "already on target")
    assert node.image is not None and node.image.schematic == SCHEMATIC and node.boots == 2


def test_health_gate_names_the_missing_etcd_member_and_touches_nothing(
    talos_nodes: NodeFactory, bundle: SecretsBundle
) -> None:
    cluster = start_cluster(talos_nodes, bundle, "v1.13.8", control_planes=2)
    first, second = cluster.control_planes
    with TalosClient(second.address, cluster.admin) as client:
        client.etcd_leave_cluster()

    with pytest.raises(UpgradeError) as raised:
        upgrade(cluster, first, VANILLA, health_timeout=0.5)

    assert raised.value.phase == "health gate before the upgrade"
    assert "etcd has 1 member(s), expected 2" in str(raised.value) and "(fix: " in str(raised.value)
    assert (first.version, first.boots) == ("v1.13.8", 1)


def test_unready_node_without_a_cni_passes_the_gate_only_when_no_cni_is_installed(
    talos_nodes: NodeFactory, bundle: SecretsBundle
) -> None:
    cluster = start_cluster(talos_nodes, bundle, "v1.13.8", workers=1)
    for node in [*cluster.control_planes, *cluster.workers]:
        node.without_cni = True
    node = cluster.workers[0]

    with pytest.raises(UpgradeError, match=r'nodeReady: node "talos-\w+" is not ready'):
        upgrade(cluster, node, VANILLA, health_timeout=0.5, cni_installed=True)
    result = upgrade(cluster, node, VANILLA)

    assert result.outcome == "upgraded" and node.version == "v1.13.9"


def test_unpullable_installer_is_named_and_the_node_keeps_running(
    talos_nodes: NodeFactory, bundle: SecretsBundle
) -> None:
    cluster = start_cluster(talos_nodes, bundle, "v1.13.8")
    node = cluster.control_planes[0]
    image = "registry.example.com/siderolabs/installer:v1.13.9"

    with pytest.raises(UpgradeError) as raised:
        upgrade(cluster, node, image)

    assert raised.value.phase == "pulling the installer image"
    assert image in raised.value.reason and "not found" in raised.value.reason
    assert (node.version, node.boots) == ("v1.13.8", 1)


def test_node_that_does_not_come_back_is_named_at_the_deadline(talos_nodes: NodeFactory, bundle: SecretsBundle) -> None:
    cluster = start_cluster(talos_nodes, bundle, "v1.13.8")
    node = cluster.control_planes[0]
    node.slow_next_boot(60)
    lines: list[str] = []

    with pytest.raises(UpgradeError) as raised:
        upgrade(cluster, node, VANILLA, lines, seconds=1.5)

    assert raised.value.phase == "coming back"
    assert "gave up waiting for the node on v1.13.9" in raised.value.reason and "not answering" in raised.value.reason
    assert any(line.startswith("node-1: down (rebooting)") for line in lines)


# --- with a kubeconfig: cordon and drain before the reboot, uncordon after ---------------------------------------


@dataclass
class Observed:
    """One progress line with what the lab showed at that moment: the node cordoned? how many boots?"""

    line: str
    cordoned: bool
    boots: int


def observing(cluster: LabCluster, node: TalosNode, seen: list[Observed]) -> Progress:
    pods = cluster.workloads()
    return lambda line: seen.append(Observed(line, pods.cordoned(node.hostname), node.boots))


def at(seen: list[Observed], text: str) -> Observed:
    return next(entry for entry in seen if text in entry.line)


def with_worker_pod(
    talos_nodes: NodeFactory, bundle: SecretsBundle, version: str = "v1.13.8", *, owner_kind: str = "ReplicaSet"
) -> tuple[LabCluster, TalosNode, Workloads]:
    """A cluster with one worker, on which runs the pod `web-1` (owned by a `owner_kind`)."""
    cluster = start_cluster(talos_nodes, bundle, version, workers=1)
    worker = cluster.workers[0]
    pods = cluster.workloads()
    pods.add_pod("web-1", worker.hostname, owner_kind=owner_kind)
    return cluster, worker, pods


@pytest.mark.parametrize(
    ("version", "reboot_line"),
    [("v1.13.8", "rebooting into the new version"), ("v1.12.11", "installing, then rebooting (MachineService")],
)
def test_upgrade_with_a_kubeconfig_drains_before_the_reboot_and_uncordons_after(
    talos_nodes: NodeFactory, bundle: SecretsBundle, version: str, reboot_line: str
) -> None:
    cluster, worker, pods = with_worker_pod(talos_nodes, bundle, version)
    pods.add_pod("agent-x", worker.hostname, owner_kind="DaemonSet")
    seen: list[Observed] = []

    result = upgrade(
        cluster, worker, VANILLA, kubeconfig=cluster.kubeconfig(), progress=observing(cluster, worker, seen)
    )

    assert result.outcome == "upgraded" and worker.boots == 2
    cordoned = at(seen, f"cordoned {worker.hostname}; evicting its pods")
    assert (cordoned.cordoned, cordoned.boots) == (True, 1)
    assert (at(seen, reboot_line).cordoned, at(seen, reboot_line).boots) == (True, 1)
    assert (at(seen, "runs v1.13.9").cordoned, at(seen, "runs v1.13.9").boots) == (True, 2)
    assert (seen[-1].cordoned, seen[-1].boots) == (False, 2) and "upgraded from" in seen[-1].line
    assert any(f"uncordoned {worker.hostname}" in entry.line for entry in seen)
    assert pods.pod_names(worker.hostname) == ["default/agent-x"]  # evicted, DaemonSet pods excepted
    assert pods.annotations(worker.hostname) == {}


def test_rerun_after_an_interrupted_upgrade_uncordons_the_node_it_left_cordoned(
    talos_nodes: NodeFactory, bundle: SecretsBundle
) -> None:
    cluster = start_cluster(talos_nodes, bundle, "v1.13.8")
    node = cluster.control_planes[0]  # kube-apiserver runs on the node upgraded
    pods = cluster.workloads()
    kubeconfig = cluster.kubeconfig()
    node.slow_next_boot(1.5)

    with pytest.raises(UpgradeError, match="coming back"):
        upgrade(cluster, node, VANILLA, seconds=1.0, kubeconfig=kubeconfig)
    left = (pods.cordoned(node.hostname), pods.annotations(node.hostname))
    node.wait_for(lambda n: n.ready())
    lines: list[str] = []
    again = upgrade(cluster, node, VANILLA, lines, kubeconfig=kubeconfig)

    assert left == (True, {CORDONED_BY: "upgrade"})
    assert again.outcome == "already on target" and node.boots == 2
    assert not pods.cordoned(node.hostname) and pods.annotations(node.hostname) == {}
    assert any(f"uncordoned {node.hostname}" in line for line in lines)


def test_node_someone_else_cordoned_is_drained_and_stays_cordoned(
    talos_nodes: NodeFactory, bundle: SecretsBundle
) -> None:
    cluster, worker, pods = with_worker_pod(talos_nodes, bundle)
    kubeconfig = cluster.kubeconfig()
    cordon(KubeCluster.from_kubeconfig(kubeconfig), worker.hostname)  # `kubectl cordon` by an operator
    lines: list[str] = []

    first = upgrade(cluster, worker, VANILLA, lines, kubeconfig=kubeconfig)
    again = upgrade(cluster, worker, VANILLA, kubeconfig=kubeconfig)

    assert (first.outcome, again.outcome) == ("upgraded", "already on target")
    assert pods.cordoned(worker.hostname) and pods.annotations(worker.hostname) == {}
    assert pods.pod_names(worker.hostname) == []
    assert any("cordoned by someone else before: it stays cordoned" in line for line in lines)
    assert not any("uncordoned" in line for line in lines)


def test_without_a_kubeconfig_the_node_is_not_drained(talos_nodes: NodeFactory, bundle: SecretsBundle) -> None:
    cluster, worker, pods = with_worker_pod(talos_nodes, bundle)
    seen: list[Observed] = []

    result = upgrade(cluster, worker, VANILLA, progress=observing(cluster, worker, seen))

    assert result.outcome == "upgraded"
    assert not any(entry.cordoned for entry in seen) and pods.pod_names(worker.hostname) == ["default/web-1"]
    assert at(seen, "no kubeconfig: the Kubernetes node is not drained").boots == 1


def test_drain_blocked_by_a_disruption_budget_stops_before_the_reboot(
    talos_nodes: NodeFactory, bundle: SecretsBundle
) -> None:
    cluster, worker, pods = with_worker_pod(talos_nodes, bundle, owner_kind="StatefulSet")
    pods.block_eviction("web-1", "web-pdb")
    kubeconfig = cluster.kubeconfig()

    with pytest.raises(UpgradeError) as raised:
        upgrade(cluster, worker, VANILLA, kubeconfig=kubeconfig, drain_timeout=0.5)
    stopped = (worker.version, worker.boots, pods.cordoned(worker.hostname))
    pods.allow_eviction("web-1")
    result = upgrade(cluster, worker, VANILLA, kubeconfig=kubeconfig)

    assert raised.value.phase == "draining" and "web-pdb" in raised.value.reason
    assert "timeouts.drain" in str(raised.value) and "policy.drain" not in str(raised.value)
    assert stopped == ("v1.13.8", 1, True)
    assert result.outcome == "upgraded" and not pods.cordoned(worker.hostname)


def test_installer_image_tells_version_and_schematic() -> None:
    assert InstallerImage.parse(VANILLA) == InstallerImage(VANILLA, "v1.13.9", VANILLA_SCHEMATIC)
    assert InstallerImage.parse(FACTORY).schematic == SCHEMATIC
    assert InstallerImage.parse("registry.example.com:5000/installer:1.13.9").version == "v1.13.9"
    assert InstallerImage.parse("registry.example.com:5000/installer:1.13.9").schematic is None
    for bad in ("ghcr.io/siderolabs/installer", "ghcr.io/siderolabs/installer:latest", "registry:5000/installer"):
        with pytest.raises(TalosError, match="has no Talos version as its tag"):
            InstallerImage.parse(bad)


def test_lifecycle_api_from_1_13_on_as_talosctl_decides() -> None:
    versions = ["v1.12.11", "v1.13.0-alpha.2", "v1.13.0-alpha.3", "v1.13.0", "v1.13.9", "v1.14.0"]
    assert [uses_lifecycle_api(v) for v in versions] == [False, False, True, True, True, True]


def test_running_image_matches_by_version_and_known_schematics() -> None:
    target = InstallerImage.parse(FACTORY)
    assert RunningImage("v1.13.9", SCHEMATIC).matches(target)
    assert RunningImage("v1.13.9", None).matches(target)  # the node does not list its extensions
    assert not RunningImage("v1.13.9", VANILLA_SCHEMATIC).matches(target)
    assert not RunningImage("v1.13.8", SCHEMATIC).matches(target)
    assert RunningImage("v1.13.9", SCHEMATIC).matches(InstallerImage.parse("example.com/installer:v1.13.9"))
