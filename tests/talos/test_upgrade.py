"""Upgrading one node against standalone lab Talos nodes: the API path per version, skipping a node already on
the target, the health gates before and after, and errors that name the node, the phase and the fix."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from common.waiting import Deadline
from lab.talos import testing as lab_talos
from lab.talos.node import TalosNode
from lab.talos.testing import NodeFactory
from talos.api.client import TalosClient
from talos.api.errors import UnimplementedError
from talos.api.waiting import bootstrap_when_ready, wait_healthy
from talos.config import ClusterOptions, render_config
from talos.documents import dump_documents
from talos.errors import TalosError
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
        progress=(lines if lines is not None else []).append,
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
