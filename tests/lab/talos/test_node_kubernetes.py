"""A lab control plane serves the Kubernetes API once its etcd runs: the kubeconfig Talos hands out works with
the official `kubernetes` client, unchanged, and lists the cluster's nodes NotReady (no CNI)."""

from __future__ import annotations

import time
from pathlib import Path

from kubernetes import client, config

from common.waiting import Deadline
from lab.talos.node import _JOIN_POLL, TalosNode
from lab.talos.stages import EtcdState
from lab.talos.testing import ClusterMaterial, NodeFactory, port_open
from talos.api.client import TalosClient
from talos.api.waiting import bootstrap_when_ready


def list_nodes(kubeconfig: str, folder: Path) -> list[client.V1Node]:
    path = folder / "kubeconfig"
    path.write_text(kubeconfig)
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        return list(client.CoreV1Api(api).list_node().items)


def ready(node: client.V1Node) -> tuple[str, str]:
    [condition] = [c for c in node.status.conditions if c.type == "Ready"]
    return condition.status, condition.reason


def bootstrapped_control_plane(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> TalosNode:
    node = talos_nodes.start(address=cluster.endpoint_host, config=cluster.controlplane)
    bootstrap_when_ready(node.address, cluster.admin, Deadline.after(10))
    node.wait_for(lambda n: n.kubernetes is not None)
    return node


def test_no_kubernetes_api_before_bootstrap(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> None:
    node = talos_nodes.start(address=cluster.endpoint_host, config=cluster.controlplane)
    node.wait_for(lambda n: n.etcd_state is EtcdState.PREPARING)

    assert node.kubernetes is None and not port_open(node.address, 6443)


def test_the_bootstrapped_node_starts_etcd_and_its_api_once(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> None:
    node = bootstrapped_control_plane(talos_nodes, cluster)
    serving = node.kubernetes
    time.sleep(_JOIN_POLL * 4)  # the wait for a bootstrapped peer ends too: it must not start etcd a second time

    assert node.kubernetes is serving and node.etcd_state is EtcdState.HEALTHY


def test_kubeconfig_lists_the_clusters_nodes_not_ready(
    talos_nodes: NodeFactory, cluster: ClusterMaterial, tmp_path: Path
) -> None:
    control_plane = bootstrapped_control_plane(talos_nodes, cluster)
    worker = talos_nodes.start(config=cluster.worker)
    talos_nodes.start(config=ClusterMaterial.generate(cluster.endpoint_host, "other").worker, wait=False)
    worker.wait_for(lambda n: n.services_up)
    with TalosClient(control_plane.address, cluster.admin) as talos:
        kubeconfig = talos.kubeconfig()

    nodes = list_nodes(kubeconfig, tmp_path)

    assert {n.metadata.name: n.status.addresses[0].address for n in nodes} == {
        control_plane.hostname: control_plane.address,
        worker.hostname: worker.address,
    }
    assert {ready(n) for n in nodes} == {("False", "KubeletNotReady")}
    assert {n.status.node_info.kubelet_version for n in nodes} == {"v1.36.3"}


def test_reboot_stops_the_api_and_etcd_brings_it_back(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> None:
    node = bootstrapped_control_plane(talos_nodes, cluster)

    with TalosClient(node.address, cluster.admin) as talos:
        talos.reboot()
    node.wait_for(lambda n: n.boots == 2 and n.kubernetes is None)
    assert not port_open(node.address, 6443)
    node.wait_for(lambda n: n.kubernetes is not None)

    assert port_open(node.address, 6443)


def test_reset_stops_the_api(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> None:
    node = bootstrapped_control_plane(talos_nodes, cluster)

    with TalosClient(node.address, cluster.admin) as talos:
        # not graceful: etcd refuses to let its only member leave, so a graceful reset fails there (TFP #216)
        talos.reset(graceful=False, reboot=True, wipe_labels=["STATE", "EPHEMERAL"])
    node.wait_for(lambda n: n.boots == 2 and n.maintenance)

    assert node.kubernetes is None and not port_open(node.address, 6443)
