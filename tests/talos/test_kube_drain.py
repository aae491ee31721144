"""Cordons an operation marks as its own, against the lab's Kubernetes API on loopback: marked when set, undone only
when so marked, a cordon someone else set left alone; and what no answering server raises."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.kubernetes import KubernetesApi, NodeInfo
from lab.kubernetes.workloads import Workloads
from lab.talos.certs import admin_kubeconfig
from talos.kube_drain import (
    CORDONED_BY,
    KubeCluster,
    KubeUnreachableError,
    cordon,
    cordon_for,
    get_node,
    uncordon_for,
)
from talos.pki import CertAndKey
from talos.secrets import SecretsBundle

VERSION = "v1.36.3"
NODES = [
    NodeInfo("cp-1", "127.0.0.11", "control-plane", VERSION),
    NodeInfo("worker-1", "127.0.0.21", "worker", VERSION),
]


@pytest.fixture
def workloads() -> Workloads:
    return Workloads()


@pytest.fixture(scope="module")
def ca() -> CertAndKey:
    return SecretsBundle.generate().k8s


@pytest.fixture
def kube(ca: CertAndKey, workloads: Workloads) -> Iterator[KubeCluster]:
    api = KubernetesApi(
        "127.0.0.1",
        0,
        ca=ca,
        server_names=["127.0.0.1"],
        nodes=lambda: workloads.registered(NODES),
        version=VERSION,
        workloads=workloads,
    )
    with api:
        yield KubeCluster.from_kubeconfig(admin_kubeconfig("lab", api.endpoint.base_url, ca))


def test_cordon_for_an_operation_is_marked_and_undone_by_it_once(kube: KubeCluster, workloads: Workloads) -> None:
    first = cordon_for(kube, "worker-1", "upgrade")
    again = cordon_for(kube, "worker-1", "upgrade")  # a re-run finds its own cordon
    marked = workloads.annotations("worker-1")

    assert (first, again) == (True, True) and workloads.cordoned("worker-1")
    assert marked == {CORDONED_BY: "upgrade"}
    assert uncordon_for(kube, "worker-1", "upgrade") is True
    assert not workloads.cordoned("worker-1") and workloads.annotations("worker-1") == {}
    assert uncordon_for(kube, "worker-1", "upgrade") is False


def test_cordon_someone_else_set_is_left_as_it_is(kube: KubeCluster, workloads: Workloads) -> None:
    cordon(kube, "worker-1")  # e.g. `kubectl cordon`
    cordon_for(kube, "cp-1", "removal")

    assert cordon_for(kube, "worker-1", "upgrade") is False
    assert cordon_for(kube, "cp-1", "upgrade") is False
    assert uncordon_for(kube, "worker-1", "upgrade") is False
    assert uncordon_for(kube, "cp-1", "upgrade") is False
    assert workloads.cordoned("worker-1") and workloads.annotations("worker-1") == {}
    assert workloads.cordoned("cp-1") and workloads.annotations("cp-1") == {CORDONED_BY: "removal"}


def test_missing_node_is_none_and_untouched(kube: KubeCluster) -> None:
    assert get_node(kube, "gone") is None
    assert cordon_for(kube, "gone", "upgrade") is None
    assert uncordon_for(kube, "gone", "upgrade") is False
    node = get_node(kube, "cp-1")
    assert node is not None and node["metadata"]["name"] == "cp-1"


def test_no_answering_server_is_an_unreachable_error(kube: KubeCluster) -> None:
    closed = KubeCluster(kube.credentials, ("https://127.0.0.1:1",))

    with pytest.raises(KubeUnreachableError, match="no Kubernetes API server answered"):
        get_node(closed, "cp-1")
