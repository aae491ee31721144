"""Rolling Kubernetes on standalone lab Talos nodes: upgrade-k8s' order of components and nodes, skipping what is
already on the target, resuming after a failure midway, and errors that name the node, the component and the fix."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from common.waiting import Deadline
from lab.talos import testing as lab_talos
from lab.talos.node import TalosNode
from lab.talos.testing import NodeFactory
from talos.api.client import TalosClient
from talos.api.waiting import bootstrap_when_ready, wait_healthy
from talos.config import ClusterOptions, render_config
from talos.documents import dump_documents, parse_documents
from talos.errors import TalosError
from talos.kubeapi import KubeApi
from talos.kubernetes_images import component_images, pinned_to, with_component_images
from talos.kubernetes_upgrade import (
    ClusterNode,
    KubernetesUpgradeError,
    KubernetesUpgradeResult,
    parse_kubernetes_version,
    path_problem,
    support_problem,
    upgrade_kubernetes,
)
from talos.secrets import SecretsBundle
from talos.talosconfig import TalosContext, issue_admin_certificate

talos_network = lab_talos.talos_network  # fixtures: standalone lab Talos nodes
talos_nodes = lab_talos.talos_nodes

ROLL_ORDER = ["kube-apiserver", "kube-controller-manager", "kube-scheduler"]


@dataclass
class LabCluster:
    nodes: list[TalosNode]
    members: list[ClusterNode]
    admin: TalosContext
    kubeconfig: str

    def history(self) -> list[tuple[str, str, str]]:
        """Every finished restart across the cluster, in time order of the nodes' own records (merged by test)."""
        return [entry for node in self.nodes for entry in node.components.history]


@pytest.fixture(scope="module")
def bundle() -> SecretsBundle:
    return SecretsBundle.generate()


def start_cluster(
    talos_nodes: NodeFactory, bundle: SecretsBundle, *, control_planes: int = 2, workers: int = 1
) -> LabCluster:
    """A bootstrapped lab cluster on Talos v1.13.9 and Kubernetes 1.35.4 (so a minor upgrade is possible)."""
    addresses = [talos_nodes.address() for _ in range(control_planes + workers)]
    options = ClusterOptions(cluster_name="lab", endpoint=f"https://{addresses[0]}:6443", kubernetes_version="1.35.4")
    pair = issue_admin_certificate(bundle)
    admin = TalosContext(ca=bundle.os.crt, crt=pair.crt, key=pair.key)
    nodes, members = [], []
    for number, address in enumerate(addresses):
        role = "controlplane" if number < control_planes else "worker"
        config = dump_documents(render_config(options, bundle, role))
        nodes.append(talos_nodes.start(address=address, version="v1.13.9", config=config))
    bootstrap_when_ready(addresses[0], admin, Deadline.after(10))
    wait_healthy(addresses[:control_planes], addresses[control_planes:], admin, Deadline.after(10))
    for node in nodes:
        node.wait_for(lambda n: n.kubernetes is not None or not n.control_plane)
        members.append(ClusterNode(node.hostname, node.address, node.control_plane))
    with TalosClient(addresses[0], admin) as client:
        kubeconfig = client.kubeconfig()
    return LabCluster(nodes, members, admin, kubeconfig)


def roll(cluster: LabCluster, version: str, lines: list[str] | None = None, *, seconds: float = 20, step: float = 10):
    return upgrade_kubernetes(
        "lab",
        cluster.members,
        cluster.admin,
        cluster.kubeconfig,
        version,
        deadline=Deadline.after(seconds),
        step_timeout=step,
        progress=(lines if lines is not None else []).append,
    )


def running_images(node: TalosNode) -> dict[str, str]:
    return {name: component.running_image for name, component in node.components.running.items()}


def test_minor_upgrade_rolls_components_in_upgrade_k8s_order(talos_nodes: NodeFactory, bundle: SecretsBundle) -> None:
    cluster = start_cluster(talos_nodes, bundle)
    cp1, cp2, worker = cluster.nodes
    lines: list[str] = []

    result = roll(cluster, "1.36.4", lines)

    assert (result.outcome, result.from_version, result.to_version) == ("upgraded", "v1.35.4", "v1.36.4")
    names = [m.name for m in cluster.members]
    expected = [f"{n}/{c}" for c in ROLL_ORDER for n in names[:2]] + [f"{n}/kube-proxy" for n in names[:2]]
    assert list(result.rolled) == expected + [f"{n}/kubelet" for n in names]
    # each node restarted its static pods in order, then its kubelet; the roll went node by node per component
    assert [entry[1] for entry in cp1.components.history] == [*ROLL_ORDER, "kubelet"]
    assert [entry[1] for entry in worker.components.history] == ["kubelet"]
    applied = [line.rsplit(" (", 1)[0] for line in lines if "-> v1.36.4" in line and not line.startswith("lab:")]
    assert applied == [f"{step.replace('/', ': ')}: v1.35.4 -> v1.36.4" for step in result.rolled]
    for node in (cp1, cp2):
        assert set(running_images(node).values()) == {f"registry.k8s.io/{c}:v1.36.4" for c in ROLL_ORDER} | {
            "ghcr.io/siderolabs/kubelet:v1.36.4"
        }
    assert KubeApi.from_kubeconfig(cluster.kubeconfig).get("/version")["gitVersion"] == "v1.36.4"
    kubelets = {
        n["metadata"]["name"]: n["status"]["nodeInfo"]["kubeletVersion"]
        for n in KubeApi.from_kubeconfig(cluster.kubeconfig).get("/api/v1/nodes")["items"]
    }
    assert kubelets == dict.fromkeys(names, "v1.36.4")
    with TalosClient(cp2.address, cluster.admin) as client:
        images = component_images(parse_documents(client.machine_config()))
    assert images["kube-proxy"] == "registry.k8s.io/kube-proxy:v1.36.4"
    assert all(line.split(": ", 1)[0] in {*names, "lab"} for line in lines)


def test_cluster_on_target_is_skipped_without_a_restart(talos_nodes: NodeFactory, bundle: SecretsBundle) -> None:
    cluster = start_cluster(talos_nodes, bundle, control_planes=1, workers=1)
    lines: list[str] = []

    result = roll(cluster, "v1.35.4", lines)

    assert result.outcome == "already on target" and result.rolled == ()
    assert len(result.skipped) == 6  # the control plane's 3 static pods and kube-proxy, both nodes' kubelets
    assert cluster.history() == []
    assert any("already on target (registry.k8s.io/kube-apiserver:v1.35.4)" in line for line in lines)


def test_failure_midway_names_node_and_component_and_a_rerun_resumes(
    talos_nodes: NodeFactory, bundle: SecretsBundle
) -> None:
    cluster = start_cluster(talos_nodes, bundle, control_planes=2, workers=0)
    cp1, cp2 = cluster.nodes
    cp2.components.stuck.add("kube-controller-manager")

    with pytest.raises(KubernetesUpgradeError) as raised:
        roll(cluster, "1.35.5", step=1.0)

    error = raised.value
    assert (error.node, error.component) == (cluster.members[1].name, "kube-controller-manager")
    assert "waiting for the pod" in error.phase and "pod is not ready" in error.reason
    assert "talosctl logs kube-controller-manager" in error.fix
    assert [entry[1] for entry in cp1.components.history] == ["kube-apiserver", "kube-controller-manager"]
    cp2.components.release("kube-controller-manager")  # the component recovers by itself: its restart finishes
    cp2.wait_for(lambda n: n.components.running["kube-controller-manager"].ready)
    before = {node.address: len(node.components.history) for node in cluster.nodes}

    result = roll(cluster, "1.35.5")

    # nothing restarts twice: the components already rolled are skipped, the rest rolls
    assert f"{cluster.members[0].name}/kube-apiserver" in result.skipped
    assert f"{cluster.members[1].name}/kube-controller-manager" in result.skipped
    assert result.rolled[0] == f"{cluster.members[0].name}/kube-scheduler"
    restarted = [entry[1] for node in cluster.nodes for entry in node.components.history[before[node.address] :]]
    assert sorted(restarted) == sorted(["kube-scheduler", "kube-scheduler", "kubelet", "kubelet"])


def test_kubelet_keeps_its_image_suffix(talos_nodes: NodeFactory, bundle: SecretsBundle) -> None:
    cluster = start_cluster(talos_nodes, bundle, control_planes=1, workers=0)
    node = cluster.nodes[0]
    with TalosClient(node.address, cluster.admin) as client:
        documents = parse_documents(client.machine_config())
        kubelet = component_images(documents)["kubelet"] + "-fat"
        client.apply_configuration(
            dump_documents(with_component_images(documents, {"kubelet": kubelet})), mode="no-reboot"
        )
    node.wait_for(lambda n: n.components.running["kubelet"].ready and n.components.history != [])

    roll(cluster, "1.35.5")

    assert node.components.running["kubelet"].running_image == "ghcr.io/siderolabs/kubelet:v1.35.5-fat"
    assert node.components.version("kubelet") == "v1.35.5"  # the Node reports the binary's version


def test_unhealthy_kubelet_stops_the_roll_before_it_is_touched(talos_nodes: NodeFactory, bundle: SecretsBundle) -> None:
    cluster = start_cluster(talos_nodes, bundle, control_planes=1, workers=1)
    worker = cluster.nodes[1]
    worker.components.stuck.add("kubelet")
    with TalosClient(worker.address, cluster.admin) as client:  # a kubelet restart that never finishes
        documents = parse_documents(client.machine_config())
        client.apply_configuration(dump_documents(pinned_to(documents, "1.35.3", ["kubelet"])), mode="no-reboot")
    worker.wait_for(lambda n: not n.components.kubelet_running())

    with pytest.raises(KubernetesUpgradeError) as raised:
        roll(cluster, "1.35.5", seconds=5, step=1.0)

    assert raised.value.node == cluster.members[1].name and raised.value.component == "kubelet"
    assert raised.value.reason == "kubelet is not healthy" and "talosctl service kubelet restart" in raised.value.fix


def test_skipping_a_minor_is_refused_before_anything_changes(talos_nodes: NodeFactory, bundle: SecretsBundle) -> None:
    cluster = start_cluster(talos_nodes, bundle, control_planes=1, workers=0)

    with pytest.raises(KubernetesUpgradeError) as raised:
        roll(cluster, "1.37.0")

    assert raised.value.node == "lab" and raised.value.phase == "checking the upgrade path"
    assert "skips a minor" in raised.value.reason and "v1.36.x first" in raised.value.fix
    assert cluster.history() == []


@pytest.mark.parametrize(
    ("before", "after", "problem"),
    [
        ("v1.35.4", "v1.35.4", None),
        ("1.35.4", "1.35.1", None),  # a patch downgrade stays within the minor: upgrade-k8s takes it
        ("v1.35.4", "v1.36.0", None),
        ("v1.35.4", "v1.34.9", "lowers the minor"),
        ("v1.34.4", "v1.36.0", "skips a minor"),
    ],
)
def test_path_problem_follows_upgrade_k8s(before: str, after: str, problem: str | None) -> None:
    found = path_problem(before, after)
    assert (found is None) if problem is None else (problem in str(found))


def test_support_problem_uses_the_talos_minor_range() -> None:
    assert support_problem("v1.13.9", "1.36.3") is None and support_problem("v1.12.11", "1.30.0") is None
    assert "runs Kubernetes 1.30 to 1.35" in str(support_problem("v1.12.11", "1.36.0"))
    assert "upgrade Talos first" in str(support_problem("v1.13.9", "1.37.0"))


def test_malformed_version_names_the_fix() -> None:
    with pytest.raises(TalosError, match=r"not a release like 'v1\.36\.4'"):
        parse_kubernetes_version("1.36")


def test_result_outcome_reflects_rolled_steps() -> None:
    assert KubernetesUpgradeResult("v1", "v1", (), ("a/kubelet",), 0.1).outcome == "already on target"
    assert KubernetesUpgradeResult("v1", "v2", ("a/kubelet",), (), 0.1).outcome == "upgraded"
