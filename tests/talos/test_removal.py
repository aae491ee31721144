"""Removing a node from a cluster of standalone lab Talos nodes: etcd leave and reset per policy, the refusals
that protect etcd (last member, quorum), workers, and re-runs that converge after an interruption."""

from __future__ import annotations

import threading

import pytest

from common.waiting import Deadline
from lab.talos import testing as lab_talos
from lab.talos.node import TalosNode
from lab.talos.stages import Stage
from lab.talos.testing import NodeFactory
from talos.api.client import TalosClient
from talos.errors import TalosError
from talos.removal import (
    ClusterNode,
    Membership,
    RemovalError,
    RemovalPolicy,
    RemovalResult,
    RemovalTimeouts,
    confirm_member,
    remove_node,
)
from talos.secrets import SecretsBundle
from tests.talos.test_upgrade import LabCluster, start_cluster

talos_network = lab_talos.talos_network  # fixtures: standalone lab Talos nodes
talos_nodes = lab_talos.talos_nodes

FAST = RemovalTimeouts(total=10, drain=5, gone=0.3)
DEFAULT = RemovalPolicy()
UNRECORDED = Membership()


@pytest.fixture(scope="module")
def bundle() -> SecretsBundle:
    return SecretsBundle.generate()


@pytest.fixture
def three(talos_nodes: NodeFactory, bundle: SecretsBundle) -> LabCluster:
    return start_cluster(talos_nodes, bundle, "v1.13.9", control_planes=3)


def target(cluster: LabCluster, node: TalosNode, name: str = "cp-2") -> ClusterNode:
    role = "controlplane" if node in cluster.control_planes else "worker"
    return ClusterNode(name, node.address, role, tuple(cluster.endpoints))


def remove(
    cluster: LabCluster,
    node: TalosNode,
    policy: RemovalPolicy = DEFAULT,
    lines: list[str] | None = None,
    *,
    name: str = "cp-2",
    membership: Membership = UNRECORDED,
) -> RemovalResult:
    return remove_node(
        target(cluster, node, name),
        cluster.admin,
        policy,
        membership=membership,
        timeouts=FAST,
        progress=(lines if lines is not None else []).append,
    )


def members(cluster: LabCluster, via: TalosNode) -> list[str]:
    with TalosClient(via.address, cluster.admin) as client:
        return sorted(member.hostname for member in client.etcd_members())


def test_control_plane_removed_from_three_leaves_two_members_and_returns_to_maintenance(three: LabCluster) -> None:
    first, second, third = three.control_planes
    lines: list[str] = []

    result = remove(three, second, lines=lines)

    assert result.state == "configured" and result.done == ("left etcd", "reset (config)")
    assert members(three, first) == sorted([first.hostname, third.hostname])
    assert second.stage is Stage.MAINTENANCE and second.image is not None  # Talos stays installed
    assert all(line.startswith("cp-2: ") and line.endswith(")") for line in lines)
    assert any("quorum check passed: 2 of 2" in line for line in lines)


def test_last_control_plane_is_refused_and_left_untouched(talos_nodes: NodeFactory, bundle: SecretsBundle) -> None:
    cluster = start_cluster(talos_nodes, bundle, "v1.13.9", control_planes=1)
    node = cluster.control_planes[0]

    with pytest.raises(RemovalError) as raised:
        remove(cluster, node, name="cp-1")

    assert raised.value.step == "quorum check" and "cp-1: " in str(raised.value)
    assert "last control plane" in raised.value.reason and "add and bootstrap another" in raised.value.fix
    assert node.ready() and members(cluster, node) == [node.hostname]


def test_last_control_plane_with_reset_none_is_only_forgotten(talos_nodes: NodeFactory, bundle: SecretsBundle) -> None:
    cluster = start_cluster(talos_nodes, bundle, "v1.13.9", control_planes=1)
    node = cluster.control_planes[0]

    result = remove(cluster, node, RemovalPolicy(reset="none"), name="cp-1")

    assert result.done == () and node.ready() and members(cluster, node) == [node.hostname]


def test_removal_that_would_break_quorum_is_refused(three: LabCluster) -> None:
    first, second, third = three.control_planes
    third.power_off()

    with pytest.raises(RemovalError) as raised:
        remove(three, second)

    assert raised.value.step == "quorum check"
    assert f"leave 1 of 2 etcd member(s) running, below their quorum of 2 (down: {third.hostname})" in str(raised.value)
    assert second.ready() and len(members(three, first)) == 3


def test_worker_is_reset_and_etcd_is_untouched(talos_nodes: NodeFactory, bundle: SecretsBundle) -> None:
    cluster = start_cluster(talos_nodes, bundle, "v1.13.9", control_planes=1, workers=1)
    worker = cluster.workers[0]

    result = remove(cluster, worker, name="worker-1")

    assert result.done == ("reset (config)",) and worker.stage is Stage.MAINTENANCE
    assert members(cluster, cluster.control_planes[0]) == [cluster.control_planes[0].hostname]


def test_reset_none_leaves_etcd_and_keeps_the_node_running(three: LabCluster) -> None:
    first, second, _third = three.control_planes

    result = remove(three, second, RemovalPolicy(reset="none"))

    assert result.done == ("left etcd",) and second.stage is Stage.RUNNING and second.config is not None
    assert second.hostname not in members(three, first)


def test_system_disk_reset_without_reboot_wipes_the_disk_and_powers_off(three: LabCluster) -> None:
    second = three.control_planes[1]

    result = remove(three, second, RemovalPolicy(reset="system-disk", reboot=False))

    second.wait_for(lambda node: node.stage is Stage.OFF)  # the API stops first, the power a moment later
    assert result.done == ("left etcd", "reset (system-disk)")
    assert second.storage.boot_image() is None


def test_rerun_after_an_interruption_between_leave_and_reset_converges(three: LabCluster) -> None:
    first, second, _third = three.control_planes
    with TalosClient(second.address, three.admin) as client:
        client.etcd_leave_cluster()  # the first run stopped here
    lines: list[str] = []

    again = remove(three, second, lines=lines)
    once_more = remove(three, second)

    assert again.done == ("reset (config)",) and any("not an etcd member" in line for line in lines)
    assert (once_more.state, once_more.done) == ("maintenance", ())
    assert second.hostname not in members(three, first)


def test_unreachable_member_is_removed_by_id_from_another_control_plane(three: LabCluster) -> None:
    first, second, _third = three.control_planes
    with TalosClient(second.address, three.admin) as client:
        recorded = Membership(etcd_member_id=client.etcd_status().member_id)
    second.power_off()
    lines: list[str] = []

    result = remove(three, second, lines=lines, membership=recorded)

    assert (result.state, result.done) == ("unreachable", ("left etcd",))
    assert second.hostname not in members(three, first)
    assert any("not reset" in line for line in lines)


def test_parallel_removals_of_two_control_planes_leave_one_member(three: LabCluster) -> None:
    first, second, third = three.control_planes
    results: dict[str, RemovalResult | Exception] = {}

    def run(node: TalosNode, name: str) -> None:
        try:
            results[name] = remove(three, node, name=name)
        except RemovalError as err:
            results[name] = err

    threads = [threading.Thread(target=run, args=(node, name)) for node, name in ((second, "b"), (third, "c"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(isinstance(result, RemovalResult) for result in results.values()), results
    assert members(three, first) == [first.hostname]


def test_confirm_member_records_the_etcd_member_and_refuses_a_node_in_maintenance(
    three: LabCluster, talos_nodes: NodeFactory
) -> None:
    second = three.control_planes[1]
    with TalosClient(second.address, three.admin) as client:
        member_id = client.etcd_status().member_id
    stranger = talos_nodes.start()

    membership = confirm_member(target(three, second), three.admin, Deadline.after(5))
    with pytest.raises(RemovalError, match="checking membership"):
        confirm_member(ClusterNode("new", stranger.address, "worker", ()), three.admin, Deadline.after(0.5))

    assert membership == Membership(etcd_member_id=member_id, kubernetes_node=None)


def test_policy_from_dict_names_each_bad_field() -> None:
    assert RemovalPolicy.from_dict(None) == RemovalPolicy(drain=True, reset="config", reboot=True)
    assert RemovalPolicy.from_dict({"reset": "none", "drain": None}).to_dict() == {
        "drain": True,
        "reset": "none",
        "reboot": True,
    }
    for bad, message in (
        ({"reset": "all"}, "policy.reset: 'all' is not one of none, config, system-disk"),
        ({"drain": "yes"}, "policy.drain: 'yes' is not true or false"),
        ({"wipe": True}, "policy: unknown key(s) wipe"),
    ):
        with pytest.raises(TalosError, match=message.replace("(", r"\(").replace(")", r"\)")):
            RemovalPolicy.from_dict(bad)


# --- with a kubeconfig: cordon, drain, Node deletion -----------------------------------------------------------


def node_names(cluster: LabCluster, via: TalosNode) -> list[str]:
    return [info.name for info in via.fabric.kubernetes_nodes(via.etcd_cluster_id())]


@pytest.fixture
def with_worker(talos_nodes: NodeFactory, bundle: SecretsBundle) -> LabCluster:
    return start_cluster(talos_nodes, bundle, "v1.13.9", control_planes=3, workers=1)


def test_worker_is_drained_reset_and_its_node_object_deleted(with_worker: LabCluster) -> None:
    worker = with_worker.workers[0]
    pods = with_worker.workloads()
    pods.add_pod("web-1", worker.hostname)
    pods.add_pod("agent-x", worker.hostname, owner_kind="DaemonSet")
    lines: list[str] = []

    result = remove_node(
        target(with_worker, worker, "worker-1"),
        with_worker.admin,
        RemovalPolicy(),
        kubeconfig=with_worker.kubeconfig(),
        timeouts=FAST,
        progress=lines.append,
    )

    assert result.done == ("drained", "reset (config)", "deleted the Kubernetes node")
    assert pods.pod_names(worker.hostname) == ["default/agent-x"]  # DaemonSet pods are not evicted
    assert worker.hostname not in node_names(with_worker, with_worker.control_planes[0])
    assert any("drained (1 pod(s) evicted)" in line for line in lines)


def test_drain_blocked_by_a_disruption_budget_stops_before_anything_is_reset_and_a_rerun_finishes(
    with_worker: LabCluster,
) -> None:
    worker = with_worker.workers[0]
    pods = with_worker.workloads()
    pods.add_pod("db-0", worker.hostname, owner_kind="StatefulSet")
    pods.block_eviction("db-0", "db-pdb")
    short = RemovalTimeouts(total=10, drain=0.5, gone=0.3)
    config = with_worker.kubeconfig()

    with pytest.raises(RemovalError) as raised:
        remove_node(
            target(with_worker, worker, "worker-1"), with_worker.admin, DEFAULT, kubeconfig=config, timeouts=short
        )
    cordoned = pods.cordoned(worker.hostname)
    pods.allow_eviction("db-0")
    result = remove_node(target(with_worker, worker, "worker-1"), with_worker.admin, DEFAULT, kubeconfig=config)

    assert raised.value.step == "draining" and "db-pdb" in raised.value.reason and "policy.drain" in raised.value.reason
    assert cordoned and result.done == ("drained", "reset (config)", "deleted the Kubernetes node")


def test_removing_the_control_plane_behind_the_kubeconfig_uses_another_one_for_kubernetes(
    with_worker: LabCluster,
) -> None:
    first, second, _third = with_worker.control_planes
    config = with_worker.kubeconfig()  # its server is the first control plane's :6443

    membership = confirm_member(
        target(with_worker, first, "cp-1"), with_worker.admin, Deadline.after(5), kubeconfig=config
    )
    result = remove_node(
        target(with_worker, first, "cp-1"), with_worker.admin, DEFAULT, membership=membership, kubeconfig=config
    )

    assert membership.kubernetes_node == first.hostname
    assert result.done == ("drained", "left etcd", "reset (config)", "deleted the Kubernetes node")
    assert first.hostname not in node_names(with_worker, second)
