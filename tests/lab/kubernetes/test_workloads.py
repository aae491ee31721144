"""What a drain calls on the lab's Kubernetes API, through the official `kubernetes` client: cordon by patch, pods by
node, evictions (201, 429 while a disruption budget forbids, 404), Node deletion, and Nodes outliving their kubelet."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lab.kubernetes import KubernetesApi, NodeInfo
from lab.kubernetes.objects import PodInfo
from lab.kubernetes.workloads import Workloads
from lab.talos.certs import admin_kubeconfig
from talos.pki import CertAndKey
from tests.lab.kubernetes.conftest import HOST, VERSION
from tests.lab.kubernetes.test_server import official_client

MIRROR = PodInfo("kube-apiserver", "cp-1", "127.0.0.11", f"registry.k8s.io/kube-apiserver:{VERSION}", "1", True)


@pytest.fixture
def workloads() -> Workloads:
    store = Workloads(termination=0.05)
    store.add_pod("web-1", "worker-1")
    store.add_pod("agent-x", "worker-1", owner_kind="DaemonSet")
    store.add_pod("db-0", "cp-1", owner_kind="StatefulSet")
    return store


@pytest.fixture
def live() -> list[NodeInfo]:
    return [
        NodeInfo("cp-1", "127.0.0.11", "control-plane", VERSION),
        NodeInfo("worker-1", "127.0.0.21", "worker", VERSION),
    ]


@pytest.fixture
def core(k8s_ca: CertAndKey, workloads: Workloads, live: list[NodeInfo], tmp_path: Path) -> Iterator[client.CoreV1Api]:
    api = KubernetesApi(
        HOST,
        0,
        ca=k8s_ca,
        server_names=[HOST],
        nodes=lambda: workloads.registered(list(live)),
        version=VERSION,
        pods=lambda: [MIRROR],
        workloads=workloads,
    )
    with api, official_client(admin_kubeconfig("lab", api.endpoint.base_url, k8s_ca), tmp_path) as api_client:
        yield client.CoreV1Api(api_client)


def eviction(name: str, namespace: str = "default") -> client.V1Eviction:
    return client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=namespace))


def test_cordon_by_strategic_merge_patch_shows_in_the_node(core: client.CoreV1Api, workloads: Workloads) -> None:
    patched = core.patch_node("worker-1", {"spec": {"unschedulable": True}})
    read = core.read_node("worker-1")

    assert patched.spec.unschedulable and read.spec.unschedulable and workloads.cordoned("worker-1")
    assert [(t.key, t.effect) for t in read.spec.taints] == [("node.kubernetes.io/unschedulable", "NoSchedule")]
    assert not core.read_node("cp-1").spec.unschedulable


def test_annotations_by_merge_patch_show_in_the_node_and_null_removes_one(
    core: client.CoreV1Api, workloads: Workloads
) -> None:
    core.patch_node("worker-1", {"metadata": {"annotations": {"example.com/a": "1", "example.com/b": "2"}}})
    core.patch_node("worker-1", {"metadata": {"annotations": {"example.com/a": None}}, "spec": {"unschedulable": True}})
    with pytest.raises(ApiException) as raised:
        core.patch_node("worker-1", {"metadata": {"labels": {"example.com/c": "3"}}})

    read = core.read_node("worker-1")
    assert read.metadata.annotations == {"example.com/b": "2"} == workloads.annotations("worker-1")
    assert read.spec.unschedulable and raised.value.status == 422
    assert core.read_node("cp-1").metadata.annotations is None


def test_pods_by_node_field_selector_include_mirror_and_daemon_set_pods(core: client.CoreV1Api) -> None:
    on_worker = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=worker-1").items
    on_cp = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=cp-1").items

    assert sorted(pod.metadata.name for pod in on_worker) == ["agent-x", "web-1"]
    assert [
        owner.kind for pod in on_worker if pod.metadata.name == "agent-x" for owner in pod.metadata.owner_references
    ] == ["DaemonSet"]
    mirror = next(pod for pod in on_cp if pod.metadata.name == "kube-apiserver-cp-1")
    assert "kubernetes.io/config.mirror" in mirror.metadata.annotations
    with pytest.raises(ApiException) as raised:
        core.list_pod_for_all_namespaces(field_selector="status.phase=Running")
    assert raised.value.status == 400


def test_eviction_is_created_then_the_pod_terminates_and_goes(core: client.CoreV1Api, workloads: Workloads) -> None:
    core.create_namespaced_pod_eviction("web-1", "default", eviction("web-1"))
    terminating = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=worker-1").items
    time.sleep(0.1)

    assert next(p for p in terminating if p.metadata.name == "web-1").metadata.deletion_timestamp is not None
    assert workloads.pod_names("worker-1") == ["default/agent-x"]
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_pod_eviction("web-1", "default", eviction("web-1"))
    assert raised.value.status == 404


def test_eviction_forbidden_by_a_disruption_budget_is_429_until_allowed(
    core: client.CoreV1Api, workloads: Workloads
) -> None:
    workloads.block_eviction("db-0", "db-pdb")

    with pytest.raises(ApiException) as raised:
        core.create_namespaced_pod_eviction("db-0", "default", eviction("db-0"))
    workloads.allow_eviction("db-0")
    core.create_namespaced_pod_eviction("db-0", "default", eviction("db-0"))

    body = json.loads(raised.value.body)
    assert (raised.value.status, body["reason"]) == (429, "TooManyRequests")
    assert body["details"]["causes"] == [
        {
            "reason": "DisruptionBudget",
            "message": "The disruption budget db-pdb needs 1 healthy pods and has 1 currently",
        }
    ]


def test_deleted_node_stays_gone_until_its_kubelet_registers_again(
    core: client.CoreV1Api, live: list[NodeInfo]
) -> None:
    status = core.delete_node("worker-1")
    listed = [node.metadata.name for node in core.list_node().items]
    with pytest.raises(ApiException) as raised:
        core.delete_node("worker-1")
    live.pop()  # the kubelet stops ...
    core.list_node()
    live.append(NodeInfo("worker-1", "127.0.0.21", "worker", VERSION))  # ... and registers again

    assert status["status"] == "Success" and status["details"]["name"] == "worker-1"
    assert listed == ["cp-1"] and raised.value.status == 404
    assert [node.metadata.name for node in core.list_node().items] == ["cp-1", "worker-1"]


def test_node_object_outlives_its_kubelet(core: client.CoreV1Api, live: list[NodeInfo]) -> None:
    core.list_node()
    live.pop()

    assert [node.metadata.name for node in core.list_node().items] == ["cp-1", "worker-1"]
