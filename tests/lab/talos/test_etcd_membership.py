"""etcd membership changes on lab nodes refused as etcd's strict reconfiguration check refuses them, worded as Talos
v1.13 reports them: the last member cannot leave (and a graceful reset of it fails at its `leave` phase), a running
member cannot go while another is down, a member that is down may always be removed."""

from __future__ import annotations

import pytest

from common.waiting import Deadline
from lab.talos.node import TalosNode
from lab.talos.stages import EtcdState, Stage
from lab.talos.testing import ClusterMaterial, NodeFactory
from talos.api.client import TalosClient
from talos.api.errors import NotFoundError, TalosApiError
from talos.api.waiting import bootstrap_when_ready


def control_planes(talos_nodes: NodeFactory, cluster: ClusterMaterial, count: int) -> list[TalosNode]:
    """`count` control planes in one etcd cluster, the first bootstrapped."""
    nodes = [talos_nodes.start(config=cluster.controlplane) for _ in range(count)]
    bootstrap_when_ready(nodes[0].address, cluster.admin, Deadline.after(10))
    for node in nodes:
        node.wait_for(lambda n: n.etcd_state is EtcdState.HEALTHY)
    return nodes


def member_names(node: TalosNode, cluster: ClusterMaterial) -> list[str]:
    with TalosClient(node.address, cluster.admin) as client:
        return sorted(member.hostname for member in client.etcd_members())


def test_last_member_cannot_leave(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> None:
    [node] = control_planes(talos_nodes, cluster, 1)

    with TalosClient(node.address, cluster.admin) as client, pytest.raises(TalosApiError) as raised:
        client.etcd_leave_cluster()

    assert raised.value.status.name == "UNKNOWN"
    assert raised.value.message.startswith("failed to leave cluster: failed to remove member ")
    assert raised.value.message.endswith("etcdserver: re-configuration failed due to not enough started members")
    assert node.etcd_state is EtcdState.HEALTHY and member_names(node, cluster) == [node.hostname]


def test_graceful_reset_of_the_last_member_fails_and_the_node_keeps_running(
    talos_nodes: NodeFactory, cluster: ClusterMaterial
) -> None:
    [node] = control_planes(talos_nodes, cluster, 1)

    with TalosClient(node.address, cluster.admin) as client:
        client.reset(graceful=True, wipe_labels=["STATE", "EPHEMERAL"])  # accepted: the sequence runs later

    with pytest.raises(TimeoutError):
        node.wait_for(lambda n: n.stage is not Stage.RUNNING, timeout=0.5)
    assert node.ready() and node.storage.read_state() is not None and member_names(node, cluster) == [node.hostname]


def test_running_member_cannot_be_removed_while_another_is_down(
    talos_nodes: NodeFactory, cluster: ClusterMaterial
) -> None:
    first, second, third = control_planes(talos_nodes, cluster, 3)
    third.power_off()
    with TalosClient(second.address, cluster.admin) as client:
        second_id = client.etcd_status().member_id

    with TalosClient(first.address, cluster.admin) as client:
        with pytest.raises(
            TalosApiError, match=r"failed to remove member: failed to remove member \d+: etcdserver: unhealthy cluster"
        ):
            client.etcd_remove_member(second_id)
        with pytest.raises(
            TalosApiError, match=r"failed to leave cluster: failed to remove member \d+: etcdserver: unhealthy cluster"
        ):
            client.etcd_leave_cluster()

    assert member_names(first, cluster) == sorted(node.hostname for node in (first, second, third))


def test_member_that_is_down_may_be_removed_by_id(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> None:
    first, second, third = control_planes(talos_nodes, cluster, 3)
    with TalosClient(third.address, cluster.admin) as client:
        third_id = client.etcd_status().member_id
    third.power_off()

    with TalosClient(first.address, cluster.admin) as client:
        client.etcd_remove_member(third_id)
        with pytest.raises(NotFoundError, match=f"failed to remove member {third_id}: etcdserver: member not found"):
            client.etcd_remove_member(third_id)

    assert member_names(first, cluster) == sorted([first.hostname, second.hostname])


def test_upgrade_refused_while_a_member_is_down_unless_forced(
    talos_nodes: NodeFactory, cluster: ClusterMaterial
) -> None:
    first, second, third = control_planes(talos_nodes, cluster, 3)
    third.power_off()
    installer = "ghcr.io/siderolabs/installer:v1.13.10"

    with TalosClient(first.address, cluster.admin) as client:
        with pytest.raises(TalosApiError) as raised:
            client.upgrade(installer)
        assert client.upgrade(installer, force=True) == "Upgrade request received"

    down = first.fabric.etcd(first.etcd_cluster_id()).members[third.hostname]
    assert raised.value.message.startswith(
        f"error validating etcd for upgrade: etcd member {down.id:016x} is not healthy; all members must be healthy"
    )
    assert first.sequences == ["upgrade"] and second.sequences == []
