"""The Talos API port probe against loopback TLS servers that behave like apid in each mode."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from hetzner.probe import TalosState, probe_talos
from tests.hetzner.talos_ports import serve, silent_tls


@pytest.fixture
def plain_tcp() -> Iterator[int]:
    yield from serve(lambda conn: conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n"))


def test_probe_maintenance_mode_accepts_tls_without_client_cert(maintenance_port: int) -> None:
    assert probe_talos("127.0.0.1", maintenance_port, 2.0).state is TalosState.MAINTENANCE


def test_probe_configured_node_requires_client_cert(configured_port: int) -> None:
    probe = probe_talos("127.0.0.1", configured_port, 2.0)

    assert probe.state is TalosState.CONFIGURED and "certificate" in probe.detail.lower()


@pytest.fixture
def silent_port(tmp_path: Path) -> Iterator[int]:
    yield from silent_tls(tmp_path)


def test_probe_silent_tls_server_without_client_cert_is_maintenance(silent_port: int) -> None:
    assert probe_talos("127.0.0.1", silent_port, 2.0).state is TalosState.MAINTENANCE


def test_probe_other_service_unknown(plain_tcp: int) -> None:
    assert probe_talos("127.0.0.1", plain_tcp, 2.0).state is TalosState.UNKNOWN


def test_probe_closed_port_down() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    probe = probe_talos("127.0.0.1", port, 1.0)

    assert probe.state is TalosState.DOWN and probe.version is None
