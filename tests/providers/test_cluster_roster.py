"""ClusterRoster through the SDK's dynamic-provider gRPC server, against clusters of standalone lab Talos nodes: check
(offline, the whole policy kept in the state), an update that takes a dropped control plane out of three — or
refuses the last one — with the policy of that very update, a destroy that touches no node, and nothing secret
leaking."""

from __future__ import annotations

from typing import Any

import pytest

from lab.talos.stages import Stage
from lab.talos.testing import NodeFactory
from providers.cluster_roster import ClusterRosterProvider
from talos.api.client import TalosClient
from talos.secrets import SecretsBundle
from tests.providers.harness import UNKNOWN, ProviderCallError, ProviderServer, ResourceDriver
from tests.talos.test_upgrade import LabCluster, start_cluster

TYPE = "pulumi-python:dynamic/talos:ClusterRoster"
FAST = {"gone": 30, "removal": 60}


@pytest.fixture
def resource(server: ProviderServer) -> ResourceDriver:
    return ResourceDriver(server, ClusterRosterProvider(), "lab-roster", TYPE)


def members(cluster: LabCluster) -> list[dict[str, Any]]:
    return [
        {"node": f"cp-{number}", "address": node.address, "role": "controlplane"}
        for number, node in enumerate(cluster.control_planes, 1)
    ]


def inputs(cluster: LabCluster, bundle: SecretsBundle, **overrides: Any) -> dict[str, Any]:
    base = {"members": members(cluster), "secretsYaml": bundle.to_yaml(), "policy": {}, "timeouts": FAST}
    return {**base, **overrides}


def without(cluster: LabCluster, node: str) -> list[dict[str, Any]]:
    return [member for member in members(cluster) if member["node"] != node]


def test_check_keeps_the_whole_policy_and_names_each_bad_input(resource: ResourceDriver, bundle: SecretsBundle) -> None:
    listed = [{"node": "cp-1", "address": "127.0.0.1", "role": "controlplane"}]
    good, _ = resource.preview({"members": listed, "secretsYaml": bundle.to_yaml(), "policy": {"drain": False}})
    bad, _ = resource.preview(
        {
            "members": [*listed, {"node": "cp-1", "address": "", "role": "master"}, "cp-3"],
            "secretsYaml": bundle.to_yaml(),
            "policy": {"reset": "all"},
            "talosPort": 0,
            "timeouts": {"confirm": 1},
            "kubeconfig": "clusters: []",
        }
    )
    empty, _ = resource.preview({"members": [], "secretsYaml": bundle.to_yaml()})
    unknown, _ = resource.preview({"members": UNKNOWN, "secretsYaml": UNKNOWN, "policy": UNKNOWN})

    assert good.failures == [] and good.inputs["policy"] == {"drain": False, "reset": "config", "reboot": True}
    reasons = [f"{name}: {reason}" for name, reason in bad.failures]
    assert reasons[:3] == [
        "members: entry 2: node 'cp-1' is listed twice (fix: give each node its own name)",
        "members: entry 2: address must be an address (`host` or `host:port`)",
        "members: entry 2: role 'master' is not one of controlplane, worker",
    ]
    assert reasons[3] == "members: entry 3: must be {node, address, role}, not 'cp-3'"
    assert [name for name, _ in bad.failures[4:]] == ["kubeconfig", "policy", "talosPort", "timeouts"]
    assert "is not one of none, config, system-disk" in dict(bad.failures)["policy"]
    assert "fix: pass every node's ClusterMember" in empty.failures[0][1]
    assert unknown.failures == []


def test_deleting_cloud_servers_needs_the_cloud_token_and_a_server_id(
    resource: ResourceDriver, bundle: SecretsBundle
) -> None:
    listed = [{"node": "worker-2", "address": "127.0.0.1", "role": "worker", "cloudServerId": "big"}]

    checked, _ = resource.preview({"members": listed, "secretsYaml": bundle.to_yaml(), "deleteCloudServers": True})

    assert [f"{name}: {reason}" for name, reason in checked.failures] == [
        "members: entry 1: cloudServerId 'big' is not a Cloud server id",
        "deleteCloudServers: needs the Cloud API token in the stack config (fix: pulumi config set --secret "
        "hcloudToken <a read & write Cloud token>, or set hcloud:token)",
    ]


def test_create_and_settings_touch_no_node(resource: ResourceDriver, three: LabCluster, bundle: SecretsBundle) -> None:
    for node in three.control_planes:
        node.close()  # any call to a node would now fail

    created = resource.up(inputs(three, bundle))
    updated = resource.up(inputs(three, bundle, policy={"reset": "none"}))

    assert created.op == "create" and updated.op == "update"
    assert updated.outputs["policy"] == {"drain": True, "reset": "none", "reboot": True}


def test_dropping_a_control_plane_takes_it_out_of_three(
    resource: ResourceDriver, server: ProviderServer, three: LabCluster, bundle: SecretsBundle
) -> None:
    first, second, third = three.control_planes
    resource.up(inputs(three, bundle, policy={"reset": "none"}))

    step = resource.up(inputs(three, bundle, members=without(three, "cp-2"), policy={"reset": "config"}))

    assert step.op == "update" and [m["node"] for m in step.outputs["members"]] == ["cp-1", "cp-3"]
    with TalosClient(first.address, three.admin) as client:
        assert sorted(m.hostname for m in client.etcd_members()) == sorted([first.hostname, third.hostname])
    assert second.stage is Stage.MAINTENANCE  # the policy given with the removal itself: reset the config
    assert "cp-2: removed: left etcd, reset (config) (" in server.stderr()


def test_dropping_the_last_control_plane_is_refused(
    resource: ResourceDriver, talos_nodes: NodeFactory, bundle: SecretsBundle
) -> None:
    cluster = start_cluster(talos_nodes, bundle, "v1.13.9", control_planes=1)
    resource.up(inputs(cluster, bundle))
    stand_in = [{"node": "cp-9", "address": "127.0.0.9", "role": "controlplane"}]

    with pytest.raises(ProviderCallError) as raised:
        resource.up(inputs(cluster, bundle, members=stand_in))

    assert "cp-1: quorum check: it is the cluster's last control plane (fix: " in raised.value.details
    assert cluster.control_planes[0].ready()


def test_destroy_touches_no_node(
    resource: ResourceDriver, server: ProviderServer, three: LabCluster, bundle: SecretsBundle
) -> None:
    resource.up(inputs(three, bundle))

    resource.destroy()

    with TalosClient(three.control_planes[0].address, three.admin) as client:
        assert len(client.etcd_members()) == 3
    assert all(node.ready() for node in three.control_planes)
    assert "roster: forgotten (cp-1, cp-2, cp-3); every node keeps running" in server.stderr()


def test_secrets_never_in_blob_logs_or_errors(
    resource: ResourceDriver, server: ProviderServer, three: LabCluster, bundle: SecretsBundle
) -> None:
    kubeconfig = three.kubeconfig()
    resource.up(inputs(three, bundle, kubeconfig=kubeconfig))
    three.control_planes[2].power_off()
    with pytest.raises(ProviderCallError) as raised:
        resource.up(inputs(three, bundle, kubeconfig=kubeconfig, members=without(three, "cp-2")))  # quorum would break
    assert "quorum check" in raised.value.details
    assert resource.leaked_cluster_secrets(bundle.to_yaml(), kubeconfig, raised.value) == []
