"""ClusterMember through the SDK's dynamic-provider gRPC server, against clusters of standalone lab Talos nodes: check
(offline), create recording the membership, diffs that never replace, and a delete that touches no node."""

from __future__ import annotations

from typing import Any

import pytest

from lab.talos.testing import NodeFactory
from providers.cluster_member import ClusterMemberProvider
from talos.api.client import TalosClient
from talos.secrets import SecretsBundle
from tests.providers.harness import UNKNOWN, ProviderCallError, ProviderServer, ResourceDriver
from tests.talos.test_upgrade import LabCluster

TYPE = "pulumi-python:dynamic/talos:ClusterMember"
FAST = {"confirm": 10}


@pytest.fixture
def resource(server: ProviderServer) -> ResourceDriver:
    return ResourceDriver(server, ClusterMemberProvider(), "cp-2-member", TYPE)


def inputs(cluster: LabCluster, bundle: SecretsBundle, number: int = 1, **overrides: Any) -> dict[str, Any]:
    """The ClusterMember of control plane `number` (0-based)."""
    base = {
        "node": f"cp-{number + 1}",
        "address": cluster.control_planes[number].address,
        "role": "controlplane",
        "secretsYaml": bundle.to_yaml(),
        "controlPlanes": cluster.endpoints,
        "timeouts": FAST,
    }
    return {**base, **overrides}


def test_check_keeps_the_whole_policy_and_names_each_bad_input(resource: ResourceDriver, bundle: SecretsBundle) -> None:
    good, _ = resource.preview(inputs_without_nodes(bundle))
    bad, _ = resource.preview(
        {
            **inputs_without_nodes(bundle),
            "address": "",
            "role": "master",
            "controlPlanes": [],
            "talosPort": 0,
            "timeouts": {"later": 1},
            "kubeconfig": "clusters: []",
        }
    )
    unknown, _ = resource.preview({**inputs_without_nodes(bundle), "secretsYaml": UNKNOWN, "address": UNKNOWN})

    assert good.failures == []
    names = ["address", "role", "kubeconfig", "controlPlanes", "talosPort", "timeouts"]
    assert [name for name, _ in bad.failures] == names
    assert all(reason.startswith("cp-2: ") for _, reason in bad.failures)
    assert "unknown timeout(s) later (fix: use confirm)" in dict(bad.failures)["timeouts"]
    assert unknown.failures == []


def inputs_without_nodes(bundle: SecretsBundle) -> dict[str, Any]:
    return {
        "node": "cp-2",
        "address": "127.0.0.1",
        "role": "controlplane",
        "secretsYaml": bundle.to_yaml(),
        "controlPlanes": ["127.0.0.1"],
    }


def test_create_records_the_etcd_member_and_the_kubernetes_node(
    resource: ResourceDriver, three: LabCluster, bundle: SecretsBundle
) -> None:
    node = three.control_planes[1]
    with TalosClient(node.address, three.admin) as client:
        member_id = client.etcd_status().member_id
        kubeconfig = client.kubeconfig()

    step = resource.up(inputs(three, bundle, kubeconfig=kubeconfig))

    assert step.op == "create"
    assert (step.outputs["etcdMemberId"], step.outputs["kubernetesNode"]) == (str(member_id), node.hostname)


def test_create_refuses_a_node_that_is_not_a_member(
    resource: ResourceDriver, three: LabCluster, bundle: SecretsBundle, talos_nodes: NodeFactory
) -> None:
    stranger = talos_nodes.start()  # maintenance mode: never configured for this cluster

    with pytest.raises(ProviderCallError, match="cp-2: checking membership: "):
        resource.up(inputs(three, bundle, address=stranger.address, timeouts={**FAST, "confirm": 0.5}))


def test_no_change_replaces_and_settings_touch_no_node(
    resource: ResourceDriver, three: LabCluster, bundle: SecretsBundle
) -> None:
    created = resource.up(inputs(three, bundle)).outputs

    _, moved = resource.preview(inputs(three, bundle, address=three.control_planes[2].address, role="worker"))
    three.control_planes[1].close()  # any call to the node would now fail
    step = resource.up(inputs(three, bundle, timeouts={"confirm": 5}))

    assert moved is not None and (moved.changes, moved.replaces) == ("some", [])
    assert step.op == "update" and step.outputs["timeouts"] == {"confirm": 5}
    assert step.outputs["etcdMemberId"] == created["etcdMemberId"]


def test_delete_touches_no_node(resource: ResourceDriver, three: LabCluster, bundle: SecretsBundle) -> None:
    resource.up(inputs(three, bundle))

    resource.destroy()

    with TalosClient(three.control_planes[0].address, three.admin) as client:
        assert len(client.etcd_members()) == 3
    assert all(node.ready() for node in three.control_planes)


def test_secrets_never_in_blob_logs_or_errors(
    resource: ResourceDriver, server: ProviderServer, three: LabCluster, bundle: SecretsBundle, talos_nodes: NodeFactory
) -> None:
    kubeconfig = three.kubeconfig()
    resource.up(inputs(three, bundle, kubeconfig=kubeconfig))
    stranger = talos_nodes.start()
    with pytest.raises(ProviderCallError) as raised:
        resource.up(inputs(three, bundle, kubeconfig=kubeconfig, address=stranger.address, timeouts={"confirm": 0.5}))
    assert "checking membership" in raised.value.details
    assert resource.leaked_cluster_secrets(bundle.to_yaml(), kubeconfig, raised.value) == []
