"""The bootstrap marker: its JSON never carries the cluster id, only this program's markers count, and spreading
it copies the one already there, leaves foreign values alone and never fails for a node that does not answer."""

from __future__ import annotations

from lab.talos import testing as lab_talos
from lab.talos.testing import ClusterMaterial, NodeFactory
from talos.api.client import TalosClient
from talos.bootstrap_marker import (
    MARKER_KEY,
    OCCUPIED,
    PRESENT,
    WRITTEN,
    BootstrapMarker,
    cluster_fingerprint,
    spread_marker,
)

talos_network = lab_talos.talos_network
talos_nodes = lab_talos.talos_nodes
cluster = lab_talos.cluster


def test_marker_round_trips_without_the_cluster_id() -> None:
    marker = BootstrapMarker.new("the-cluster-id", "cp-1")
    encoded = marker.encode()
    assert BootstrapMarker.parse(encoded.decode()) == marker
    assert b"the-cluster-id" not in encoded and marker.cluster == cluster_fingerprint("the-cluster-id")


def test_values_not_written_by_this_program_are_no_marker() -> None:
    for value in (None, "", "provision", "[1, 2]", '{"kind": "something else"}'):
        assert BootstrapMarker.parse(value) is None


def test_spread_copies_the_marker_found_and_leaves_foreign_values_alone(
    talos_nodes: NodeFactory, cluster: ClusterMaterial
) -> None:
    marked, empty, foreign = (talos_nodes.start(config=cluster.controlplane) for _ in range(3))
    original = BootstrapMarker.new(cluster.secrets.cluster_id, "cp-1")
    with TalosClient(marked.address, cluster.admin) as client:
        client.meta_write(MARKER_KEY, original.encode())
    with TalosClient(foreign.address, cluster.admin) as client:
        client.meta_write(MARKER_KEY, b"the user's own value")
    absent = talos_nodes.address()
    planes = {"a": marked.address, "b": empty.address, "c": foreign.address, "d": absent}
    lines: list[str] = []

    outcomes = spread_marker(
        planes, cluster.admin, BootstrapMarker.new(cluster.secrets.cluster_id, None), progress=lines.append
    )

    assert outcomes["a"] == PRESENT and outcomes["b"] == WRITTEN and outcomes["c"] == OCCUPIED
    assert outcomes["d"].startswith("not written (") and f"d: bootstrap marker {outcomes['d']}" in lines
    with TalosClient(empty.address, cluster.admin) as client:
        assert BootstrapMarker.parse(client.meta_value(MARKER_KEY)) == original
    with TalosClient(foreign.address, cluster.admin) as client:
        assert client.meta_value(MARKER_KEY) == "the user's own value"
