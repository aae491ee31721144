"""TalosUpgrade through the SDK's dynamic-provider gRPC server, against small clusters of standalone lab Talos
nodes: check (offline, default installer), diff (what upgrades, what touches nothing), create as a no-op on a node
on target, update upgrading, a re-run resuming after a failed update, refresh, and what must never leak."""

from __future__ import annotations

from typing import Any

import pytest

from lab.talos.testing import NodeFactory
from providers.talos_upgrade import TalosUpgradeProvider
from talos.api.client import TalosClient
from talos.secrets import SecretsBundle
from tests.providers.harness import UNKNOWN, ProviderCallError, ProviderServer, ResourceDriver
from tests.talos.test_upgrade import LabCluster, start_cluster

TYPE = "pulumi-python:dynamic/talos:TalosUpgrade"


@pytest.fixture
def resource(server: ProviderServer) -> ResourceDriver:
    return ResourceDriver(server, TalosUpgradeProvider(), "cp-1-upgrade", TYPE)


@pytest.fixture
def on_1_13_8(talos_nodes: NodeFactory, bundle: SecretsBundle) -> LabCluster:
    return start_cluster(talos_nodes, bundle, "v1.13.8")


def inputs(control_planes: list[str], bundle: SecretsBundle, version: str, **overrides: Any) -> dict[str, Any]:
    """The first control plane's TalosUpgrade."""
    base = {
        "node": "cp-1",
        "address": control_planes[0],
        "secretsYaml": bundle.to_yaml(),
        "talosVersion": version,
        "controlPlanes": control_planes,
        "cni": "none",
        "timeouts": {"upgrade": 20},
    }
    return {**base, **overrides}


def test_check_fills_the_default_installer_and_names_each_bad_input(
    resource: ResourceDriver, bundle: SecretsBundle
) -> None:
    control_planes = ["127.0.0.1"]
    good, _ = resource.preview(inputs(control_planes, bundle, "v1.13.9"))
    bad_timeouts = {"upgrade": 0, "later": 1}
    bad, _ = resource.preview(
        inputs(control_planes, bundle, "v1.11.0", address="", secretsYaml="", controlPlanes=[], timeouts=bad_timeouts)
    )
    mismatch, _ = resource.preview(
        inputs(control_planes, bundle, "v1.13.9", installerImage="example.com/installer:v1.13.8")
    )
    unknown, _ = resource.preview(inputs(control_planes, bundle, UNKNOWN, secretsYaml=UNKNOWN, controlPlanes=UNKNOWN))

    assert good.failures == [] and good.inputs["installerImage"] == "ghcr.io/siderolabs/installer:v1.13.9"
    names = ["address", "secretsYaml", "talosVersion", "controlPlanes", "timeouts", "timeouts"]
    assert [name for name, _ in bad.failures] == names
    assert all(reason.startswith("cp-1: ") for _, reason in bad.failures)
    assert "installs v1.13.8, but talosVersion is v1.13.9 (fix: " in dict(mismatch.failures)["installerImage"]
    assert unknown.failures == [] and "installerImage" not in unknown.inputs


def test_create_on_a_node_already_on_target_is_a_no_op(
    resource: ResourceDriver, server: ProviderServer, talos_nodes: NodeFactory, bundle: SecretsBundle
) -> None:
    cluster = start_cluster(talos_nodes, bundle, "v1.13.9")

    step = resource.up(inputs(cluster.endpoints, bundle, "v1.13.9"))

    assert step.op == "create" and (step.outputs["outcome"], step.outputs["version"]) == (
        "already on target",
        "v1.13.9",
    )
    assert cluster.control_planes[0].boots == 1
    assert "cp-1: already runs v1.13.9" in server.stderr()


def test_version_change_is_an_update_that_upgrades(
    resource: ResourceDriver, server: ProviderServer, on_1_13_8: LabCluster, bundle: SecretsBundle
) -> None:
    resource.up(inputs(on_1_13_8.endpoints, bundle, "v1.13.8"))

    _, diff = resource.preview(inputs(on_1_13_8.endpoints, bundle, "v1.13.9"))
    step = resource.up(inputs(on_1_13_8.endpoints, bundle, "v1.13.9"))

    assert diff is not None and (diff.changes, diff.replaces) == ("some", [])
    assert step.op == "update" and (step.outputs["outcome"], step.outputs["version"]) == ("upgraded", "v1.13.9")
    assert on_1_13_8.control_planes[0].version == "v1.13.9"
    assert "cp-1: upgraded from v1.13.8 to v1.13.9" in server.stderr()


def test_changes_that_need_no_upgrade_touch_no_node(
    resource: ResourceDriver, on_1_13_8: LabCluster, bundle: SecretsBundle
) -> None:
    created = resource.up(inputs(on_1_13_8.endpoints, bundle, "v1.13.8")).outputs
    on_1_13_8.control_planes[0].close()  # any call to the node would now fail

    _, unchanged = resource.preview(inputs(on_1_13_8.endpoints, bundle, "v1.13.8"))
    step = resource.up(inputs(on_1_13_8.endpoints, bundle, "v1.13.8", timeouts={"upgrade": 60, "health": 30}))

    assert unchanged is not None and unchanged.changes == "none"
    assert step.op == "update" and step.outputs["timeouts"] == {"upgrade": 60, "health": 30}
    assert (step.outputs["version"], step.outputs["outcome"]) == (created["version"], created["outcome"])


def test_update_with_a_kubeconfig_drains_the_node_and_uncordons_it_after(
    resource: ResourceDriver, server: ProviderServer, on_1_13_8: LabCluster, bundle: SecretsBundle
) -> None:
    node = on_1_13_8.control_planes[0]
    pods = on_1_13_8.workloads()
    pods.add_pod("web-1", node.hostname)
    kubeconfig = on_1_13_8.kubeconfig()
    resource.up(inputs(on_1_13_8.endpoints, bundle, "v1.13.8", kubeconfig=kubeconfig))

    step = resource.up(inputs(on_1_13_8.endpoints, bundle, "v1.13.9", kubeconfig=kubeconfig))

    assert step.outputs["outcome"] == "upgraded" and node.version == "v1.13.9"
    assert pods.pod_names(node.hostname) == [] and not pods.cordoned(node.hostname)
    log = server.stderr()
    assert log.index(f"cp-1: cordoned {node.hostname}") < log.index("cp-1: rebooting into the new version")
    assert log.index("cp-1: runs v1.13.9") < log.index(f"cp-1: uncordoned {node.hostname}")


def test_kubeconfig_change_alone_touches_no_node_and_a_bad_one_is_named(
    resource: ResourceDriver, on_1_13_8: LabCluster, bundle: SecretsBundle
) -> None:
    created = resource.up(inputs(on_1_13_8.endpoints, bundle, "v1.13.8")).outputs
    kubeconfig = on_1_13_8.kubeconfig()
    on_1_13_8.control_planes[0].close()  # any call to the node would now fail

    checked, diff = resource.preview(inputs(on_1_13_8.endpoints, bundle, "v1.13.8", kubeconfig=kubeconfig))
    bad, _ = resource.preview(inputs(on_1_13_8.endpoints, bundle, "v1.13.8", kubeconfig="clusters: []"))
    step = resource.up(inputs(on_1_13_8.endpoints, bundle, "v1.13.8", kubeconfig=kubeconfig))

    assert checked.failures == [] and diff is not None and (diff.changes, diff.replaces) == ("some", [])
    assert [name for name, _ in bad.failures] == ["kubeconfig"]
    assert step.op == "update" and step.outputs["outcome"] == created["outcome"]


def test_rerun_after_a_failed_update_resumes_without_upgrading_again(
    resource: ResourceDriver, on_1_13_8: LabCluster, bundle: SecretsBundle
) -> None:
    node = on_1_13_8.control_planes[0]
    resource.up(inputs(on_1_13_8.endpoints, bundle, "v1.13.8"))
    node.slow_next_boot(1.0)  # installed, but back only after the update's deadline

    with pytest.raises(ProviderCallError, match=r"cp-1: coming back: gave up waiting for the node on v1\.13\.9"):
        resource.up(inputs(on_1_13_8.endpoints, bundle, "v1.13.9", timeouts={"upgrade": 0.6}))
    node.wait_for(lambda n: n.ready())
    step = resource.up(inputs(on_1_13_8.endpoints, bundle, "v1.13.9"))

    assert step.op == "update" and step.outputs["outcome"] == "already on target"
    assert (node.version, node.boots) == ("v1.13.9", 2)


def test_refresh_reads_the_live_version_and_the_next_up_restores_the_target(
    resource: ResourceDriver, on_1_13_8: LabCluster, bundle: SecretsBundle
) -> None:
    node = on_1_13_8.control_planes[0]
    resource.up(inputs(on_1_13_8.endpoints, bundle, "v1.13.8"))
    with TalosClient(node.address, on_1_13_8.admin) as client:
        client.upgrade("ghcr.io/siderolabs/installer:v1.13.7")  # out of band
    node.wait_for(lambda n: n.boots == 2 and n.ready())

    resource.refresh()
    refreshed = resource.outputs["version"]
    _, diff = resource.preview(inputs(on_1_13_8.endpoints, bundle, "v1.13.8"))
    step = resource.up(inputs(on_1_13_8.endpoints, bundle, "v1.13.8"))

    assert refreshed == "v1.13.7" and diff is not None and diff.changes == "some"
    assert (step.outputs["outcome"], node.version) == ("upgraded", "v1.13.8")


def test_refresh_of_an_unreachable_node_and_delete_keep_and_touch_nothing(
    resource: ResourceDriver, on_1_13_8: LabCluster, bundle: SecretsBundle
) -> None:
    before = dict(resource.up(inputs(on_1_13_8.endpoints, bundle, "v1.13.8")).outputs)
    on_1_13_8.control_planes[0].close()

    resource.refresh()
    assert resource.outputs == before
    resource.destroy()
    assert resource.id is None


def test_secrets_never_in_blob_logs_or_errors(
    resource: ResourceDriver, server: ProviderServer, on_1_13_8: LabCluster, bundle: SecretsBundle
) -> None:
    kubeconfig = on_1_13_8.kubeconfig()
    resource.up(inputs(on_1_13_8.endpoints, bundle, "v1.13.8", kubeconfig=kubeconfig))
    resource.up(inputs(on_1_13_8.endpoints, bundle, "v1.13.9", kubeconfig=kubeconfig))
    bad_image = "registry.example.com/siderolabs/installer:v1.13.8"
    with pytest.raises(ProviderCallError) as raised:
        resource.up(inputs(on_1_13_8.endpoints, bundle, "v1.13.8", installerImage=bad_image, kubeconfig=kubeconfig))
    assert "pulling the installer image" in raised.value.details
    assert resource.leaked_cluster_secrets(bundle.to_yaml(), kubeconfig, raised.value) == []
