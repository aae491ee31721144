"""A lab Kubernetes API on loopback with the cluster's Kubernetes CA, and the admin kubeconfig Talos mints."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from lab.kubernetes import KubernetesApi, NodeInfo
from lab.talos.certs import admin_kubeconfig
from talos.pki import CertAndKey
from talos.secrets import SecretsBundle

VERSION = "v1.36.3"
HOST = "127.0.0.1"


@dataclass
class RunningApi:
    api: KubernetesApi
    ca: CertAndKey = field(repr=False)
    nodes: list[NodeInfo]
    kubeconfig: str = field(repr=False)
    """The admin kubeconfig exactly as the lab's Talos node serves it (lab.talos.certs)."""


@pytest.fixture(scope="session")
def k8s_ca() -> CertAndKey:
    return SecretsBundle.generate().k8s


@pytest.fixture
def running_api(k8s_ca: CertAndKey) -> Iterator[RunningApi]:
    nodes = [
        NodeInfo("cp-1", "127.0.0.11", "control-plane", VERSION),
        NodeInfo("worker-1", "127.0.0.21", "worker", VERSION),
    ]
    api = KubernetesApi(HOST, 0, ca=k8s_ca, server_names=[HOST], nodes=lambda: list(nodes), version=VERSION)
    with api:
        kubeconfig = admin_kubeconfig("lab", api.endpoint.base_url, k8s_ca)
        yield RunningApi(api, k8s_ca, nodes, kubeconfig)
