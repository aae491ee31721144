"""Fixtures for the provider tests: Talos API ports in each mode (shared with the hetzner tests), standalone lab
Talos nodes, one secrets bundle per module, and a provider server without stack config (a module that needs config
defines its own `server`)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.talos import testing as lab_talos
from talos.secrets import SecretsBundle
from tests.hetzner.talos_ports import configured_port, maintenance_port
from tests.providers.harness import ProviderServer, provider_server

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
