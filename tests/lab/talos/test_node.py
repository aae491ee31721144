"""The lab Talos node's own behaviour: boots, persistence, etcd membership, faults."""

from __future__ import annotations

from common.waiting import Deadline
from lab.talos.node import TalosNode
from lab.talos.stages import EtcdState, Stage
from lab.talos.storage import BlockDevice
from lab.talos.testing import ClusterMaterial, NodeFactory, port_open
from talos.api.client import TalosClient
from talos.api.waiting import bootstrap_when_ready, wait_for_configured, wait_for_maintenance
from talos.compare import configs_equal


def test_disk_without_talos_never_answers(talos_nodes: NodeFactory) -> None:
    node = talos_nodes.start(version=None)
    node.wait_for(lambda n: n.stage is Stage.OFF and n.boots == 0)
    assert not port_open(node.address, node.port)


def test_each_boot_in_maintenance_has_a_fresh_certificate(talos_nodes: NodeFactory) -> None:
    node = talos_nodes.start()
    first = node.maintenance_fingerprint
    node.power_off()
    node.power_on()
    node.wait_for(lambda n: n.stage is Stage.MAINTENANCE)
    assert node.maintenance_fingerprint not in (None, first)


def test_config_survives_a_power_cycle(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> None:
    node = talos_nodes.start()
    with TalosClient(node.address) as client:
        client.apply_configuration(cluster.controlplane)
    wait_for_configured(node.address, cluster.admin, Deadline.after(10))
    node.power_off()
    node.power_on()
    assert wait_for_configured(node.address, cluster.admin, Deadline.after(10)).configured
    assert configs_equal(node.storage.read_state() or b"", cluster.controlplane)


def test_staged_config_takes_effect_at_the_next_reboot(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> None:
    node = talos_nodes.start(config=cluster.controlplane)
    change = cluster.controlplane.replace("diskQuotaSupport: true", "diskQuotaSupport: false")
    with TalosClient(node.address, cluster.admin) as client:
        client.apply_configuration(change, mode="staged")
        assert node.config is not None and not configs_equal(node.config.raw, change)
        client.reboot()
    node.wait_for(lambda n: n.boots == 2 and n.config is not None)
    assert configs_equal(node.config.raw, change)  # type: ignore[union-attr]


def test_worker_apid_waits_for_trustd_on_a_control_plane(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> None:
    worker = talos_nodes.start(config=cluster.worker, wait=False)
    worker.wait_for(lambda n: n.stage is Stage.BOOTING and n.boots == 1)
    assert not worker.listener.serving
    talos_nodes.start(config=cluster.controlplane)
    assert wait_for_configured(worker.address, cluster.admin, Deadline.after(10)).configured


def test_control_plane_joins_etcd_after_another_was_bootstrapped(
    talos_nodes: NodeFactory, cluster: ClusterMaterial
) -> None:
    first = talos_nodes.start(config=cluster.controlplane)
    second = talos_nodes.start(config=cluster.controlplane)
    second.wait_for(lambda n: n.etcd_state is EtcdState.PREPARING)
    bootstrap_when_ready(first.address, cluster.admin, Deadline.after(10))
    second.wait_for(lambda n: n.etcd_state is EtcdState.HEALTHY)
    assert second.storage.etcd_data()


def two_control_planes_in_etcd(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> tuple[TalosNode, TalosNode]:
    """Two control planes, the first bootstrapped, the second joined."""
    first = talos_nodes.start(config=cluster.controlplane)
    second = talos_nodes.start(config=cluster.controlplane)
    bootstrap_when_ready(first.address, cluster.admin, Deadline.after(10))
    second.wait_for(lambda n: n.etcd_state is EtcdState.HEALTHY)
    return first, second


def test_graceful_reset_leaves_etcd(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> None:
    first, second = two_control_planes_in_etcd(talos_nodes, cluster)
    with TalosClient(second.address, cluster.admin) as client:
        client.reset(wipe_labels=["STATE", "EPHEMERAL"])
    wait_for_maintenance(second.address, Deadline.after(10))
    with TalosClient(first.address, cluster.admin) as client:
        assert [m.hostname for m in client.etcd_members()] == [first.hostname]


def test_etcd_leave_cluster_and_remove_member(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> None:
    first, second = two_control_planes_in_etcd(talos_nodes, cluster)
    with TalosClient(second.address, cluster.admin) as client:
        client.etcd_leave_cluster()
    assert second.etcd_state is EtcdState.NONE and not second.storage.etcd_data()
    with TalosClient(first.address, cluster.admin) as client:
        assert [member.hostname for member in client.etcd_members()] == [first.hostname]
    # removing members by ID, and etcd's refusals: tests/lab/talos/test_etcd_membership.py


def test_selector_picks_the_install_disk(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> None:
    disks = (
        BlockDevice("sda", 480 * 10**9, model="SAMSUNG MZ7LH480", transport="sata"),
        BlockDevice("nvme0n1", 3840 * 10**9, model="SAMSUNG MZQL23T8", transport="nvme"),
    )
    node = talos_nodes.start(disks=disks)
    selector = "disk: /dev/sda"
    config = cluster.controlplane.replace(selector, "diskSelector:\n            model: SAMSUNG MZQL*")
    with TalosClient(node.address) as client:
        assert client.apply_configuration(config).mode == "no-reboot"
    wait_for_configured(node.address, cluster.admin, Deadline.after(10))
