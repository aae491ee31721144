"""Fixtures for the provider tests: Talos API ports in each mode (shared with the hetzner tests), standalone lab
Talos nodes, a bootstrapped cluster of three of them, one secrets bundle per module, and a provider server without
stack config (a module that needs config defines its own `server`)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.talos import testing as lab_talos
from lab.talos.testing import NodeFactory
from talos.secrets import SecretsBundle
from tests.hetzner.talos_ports import configured_port, maintenance_port
from tests.providers.harness import ProviderServer, provider_server
from tests.talos.test_upgrade import LabCluster, start_cluster

talos_network = lab_talos.talos_network
talos_nodes = lab_talos.talos_nodes

__all__ = ["configured_port", "maintenance_port", "talos_network", "talos_nodes"]


@pytest.fixture(scope="module")
def bundle() -> SecretsBundle:
    return SecretsBundle.generate()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ProviderServer]:
    with provider_server(tmp_path / "provider.log", {}) as started:
        yield started


@pytest.fixture
def three(talos_nodes: NodeFactory, bundle: SecretsBundle) -> LabCluster:
    """Three bootstrapped control planes."""
    return start_cluster(talos_nodes, bundle, "v1.13.9", control_planes=3)
