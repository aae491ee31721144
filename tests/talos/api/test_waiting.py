"""Waiting for nodes: transitions are waited out, wrong identities end the wait, progress names the node."""

from __future__ import annotations

import re

import pytest

from common.waiting import Deadline, WaitTimeout
from lab.talos.testing import ClusterMaterial, NodeFactory
from talos.api.client import TalosClient
from talos.api.errors import TlsIdentityError
from talos.api.waiting import (
    BootstrapRefusedError,
    bootstrap_once,
    bootstrap_when_ready,
    wait_for_configured,
    wait_for_maintenance,
    wait_healthy,
    wait_ready_to_bootstrap,
)
from talos.bootstrap_marker import MARKER_KEY, BootstrapMarker


def test_wait_for_configured_spans_the_reboot_and_reports_progress(
    talos_nodes: NodeFactory, cluster: ClusterMaterial
) -> None:
    node = talos_nodes.start()
    with TalosClient(node.address) as client:
        client.apply_configuration(cluster.controlplane)
    lines: list[str] = []
    version = wait_for_configured(node.address, cluster.admin, Deadline.after(10), progress=lines.append)
    assert version.configured
    assert lines[-1].startswith(f"{node.address}: configured mode (mTLS): reached (")
    assert all(line.startswith(f"{node.address}: configured mode (mTLS): ") for line in lines)


def test_wait_outlasts_refused_connections(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> None:
    node = talos_nodes.start(config=cluster.controlplane)
    node.refuse_connections(0.4)
    lines: list[str] = []
    assert wait_for_configured(node.address, cluster.admin, Deadline.after(10), progress=lines.append).configured
    assert any("Connection refused" in line for line in lines)


def test_wait_for_maintenance_gives_up_on_a_node_with_nothing_to_boot(talos_nodes: NodeFactory) -> None:
    node = talos_nodes.start(version=None)
    with pytest.raises(WaitTimeout, match=f"{node.address} maintenance mode .*refused"):
        wait_for_maintenance(node.address, Deadline.after(0.5))


def test_wait_for_configured_stops_at_a_foreign_ca(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> None:
    node = talos_nodes.start(config=cluster.controlplane)
    other = ClusterMaterial.generate(cluster.endpoint_host, name="other")
    with pytest.raises(TlsIdentityError):
        wait_for_configured(node.address, other.admin, Deadline.after(10))


def test_bootstrap_when_ready_bootstraps_then_adopts(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> None:
    node = talos_nodes.start(config=cluster.controlplane)
    assert bootstrap_when_ready(node.address, cluster.admin, Deadline.after(10)) == "bootstrapped"
    assert bootstrap_when_ready(node.address, cluster.admin, Deadline.after(10)) == "adopted"


def test_ready_to_bootstrap_never_holds_on_a_worker(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> None:
    talos_nodes.start(config=cluster.controlplane)
    worker = talos_nodes.start(config=cluster.worker)
    with pytest.raises(WaitTimeout, match="no etcd service"):
        wait_ready_to_bootstrap(worker.address, cluster.admin, Deadline.after(0.5))


def test_cluster_healthy_once_every_control_plane_joined(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> None:
    first = talos_nodes.start(config=cluster.controlplane)
    second = talos_nodes.start(config=cluster.controlplane)
    worker = talos_nodes.start(config=cluster.worker)
    with pytest.raises(WaitTimeout, match="not ready"):
        wait_healthy([first.address, second.address], [worker.address], cluster.admin, Deadline.after(0.3))
    bootstrap_when_ready(first.address, cluster.admin, Deadline.after(10))
    wait_healthy([first.address, second.address], [worker.address], cluster.admin, Deadline.after(10))
    with TalosClient(second.address, cluster.admin) as client:
        assert len(client.etcd_members()) == 2


def test_bootstrap_once_bootstraps_the_first_then_adopts_wherever_etcd_runs(
    talos_nodes: NodeFactory, cluster: ClusterMaterial
) -> None:
    first = talos_nodes.start(config=cluster.controlplane)
    second = talos_nodes.start(config=cluster.controlplane)
    planes = {"a": first.address, "b": second.address}
    cluster_id = cluster.secrets.cluster_id

    done = bootstrap_once(planes, cluster.admin, Deadline.after(10), cluster_id=cluster_id)
    second.wait_for(lambda n: n.etcd_state.value == "healthy")
    again = bootstrap_once(
        {"b": second.address, "a": first.address}, cluster.admin, Deadline.after(10), cluster_id=cluster_id
    )

    assert (done.outcome, done.etcd) == ("bootstrapped", "bootstrapped on a")
    assert (again.outcome, again.etcd) == ("adopted", "found running on b, a (2 member(s))")
    assert first.fabric.bootstrap_calls(first.etcd_cluster_id()) == 1


def test_bootstrap_once_waits_for_every_control_plane_and_names_the_missing(
    talos_nodes: NodeFactory, cluster: ClusterMaterial
) -> None:
    first = talos_nodes.start(config=cluster.controlplane)
    unconfigured = talos_nodes.start()
    planes = {"a": first.address, "b": unconfigured.address}
    with pytest.raises(WaitTimeout, match=r"etcd survey .*last: b: .*maintenance"):
        bootstrap_once(planes, cluster.admin, Deadline.after(0.5), cluster_id=cluster.secrets.cluster_id)
    assert first.fabric.bootstrap_calls(first.etcd_cluster_id()) == 0


def test_bootstrap_once_refuses_when_only_the_marker_is_left(
    talos_nodes: NodeFactory, cluster: ClusterMaterial
) -> None:
    node = talos_nodes.start(config=cluster.controlplane)
    marker = BootstrapMarker.new(cluster.secrets.cluster_id, "a")
    with TalosClient(node.address, cluster.admin) as client:
        client.meta_write(MARKER_KEY, marker.encode())
    with pytest.raises(BootstrapRefusedError, match=r"a carry this cluster's bootstrap marker .* no control plane"):
        bootstrap_once({"a": node.address}, cluster.admin, Deadline.after(10), cluster_id=cluster.secrets.cluster_id)
    other = BootstrapMarker.new("another cluster", "x")
    with TalosClient(node.address, cluster.admin) as client:
        client.meta_write(MARKER_KEY, other.encode())
    done = bootstrap_once({"a": node.address}, cluster.admin, Deadline.after(10), cluster_id=cluster.secrets.cluster_id)
    assert done.outcome == "bootstrapped"


def elapsed_seconds(line: str) -> float:
    """The `(<elapsed>)` a progress line ends with, as common.waiting.format_elapsed writes it, in seconds."""
    match = re.search(r"\((?:(\d+)ms|(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?)\)$", line)
    assert match is not None and any(match.groups()), f"no elapsed time at the end of {line!r}"
    millis, hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return millis / 1000 + hours * 3600 + minutes * 60 + seconds


def test_progress_lines_end_with_the_time_waited_so_far(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> None:
    node = talos_nodes.start()
    node.slow_next_boot(2.2)
    with TalosClient(node.address) as client:
        client.apply_configuration(cluster.controlplane)
    lines: list[str] = []
    wait_for_configured(node.address, cluster.admin, Deadline.after(15), progress=lines.append)
    waited = [elapsed_seconds(line) for line in lines]
    assert len(waited) >= 2 and waited == sorted(waited)
    assert waited[-1] >= 2  # the node cannot answer before its slowed boot is over (shown in whole seconds)
