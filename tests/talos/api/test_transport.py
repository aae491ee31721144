"""Endpoints, and the failures of a connection that a caller must tell apart."""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest

from lab.talos.stages import Stage
from lab.talos.testing import NodeFactory
from talos.api import methods
from talos.api.client import TalosClient
from talos.api.errors import CallTimeoutError, NodeUnreachableError, TlsIdentityError
from talos.api.tls import maintenance_context
from talos.api.transport import NodeChannel, _api_error, split_endpoint


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("10.0.0.1", ("10.0.0.1", 50000)),
        ("10.0.0.1:50001", ("10.0.0.1", 50001)),
        ("node.example.com", ("node.example.com", 50000)),
        ("2001:db8::1", ("2001:db8::1", 50000)),
        ("[2001:db8::1]:443", ("2001:db8::1", 443)),
    ],
)
def test_split_endpoint(endpoint: str, expected: tuple[str, int]) -> None:
    assert split_endpoint(endpoint) == expected


@pytest.mark.parametrize("endpoint", ["", "https://10.0.0.1", "10.0.0.1:0", "10.0.0.1:x", "a b"])
def test_split_endpoint_refuses_what_is_not_host_port(endpoint: str) -> None:
    with pytest.raises(ValueError, match="fix:"):
        split_endpoint(endpoint)


def test_node_that_hangs_after_the_request_is_a_call_timeout(talos_nodes: NodeFactory) -> None:
    node = talos_nodes.start()
    node.stall_next_call(2.0)
    with TalosClient(node.address, timeout=0.3) as client, pytest.raises(CallTimeoutError, match="no answer"):
        client.version()


def test_port_that_never_speaks_tls_is_unreachable(talos_nodes: NodeFactory) -> None:
    address = talos_nodes.address()
    with (
        socket.create_server((address, 50000)),
        TalosClient(address, timeout=0.3) as client,
        pytest.raises(NodeUnreachableError, match="no connection within"),
    ):
        client.version()


def test_slow_boot_keeps_the_node_unreachable_past_a_normal_boot(talos_nodes: NodeFactory) -> None:
    node = talos_nodes.start(wait=False)
    node.power_off()
    node.slow_next_boot(600)
    node.power_on()
    node.wait_for(lambda n: n.stage is Stage.BOOTING)
    with pytest.raises(TimeoutError):
        node.wait_for(lambda n: n.stage is Stage.MAINTENANCE, timeout=2)  # a normal boot takes 0.05 s
    with TalosClient(node.address, timeout=0.3) as client:
        with pytest.raises(NodeUnreachableError, match="refused"):
            client.version()
        node.power_off()
        node.power_on()  # the fault slowed one boot only
        node.wait_for(lambda n: n.stage is Stage.MAINTENANCE)
        assert not client.version().configured


def test_hostname_mismatch_names_the_address_dialled() -> None:
    err = ssl.SSLCertVerificationError(1, "certificate verify failed")
    err.verify_code, err.verify_message = 62, "Hostname mismatch"

    async def classify() -> object:
        channel = NodeChannel("node.example.com", maintenance_context())
        return await _api_error(channel, methods.VERSION, err, sent=False, timeout=1)

    error = asyncio.run(classify())
    assert isinstance(error, TlsIdentityError) and "does not name node.example.com" in error.message
