"""The Talos API probe: one Version call tells a node in maintenance mode (and its version) from a configured one,
a closed port and a port where something else answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hetzner.probe import TalosState, talos_api_probe
from tests.hetzner.talos_ports import MAINTENANCE_VERSION, free_port, serve


@pytest.fixture
def ssh_port() -> Iterator[int]:
    yield from serve(lambda conn: conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n"))


def test_probe_node_in_maintenance_mode_read_with_its_version(maintenance_port: int) -> None:
    probe = talos_api_probe("127.0.0.1", maintenance_port, 5.0)

    assert probe.state is TalosState.MAINTENANCE and probe.version == MAINTENANCE_VERSION


def test_probe_configured_node_requires_client_cert(configured_port: int) -> None:
    probe = talos_api_probe("127.0.0.1", configured_port, 2.0)

    assert probe.state is TalosState.CONFIGURED and "client certificate" in probe.detail


def test_probe_other_service_unknown(ssh_port: int) -> None:
    assert talos_api_probe("127.0.0.1", ssh_port, 2.0).state is TalosState.UNKNOWN


def test_probe_closed_port_down() -> None:
    probe = talos_api_probe("127.0.0.1", free_port(), 1.0)

    assert probe.state is TalosState.DOWN and probe.version is None
