"""KubernetesUpgrade through the SDK's dynamic-provider gRPC server, against a small lab cluster: check (offline,
the upgrade path against the old state), diff (what rolls, what touches nothing), create as a fast
converge on a cluster on target, update rolling, and refresh reading kube-apiserver's version."""

from __future__ import annotations

from typing import Any

import pytest

from lab.talos.testing import NodeFactory
from providers.kubernetes_upgrade import SECRET_OUTPUTS, KubernetesUpgradeArgs, KubernetesUpgradeProvider
from providers.registration import camel_props
from talos.secrets import SecretsBundle
from tests.providers.harness import UNKNOWN, ProviderServer, ResourceDriver
from tests.talos.test_kubernetes_upgrade import LabCluster, start_cluster

TYPE = "pulumi-python:dynamic/talos:KubernetesUpgrade"


@pytest.fixture
def resource(server: ProviderServer) -> ResourceDriver:
    return ResourceDriver(server, KubernetesUpgradeProvider(), "lab-kubernetes", TYPE)


@pytest.fixture
def cluster(talos_nodes: NodeFactory, bundle: SecretsBundle) -> LabCluster:
    return start_cluster(talos_nodes, bundle, control_planes=1, workers=1)


def inputs(cluster: LabCluster | None, bundle: SecretsBundle, version: str, **overrides: Any) -> dict[str, Any]:
    members = cluster.members if cluster else []
    nodes = [
        {"name": m.name, "address": m.address, "role": "controlplane" if m.control_plane else "worker"} for m in members
    ] or [{"name": "cp-1", "address": "127.0.0.1", "role": "controlplane"}]
    base = {
        "clusterName": "lab",
        "nodes": nodes,
        "secretsYaml": bundle.to_yaml(),
        "kubeconfig": cluster.kubeconfig if cluster else "kubeconfig",
        "kubernetesVersion": version,
        "cni": "none",
        "timeouts": {"upgrade": 30, "step": 10},
    }
    return {**base, **overrides}


def test_check_names_each_bad_input(resource: ResourceDriver, bundle: SecretsBundle) -> None:
    good, _ = resource.preview(inputs(None, bundle, "1.36.3"))
    bad, _ = resource.preview(
        inputs(None, bundle, "1.36", nodes=[], kubeconfig="", timeouts={"step": 0, "later": 1}, cni="")
    )
    unknown, _ = resource.preview(inputs(None, bundle, UNKNOWN, kubeconfig=UNKNOWN, nodes=UNKNOWN))

    assert good.failures == []
    names = ["nodes", "kubeconfig", "kubernetesVersion", "cni", "timeouts", "timeouts"]
    assert [name for name, _ in bad.failures] == names
    assert "not a release like 'v1.36.4' (fix: " in dict(bad.failures)["kubernetesVersion"]
    assert unknown.failures == []


def test_check_refuses_a_skipped_or_lowered_minor_against_the_old_state(
    resource: ResourceDriver, server: ProviderServer, bundle: SecretsBundle
) -> None:
    olds = inputs(None, bundle, "1.35.4")
    skipped = server.check(resource.urn, olds, {**inputs(None, bundle, "1.37.0"), "__provider": resource.blob})
    lowered = server.check(resource.urn, olds, {**inputs(None, bundle, "1.34.9"), "__provider": resource.blob})
    next_minor = server.check(resource.urn, olds, {**inputs(None, bundle, "1.36.1"), "__provider": resource.blob})

    assert "skips a minor version" in dict(skipped.failures)["kubernetesVersion"]
    assert "fix: go to v1.36.x first" in dict(skipped.failures)["kubernetesVersion"]
    assert "lowers the minor version" in dict(lowered.failures)["kubernetesVersion"]
    assert next_minor.failures == []


def test_create_converges_fast_and_a_version_change_is_an_update_that_rolls(
    resource: ResourceDriver, server: ProviderServer, cluster: LabCluster, bundle: SecretsBundle
) -> None:
    created = resource.up(inputs(cluster, bundle, "1.35.4"))
    _, diff = resource.preview(inputs(cluster, bundle, "1.36.3"))
    updated = resource.up(inputs(cluster, bundle, "1.36.3"))

    assert created.op == "create" and (created.outputs["outcome"], created.outputs["version"]) == (
        "already on target",
        "v1.35.4",
    )
    assert diff is not None and (diff.changes, diff.replaces) == ("some", [])
    assert updated.op == "update" and (updated.outputs["outcome"], updated.outputs["version"]) == (
        "upgraded",
        "v1.36.3",
    )
    assert all(node.components.version("kubelet") == "v1.36.3" for node in cluster.nodes)
    assert "kube-apiserver: v1.35.4 -> v1.36.3" in server.stderr()


def test_same_inputs_are_no_diff_and_settings_touch_nothing(
    resource: ResourceDriver, cluster: LabCluster, bundle: SecretsBundle
) -> None:
    resource.up(inputs(cluster, bundle, "1.35.4"))
    for node in cluster.nodes:
        node.close()  # any call to the cluster would now fail

    _, unchanged = resource.preview(inputs(cluster, bundle, "1.35.4"))
    step = resource.up(inputs(cluster, bundle, "1.35.4", timeouts={"upgrade": 60}))

    assert unchanged is not None and unchanged.changes == "none"
    assert step.op == "update" and step.outputs["timeouts"] == {"upgrade": 60}
    assert step.outputs["outcome"] == "already on target"


def test_refresh_reads_the_live_version_and_drift_rolls_back(
    resource: ResourceDriver, cluster: LabCluster, bundle: SecretsBundle
) -> None:
    resource.up(inputs(cluster, bundle, "1.35.4"))
    resource.outputs = {**resource.outputs, "version": "v1.35.2"}  # as if someone rolled kube-apiserver back

    resource.refresh()
    live = resource.outputs["version"]
    resource.outputs = {**resource.outputs, "version": "v1.35.2"}
    _, drifted = resource.preview(inputs(cluster, bundle, "1.35.4"))

    assert live == "v1.35.4"
    assert drifted is not None and drifted.changes == "some"


def test_secrets_are_secret_outputs_and_never_in_the_args_repr() -> None:
    args = KubernetesUpgradeArgs("lab", [], "BUNDLE-TEXT", "KUBECONFIG-TEXT", "1.35.4")

    assert set(SECRET_OUTPUTS) == {"secretsYaml", "kubeconfig"} and set(SECRET_OUTPUTS) <= set(camel_props(args))
    assert "BUNDLE-TEXT" not in repr(args) and "KUBECONFIG-TEXT" not in repr(args)
