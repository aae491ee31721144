"""ClusterBootstrap never bootstraps a second etcd, whatever happened to the Pulumi state: the bootstrap marker in
every control plane's META and a survey of every control plane's etcd decide, on standalone lab Talos nodes."""

from __future__ import annotations

import pytest

from lab.images.raw import TalosImage
from lab.talos import testing as lab_talos
from lab.talos.node import TalosNode
from lab.talos.stages import EtcdState
from lab.talos.testing import NodeFactory
from providers.cluster_bootstrap import ClusterBootstrapProvider
from talos.api.client import TalosClient
from talos.bootstrap_marker import MARKER_KEY, BootstrapMarker, cluster_fingerprint
from talos.talosconfig import TalosConfig, TalosContext
from tests.providers.harness import ProviderCallError, ProviderServer, ResourceDriver
from tests.providers.test_cluster_bootstrap import TYPE, LabCluster, add_node, inputs, start_cluster


def new_resource(server: ProviderServer) -> ResourceDriver:
    """A ClusterBootstrap with no state: a first run, or a run after the stack was lost."""
    return ResourceDriver(server, ClusterBootstrapProvider(), "lab-bootstrap", TYPE)


@pytest.fixture
def lab_cluster(talos_nodes: NodeFactory) -> LabCluster:
    layout = {"cp-1": "controlplane", "cp-2": "controlplane", "cp-3": "controlplane", "worker-1": "worker"}
    return start_cluster(talos_nodes, layout)  # type: ignore[arg-type]


@pytest.fixture
def bootstrapped(server: ProviderServer, lab_cluster: LabCluster) -> TalosContext:
    """The cluster after a first create; its admin talosconfig context."""
    outputs = new_resource(server).up(inputs(lab_cluster)).outputs
    assert outputs["outcome"] == "bootstrapped"
    return TalosConfig.from_yaml(outputs["talosconfig"]).current()


def markers(cluster: LabCluster, context: TalosContext) -> dict[str, BootstrapMarker | None]:
    found = {}
    for name, node in cluster.nodes.items():
        with TalosClient(node.address, context) as client:
            found[name] = BootstrapMarker.parse(client.meta_value(MARKER_KEY))
    return found


def bootstrap_calls(cluster: LabCluster) -> int:
    first = cluster.nodes["cp-1"]
    return first.fabric.bootstrap_calls(first.etcd_cluster_id())


def running(node: TalosNode) -> None:
    node.wait_for(lambda n: n.stage.value == "running" and n.services_up, timeout=10)


def test_a_fresh_cluster_is_bootstrapped_once_and_every_control_plane_marked(
    bootstrapped: TalosContext, lab_cluster: LabCluster
) -> None:
    found = markers(lab_cluster, bootstrapped)

    assert bootstrap_calls(lab_cluster) == 1
    assert found["worker-1"] is None
    marker = found["cp-1"]
    assert marker is not None and marker.node == "cp-1"
    assert marker.cluster == cluster_fingerprint(lab_cluster.bundle.cluster_id) != lab_cluster.bundle.cluster_id
    assert found["cp-2"] == found["cp-3"] == marker


def test_lost_state_adopts_the_running_etcd_without_calling_bootstrap(
    bootstrapped: TalosContext, server: ProviderServer, lab_cluster: LabCluster
) -> None:
    first = lab_cluster.nodes["cp-1"]
    members = first.fabric.etcd(first.etcd_cluster_id()).members

    step = new_resource(server).up(inputs(lab_cluster))

    assert step.op == "create" and step.outputs["outcome"] == "adopted"
    assert step.outputs["etcd"] == "found running on cp-1, cp-2, cp-3 (3 member(s))"
    assert bootstrap_calls(lab_cluster) == 1 and first.fabric.etcd(first.etcd_cluster_id()).members == members


def test_a_reinstalled_first_control_plane_joins_the_running_etcd_and_is_marked_again(
    bootstrapped: TalosContext, server: ProviderServer, lab_cluster: LabCluster
) -> None:
    first = lab_cluster.nodes["cp-1"]
    first.power_off()
    config = first.storage.read_state()
    first.storage.wipe_system_disk()  # a fresh disk: no etcd data, no META
    first.storage.install(TalosImage(lab_talos.TALOS_VERSION))
    first.storage.write_state(config)
    first.power_on()
    running(first)

    step = new_resource(server).up(inputs(lab_cluster))

    assert step.outputs["outcome"] == "adopted" and bootstrap_calls(lab_cluster) == 1
    marker = markers(lab_cluster, bootstrapped)["cp-1"]
    assert marker is not None and marker.node == "cp-1"  # copied from the other control planes
    assert "cp-1: bootstrap marker written" in server.stderr()


def lose_etcd(cluster: LabCluster) -> None:
    """Every control plane loses its etcd data (the cluster's etcd is gone); META stays."""
    control_planes = [node for name, node in cluster.nodes.items() if cluster.roles[name] == "controlplane"]
    fabric, cluster_id = control_planes[0].fabric, control_planes[0].etcd_cluster_id()
    for node in control_planes:
        node.power_off()
        node.storage.set_etcd_data(False)
    for member in fabric.etcd(cluster_id).members.values():
        fabric.remove_member(cluster_id, member.id)
    for node in control_planes:
        node.power_on()
    for node in control_planes:
        running(node)


def test_markers_without_etcd_refuse_with_the_fix_until_a_new_etcd_is_allowed(
    bootstrapped: TalosContext, server: ProviderServer, lab_cluster: LabCluster
) -> None:
    lose_etcd(lab_cluster)

    with pytest.raises(ProviderCallError) as raised:
        new_resource(server).up(inputs(lab_cluster))

    details = raised.value.details
    assert "refusing to bootstrap a second etcd: cp-1, cp-2, cp-3 carry this cluster's bootstrap marker" in details
    assert "bootstrap --recover-from=" in details and "allowNewEtcd: true" in details
    assert bootstrap_calls(lab_cluster) == 1

    step = new_resource(server).up(inputs(lab_cluster, allowNewEtcd=True))

    assert step.outputs["outcome"] == "bootstrapped" and bootstrap_calls(lab_cluster) == 2
    assert "starting a new, empty etcd although the cluster was bootstrapped on cp-1" in server.stderr()


def test_a_control_plane_added_later_gets_the_marker_when_the_node_list_changes(
    server: ProviderServer, talos_nodes: NodeFactory
) -> None:
    cluster = start_cluster(talos_nodes, {"cp-1": "controlplane", "worker-1": "worker"})
    resource = new_resource(server)
    context = TalosConfig.from_yaml(resource.up(inputs(cluster)).outputs["talosconfig"]).current()
    added = add_node(talos_nodes, cluster, "cp-2", "controlplane")
    added.wait_for(lambda n: n.etcd_state is EtcdState.HEALTHY, timeout=10)
    assert markers(cluster, context)["cp-2"] is None

    step = resource.up(inputs(cluster))

    found = markers(cluster, context)
    assert step.op == "update" and found["cp-2"] == found["cp-1"] and found["cp-1"] is not None
    log = server.stderr()
    assert "lab: cp-1: bootstrap marker present" in log and "lab: cp-2: bootstrap marker written" in log
