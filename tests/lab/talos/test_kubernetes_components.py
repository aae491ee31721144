"""A lab node's static pods and kubelet follow the images of the config it runs: the config resource's version
grows at once, the mirror pod shows the old pod, then the new one NotReady, then Ready; kube-apiserver's /version
and the Node's kubeletVersion change only when the restart is done."""

from __future__ import annotations

from urllib.parse import quote

import yaml

from lab.talos import testing as lab_talos
from lab.talos.kubernetes_components import ComponentTimings
from lab.talos.testing import NodeFactory
from talos.api.client import TalosClient
from talos.documents import dump_documents, parse_documents
from talos.kubeapi import KubeApi
from talos.kubernetes_images import pinned_to
from talos.secrets import SecretsBundle
from tests.talos.test_kubernetes_upgrade import LabCluster, start_cluster

talos_network = lab_talos.talos_network
talos_nodes = lab_talos.talos_nodes

SLOW = ComponentTimings(static_pod=1.0, kubelet=0.6)


def repin(cluster: LabCluster, index: int, version: str, components: list[str]) -> None:
    node = cluster.nodes[index]
    with TalosClient(node.address, cluster.admin) as client:
        documents = parse_documents(client.machine_config())
        client.apply_configuration(dump_documents(pinned_to(documents, version, components)), mode="no-reboot")


def scheduler_pod(api: KubeApi) -> dict:
    path = f"/api/v1/namespaces/kube-system/pods?labelSelector={quote('k8s-app=kube-scheduler')}"
    (pod,) = api.get(path)["items"]
    return pod


def ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"]["conditions"])


def test_static_pod_restart_shows_the_config_version_then_ready(talos_nodes: NodeFactory) -> None:
    cluster = start_cluster(talos_nodes, SecretsBundle.generate(), control_planes=1, workers=0)
    node = cluster.nodes[0]
    node.components.timings = SLOW
    api = KubeApi.from_kubeconfig(cluster.kubeconfig)
    before = scheduler_pod(api)

    repin(cluster, 0, "1.35.5", ["kube-scheduler"])
    with TalosClient(node.address, cluster.admin) as client:
        resource = client.get_resource("controlplane", "SchedulerConfigs.kubernetes.talos.dev", "kube-scheduler")
    old_still_running = scheduler_pod(api)
    node.wait_for(lambda n: not n.components.running["kube-scheduler"].ready, timeout=2)
    starting = scheduler_pod(api)
    node.wait_for(lambda n: n.components.running["kube-scheduler"].ready, timeout=2)
    after = scheduler_pod(api)

    assert before["metadata"]["annotations"]["talos.dev/config-version"] == "1" and ready(before)
    assert resource.metadata.version == "2"
    assert yaml.safe_load(resource.spec.yaml_spec)["image"] == "registry.k8s.io/kube-scheduler:v1.35.5"
    assert old_still_running["metadata"]["annotations"]["talos.dev/config-version"] == "1"
    assert starting["metadata"]["annotations"]["talos.dev/config-version"] == "2" and not ready(starting)
    assert after["spec"]["containers"][0]["image"] == "registry.k8s.io/kube-scheduler:v1.35.5" and ready(after)
    assert after["status"]["hostIP"] == node.address and after["metadata"]["name"].endswith(node.hostname)
    assert node.components.history == [(node.address, "kube-scheduler", "registry.k8s.io/kube-scheduler:v1.35.5")]


def test_apiserver_version_follows_its_image_after_the_restart(talos_nodes: NodeFactory) -> None:
    cluster = start_cluster(talos_nodes, SecretsBundle.generate(), control_planes=1, workers=0)
    node = cluster.nodes[0]
    api = KubeApi.from_kubeconfig(cluster.kubeconfig)

    repin(cluster, 0, "1.35.5", ["kube-apiserver"])
    node.wait_for(lambda n: n.components.history != [] and n.kubernetes is not None, timeout=2)

    assert api.get("/version")["gitVersion"] == "v1.35.5"


def test_kubelet_restart_reports_the_new_version_only_once_it_runs(talos_nodes: NodeFactory) -> None:
    cluster = start_cluster(talos_nodes, SecretsBundle.generate(), control_planes=1, workers=1)
    worker = cluster.nodes[1]
    worker.components.timings = SLOW
    api = KubeApi.from_kubeconfig(cluster.kubeconfig)

    def kubelet_version() -> str:
        return next(n for n in api.get("/api/v1/nodes")["items"] if n["metadata"]["name"] == worker.hostname)["status"][
            "nodeInfo"
        ]["kubeletVersion"]

    repin(cluster, 1, "1.35.5", ["kubelet"])
    with TalosClient(worker.address, cluster.admin) as client:
        during = next(s for s in client.service_list() if s.id == "kubelet")
    version_during = kubelet_version()
    worker.wait_for(lambda n: n.components.kubelet_running(), timeout=2)
    with TalosClient(worker.address, cluster.admin) as client:
        after = next(s for s in client.service_list() if s.id == "kubelet")

    assert (during.state, during.healthy) == ("Starting", None) and version_during == "v1.35.4"
    assert (after.state, after.healthy) == ("Running", True) and kubelet_version() == "v1.35.5"


def test_a_stuck_component_stays_not_ready_until_released(talos_nodes: NodeFactory) -> None:
    cluster = start_cluster(talos_nodes, SecretsBundle.generate(), control_planes=1, workers=0)
    node = cluster.nodes[0]
    node.components.stuck.add("kube-scheduler")

    repin(cluster, 0, "1.35.5", ["kube-scheduler"])
    node.wait_for(lambda n: n.components.running["kube-scheduler"].running_version == 2, timeout=2)
    stuck = not node.components.running["kube-scheduler"].ready
    node.components.release("kube-scheduler")
    node.wait_for(lambda n: n.components.running["kube-scheduler"].ready, timeout=2)

    assert stuck and node.components.history[-1][1] == "kube-scheduler"
