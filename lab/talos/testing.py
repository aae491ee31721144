"""Pytest fixtures for lab Talos nodes on their own: a node on a 127.x address with a fake disk in memory.

Use from a conftest.py:  `from lab.talos.testing import cluster, talos_network, talos_nodes  # noqa: F401`

`talos_nodes.start()` boots a node from a MemoryStorage holding a Talos image (or none); nodes are powered
off after the test. `cluster` holds one generated secrets bundle with the machine configs and talosconfig
made from it for the session.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from lab.images.raw import TalosImage
from lab.net import LabNetwork, claim_network
from lab.talos.fabric import Fabric
from lab.talos.node import NodeTimings, TalosNode
from lab.talos.storage import BlockDevice, MemoryStorage
from talos.config import ClusterOptions, render_config
from talos.documents import dump_documents
from talos.secrets import SecretsBundle
from talos.talosconfig import TalosContext, build_talosconfig, issue_admin_certificate

FAST = NodeTimings(boot=0.05, shutdown=0.01, install=0.02, services=0.02, etcd=0.05)
"""Timings for tests: a reboot takes well under a second."""
TALOS_VERSION = "v1.13.9"


@dataclass(frozen=True)
class ClusterMaterial:
    """A cluster's secrets and what is made from them, aimed at the endpoint `endpoint_host`."""

    secrets: SecretsBundle = field(repr=False)
    endpoint_host: str
    controlplane: str = field(repr=False)
    worker: str = field(repr=False)
    admin: TalosContext = field(repr=False)

    @classmethod
    def generate(cls, endpoint_host: str, name: str = "lab") -> ClusterMaterial:
        secrets = SecretsBundle.generate()
        options = ClusterOptions(cluster_name=name, endpoint=f"https://{endpoint_host}:6443")
        return cls(
            secrets=secrets,
            endpoint_host=endpoint_host,
            controlplane=dump_documents(render_config(options, secrets, "controlplane")),
            worker=dump_documents(render_config(options, secrets, "worker")),
            admin=build_talosconfig(name, secrets, endpoints=[endpoint_host], nodes=[endpoint_host]).current(),
        )

    def credentials(self, *roles: str) -> TalosContext:
        """A talosconfig context whose client certificate carries `roles`."""
        pair = issue_admin_certificate(self.secrets, roles=roles)
        return TalosContext(ca=self.secrets.os.crt, crt=pair.crt, key=pair.key)


class NodeFactory:
    """Starts standalone lab nodes at 127.<net>.3.<n>, sharing one fabric."""

    def __init__(self, network: LabNetwork) -> None:
        self.network = network
        self.fabric = Fabric()
        self.nodes: list[TalosNode] = []
        self._hosts = itertools.count(10)

    def address(self) -> str:
        """The next free node address."""
        return f"127.{self.network.net}.3.{next(self._hosts)}"

    def start(
        self,
        *,
        address: str | None = None,
        version: str | None = TALOS_VERSION,
        config: str | None = None,
        disks: tuple[BlockDevice, ...] | None = None,
        timings: NodeTimings = FAST,
        wait: bool = True,
    ) -> TalosNode:
        """Power on a node whose disk holds Talos `version` (None: nothing bootable) and, maybe, a saved config."""
        storage = MemoryStorage(TalosImage(version) if version else None, state=config.encode() if config else None)
        if disks is not None:
            storage.disks = disks
        node = TalosNode(address or self.address(), storage, timings=timings, fabric=self.fabric)
        self.nodes.append(node)
        node.power_on()
        if wait and version:
            node.wait_for(lambda n: n.stage.value in ("maintenance", "running"))
        return node

    def close(self) -> None:
        for node in self.nodes:
            node.close()
        self.nodes.clear()


@pytest.fixture(scope="session")
def talos_network() -> Iterator[LabNetwork]:
    """A lab network claimed for the session's standalone Talos nodes."""
    network, marker = claim_network()
    with marker:
        yield network


@pytest.fixture
def talos_nodes(talos_network: LabNetwork) -> Iterator[NodeFactory]:
    """Start nodes with `talos_nodes.start(...)`; all are powered off after the test."""
    factory = NodeFactory(talos_network)
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def cluster(talos_network: LabNetwork) -> ClusterMaterial:
    """One cluster's secrets, configs and admin talosconfig for the session."""
    return ClusterMaterial.generate(f"127.{talos_network.net}.3.1")


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections at host:port."""
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0
