"""TalosMachineConfig drift and Kubernetes images, through the SDK's dynamic-provider gRPC server against standalone
lab Talos nodes: refresh reads the running config (drift, a node rebooting, down, or reset to maintenance mode), the
next up restores the declared config, and the Kubernetes component images stay with the node once it exists."""

from __future__ import annotations

from typing import Any

import pytest

from lab.talos.node import TalosNode
from providers.talos_machine_config import TalosMachineConfigProvider
from talos.api.client import TalosClient
from talos.compare import MASK, configs_equal
from talos.documents import dump_documents, parse_documents
from talos.kubernetes_images import component_images, image_version, pinned_to
from talos.secrets import SecretsBundle
from tests.providers.harness import ProviderServer, ResourceDriver
from tests.providers.test_talos_machine_config import (
    LABEL_PATCH,
    TYPE,
    VERSION,
    admin,
    inputs,
    node,
    resource,
    running_config,
    secret_values,
)

__all__ = ["node", "resource"]  # fixtures

BRONZE = "machine:\n    nodeLabels:\n        tier: bronze\n"
SILVER_PATCH = "machine:\n    nodeLabels:\n        tier: silver\n"
DECLARED_KUBERNETES = "v1.36.3"


@pytest.fixture
def configured(resource: ResourceDriver, node: TalosNode, bundle: SecretsBundle) -> ResourceDriver:
    resource.up(inputs(node, bundle, LABEL_PATCH))
    return resource


def apply_out_of_band(node: TalosNode, bundle: SecretsBundle, change: Any) -> None:
    """What an operator does with talosctl: apply a changed copy of the running config (no reboot)."""
    with TalosClient(node.address, admin(bundle)) as client:
        documents = change(parse_documents(client.machine_config()))
        result = client.apply_configuration(dump_documents(documents), mode="no-reboot")
    assert result.mode == "no-reboot"


def relabel(tier: str) -> Any:
    def change(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
        documents[0]["machine"]["nodeLabels"]["tier"] = tier
        return documents

    return change


def kubernetes_versions(config: str) -> set[str]:
    return {image_version(image) for image in component_images(parse_documents(config)).values()}


# --- refresh: drift ------------------------------------------------------------------------------------------


def test_refresh_of_a_node_running_its_config_keeps_the_state(configured: ResourceDriver) -> None:
    before = dict(configured.outputs)

    configured.refresh()

    assert configured.outputs == before and before["live"] == "applied"


def test_refresh_after_an_out_of_band_change_shows_it_redacted_and_up_restores_it(
    configured: ResourceDriver, server: ProviderServer, node: TalosNode, bundle: SecretsBundle
) -> None:
    apply_out_of_band(node, bundle, relabel("bronze"))

    configured.refresh()

    out = configured.outputs
    assert out["live"] == "drifted" and "tier: bronze" in out["machineConfig"]
    assert out["configRedacted"]["v1alpha1"]["machine"]["nodeLabels"]["tier"] == "bronze"
    assert out["configRedacted"]["v1alpha1"]["machine"]["token"] == MASK
    log = server.stderr()
    diff = [line.removeprefix("cp-1:   ") for line in log.splitlines() if line.startswith("cp-1:   ")]
    assert "cp-1: drift: it runs another config" in log
    assert [line.split() for line in diff if "tier:" in line] == [["-", "tier:", "gold"], ["+", "tier:", "bronze"]]
    assert not [value for value in secret_values(bundle) if value in log or value in repr(out["configRedacted"])]
    _, diff = configured.preview(inputs(node, bundle, LABEL_PATCH))
    assert diff is not None and (diff.changes, diff.replaces) == ("some", [])

    step = configured.up(inputs(node, bundle, LABEL_PATCH))

    assert step.op == "update" and step.outputs["live"] == "applied"
    assert step.outputs["applied"]["mode"] == "no-reboot" and "tier: gold" in running_config(node, bundle)
    assert configs_equal(running_config(node, bundle), step.outputs["machineConfig"])
    _, settled = configured.preview(inputs(node, bundle, LABEL_PATCH))
    assert settled is not None and settled.changes == "none"


def test_read_after_a_drift_rewrites_the_stored_redacted_rendering_for_preview(
    configured: ResourceDriver, node: TalosNode, bundle: SecretsBundle
) -> None:
    """`preview --diff` shows old inputs against new ones: the drifted rendering must be in the inputs too."""
    apply_out_of_band(node, bundle, relabel("bronze"))

    result = TalosMachineConfigProvider().read(str(configured.id), configured.outputs)

    assert result.inputs is not None and result.inputs["configRedacted"] == result.outs["configRedacted"]
    assert result.inputs["configRedacted"]["v1alpha1"]["machine"]["nodeLabels"]["tier"] == "bronze"
    assert result.inputs["secretsYaml"] == configured.outputs["secretsYaml"]  # still marked secret by the engine
    assert all(result.inputs[key] is None for key in ("machineConfig", "configSha256", "live"))
    assert "__provider" not in result.inputs


def test_read_of_an_unchanged_node_leaves_the_inputs_alone(configured: ResourceDriver) -> None:
    result = TalosMachineConfigProvider().read(str(configured.id), configured.outputs)

    assert result.inputs is None and result.outs == configured.outputs


def test_refresh_of_a_rebooting_node_waits_for_it_briefly(
    configured: ResourceDriver, node: TalosNode, bundle: SecretsBundle
) -> None:
    apply_out_of_band(node, bundle, relabel("bronze"))
    node.refuse_connections(2)

    configured.refresh()

    assert configured.outputs["live"] == "drifted"


def test_refresh_of_a_node_that_stays_down_keeps_the_state(
    configured: ResourceDriver, server: ProviderServer, node: TalosNode, bundle: SecretsBundle
) -> None:
    configured.up(inputs(node, bundle, LABEL_PATCH, timeout=2))  # settings only: bounds the read's patience
    before = dict(configured.outputs)
    node.close()

    configured.refresh()

    assert configured.id is not None and configured.outputs == before
    assert "cp-1: could not read its running config, the state is kept as it was" in server.stderr()


def test_refresh_of_a_node_reset_to_maintenance_marks_it_and_up_applies_again(
    configured: ResourceDriver, server: ProviderServer, node: TalosNode, bundle: SecretsBundle
) -> None:
    with TalosClient(node.address, admin(bundle)) as client:
        client.reset(graceful=False, reboot=True, wipe_labels=["STATE", "EPHEMERAL"])
    node.wait_for(lambda n: n.maintenance and n.stage.value == "maintenance", timeout=20)

    configured.refresh()

    out = configured.outputs
    assert out["live"] == "maintenance" and not (out["machineConfig"] or out["configSha256"] or out["configRedacted"])
    assert "cp-1: in maintenance mode: it runs no machine config" in server.stderr()

    step = configured.up(inputs(node, bundle, LABEL_PATCH))

    assert step.op == "update" and step.outputs["applied"]["how"] == "maintenance"
    assert configs_equal(running_config(node, bundle), step.outputs["machineConfig"])


# --- Kubernetes images belong to the Kubernetes upgrade ----------------------------------------------------


def with_kubernetes(node: TalosNode, bundle: SecretsBundle, version: str, *patches: str) -> dict[str, Any]:
    cluster = {
        "clusterName": "lab",
        "endpoint": f"https://{node.address}:6443",
        "talosVersion": VERSION,
        "kubernetesVersion": version,
    }
    return inputs(node, bundle, *patches, cluster=cluster)


def test_kubernetes_version_change_alone_updates_the_state_and_touches_no_node(
    configured: ResourceDriver, node: TalosNode, bundle: SecretsBundle
) -> None:
    before = dict(configured.outputs)
    node.close()  # any call to the node would now fail

    step = configured.up(with_kubernetes(node, bundle, "1.36.4", LABEL_PATCH))

    assert step.op == "update" and step.outputs["applied"] == before["applied"]
    assert step.outputs["machineConfig"] == before["machineConfig"]
    assert kubernetes_versions(step.outputs["machineConfig"]) == {DECLARED_KUBERNETES}
    assert step.outputs["declaredSha256"] != before["declaredSha256"]
    _, settled = configured.preview(with_kubernetes(node, bundle, "1.36.4", LABEL_PATCH))
    assert settled is not None and settled.changes == "none"


def test_images_moved_by_an_upgrade_are_no_drift_and_updates_keep_them(
    configured: ResourceDriver, server: ProviderServer, node: TalosNode, bundle: SecretsBundle
) -> None:
    apply_out_of_band(node, bundle, lambda documents: pinned_to(documents, "1.36.4"))  # as KubernetesUpgrade does

    configured.refresh()

    assert configured.outputs["live"] == "applied" and "drift" not in server.stderr()
    assert kubernetes_versions(configured.outputs["machineConfig"]) == {"v1.36.4"}
    _, diff = configured.preview(inputs(node, bundle, LABEL_PATCH))
    assert diff is not None and diff.changes == "none"

    step = configured.up(inputs(node, bundle, SILVER_PATCH))

    running = running_config(node, bundle)
    assert step.op == "update" and "tier: silver" in running
    assert kubernetes_versions(running) == {"v1.36.4"}
    assert "cp-1: keeps the Kubernetes images it runs (v1.36.4)" in server.stderr()


def test_update_without_a_refresh_reads_the_images_the_node_runs(
    configured: ResourceDriver, node: TalosNode, bundle: SecretsBundle
) -> None:
    apply_out_of_band(node, bundle, lambda documents: pinned_to(documents, "1.36.4"))

    configured.up(inputs(node, bundle, SILVER_PATCH))

    running = running_config(node, bundle)
    assert "tier: silver" in running and kubernetes_versions(running) == {"v1.36.4"}


def test_create_on_a_new_node_applies_the_declared_kubernetes_version(
    resource: ResourceDriver, node: TalosNode, bundle: SecretsBundle
) -> None:
    step = resource.up(with_kubernetes(node, bundle, "1.36.4"))

    assert kubernetes_versions(running_config(node, bundle)) == {"v1.36.4"}
    assert step.outputs["configSha256"] == step.outputs["declaredSha256"]


def test_a_second_resource_adopting_a_configured_node_keeps_its_images(
    configured: ResourceDriver, server: ProviderServer, node: TalosNode, bundle: SecretsBundle
) -> None:
    again = ResourceDriver(server, TalosMachineConfigProvider(), "cp-1-config", TYPE)  # state lost

    step = again.up(with_kubernetes(node, bundle, "1.36.4", LABEL_PATCH))

    assert step.outputs["applied"]["how"] == "adopted"
    assert kubernetes_versions(running_config(node, bundle)) == {DECLARED_KUBERNETES}
