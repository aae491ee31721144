"""TalosMachineConfig through the SDK's dynamic-provider gRPC server, against standalone lab Talos nodes:
check (offline validation, redacted rendering), semantic diff, create (maintenance apply, adopt), update with
each apply mode, and what must never leak."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from lab.talos.node import TalosNode
from lab.talos.testing import NodeFactory
from providers.talos_machine_config import TalosMachineConfigProvider
from talos.api.client import TalosClient
from talos.compare import MASK, configs_equal
from talos.secrets import SecretsBundle
from talos.talosconfig import TalosContext, issue_admin_certificate
from tests.providers.harness import UNKNOWN, ProviderCallError, ProviderServer, ResourceDriver

TYPE = "pulumi-python:dynamic/talos:TalosMachineConfig"
VERSION = "v1.13.9"
CLUSTER_PATCH = "cluster:\n    network:\n        cni:\n            name: none\n    proxy:\n        disabled: true\n"
LABEL_PATCH = "machine:\n    nodeLabels:\n        tier: gold\n"
ENV_PATCH = "machine:\n    env:\n        HTTP_PROXY: http://proxy.example:3128\n"
"""machine.env is not applied in place: Talos needs a reboot for it."""


@pytest.fixture
def resource(server: ProviderServer) -> ResourceDriver:
    return ResourceDriver(server, TalosMachineConfigProvider(), "cp-1-config", TYPE)


@pytest.fixture
def node(talos_nodes: NodeFactory) -> TalosNode:
    """A node in maintenance mode, waiting for its config."""
    return talos_nodes.start()


def inputs(node: TalosNode, bundle: SecretsBundle, *node_patches: str, **overrides: Any) -> dict[str, Any]:
    patches = [{"source": "cluster #1", "patch": CLUSTER_PATCH}, *hostname("cp-1")]
    patches += [{"source": f"node cp-1 #{n}", "patch": p} for n, p in enumerate(node_patches, 2)]
    base = {
        "node": "cp-1",
        "role": "controlplane",
        "address": node.address,
        "talosPort": node.port,
        "cluster": {"clusterName": "lab", "endpoint": f"https://{node.address}:6443", "talosVersion": VERSION},
        "secretsYaml": bundle.to_yaml(),
        "patches": patches,
        "machine": {"id": "robot-1"},
        "applyMode": "auto",
        "timeout": 20,
    }
    return {**base, **overrides}


def hostname(name: str) -> list[dict[str, str]]:
    patch = f'apiVersion: v1alpha1\nkind: HostnameConfig\nauto: "off"\nhostname: {name}\n'
    return [{"source": f"node {name} #1", "patch": patch}]


def admin(bundle: SecretsBundle) -> TalosContext:
    pair = issue_admin_certificate(bundle)
    return TalosContext(ca=bundle.os.crt, crt=pair.crt, key=pair.key)


def running_config(node: TalosNode, bundle: SecretsBundle, *, persistent: bool = False) -> str:
    with TalosClient(node.address, admin(bundle)) as client:
        return client.machine_config(persistent=persistent)


def secret_values(bundle: SecretsBundle) -> list[str]:
    return [
        bundle.cluster_secret,
        bundle.trustd_token,
        bundle.bootstrap_token,
        base64.b64encode(bundle.os.key).decode(),
        base64.b64encode(bundle.k8s.key).decode(),
    ]


# --- check: offline ------------------------------------------------------------------------------------------


def test_check_renders_a_redacted_config_into_the_inputs(
    resource: ResourceDriver, node: TalosNode, bundle: SecretsBundle
) -> None:
    checked, diff = resource.preview(inputs(node, bundle))

    assert checked.failures == [] and diff is None
    redacted = checked.inputs["configRedacted"]
    assert set(redacted) == {"v1alpha1", "HostnameConfig"}
    assert redacted["v1alpha1"]["machine"]["token"] == MASK and redacted["v1alpha1"]["cluster"]["secret"] == MASK
    assert redacted["v1alpha1"]["cluster"]["network"]["cni"] == {"name": "none"}
    assert redacted["HostnameConfig"]["hostname"] == "cp-1"
    shown = repr({key: value for key, value in checked.inputs.items() if key != "secretsYaml"})
    assert not [value for value in secret_values(bundle) if value in shown]


def test_check_bad_patch_names_node_patch_and_path(
    resource: ResourceDriver, node: TalosNode, bundle: SecretsBundle
) -> None:
    bad = "machine:\n    kubelet:\n        extraMounts: yes-please\n"

    checked, _ = resource.preview(inputs(node, bundle, bad))

    [(field, reason)] = checked.failures
    assert field == "patches"
    assert reason.startswith("cp-1: ") and "after patch node cp-1 #2" in reason
    assert "machine.kubelet.extraMounts" in reason


def test_check_unloadable_patch_names_its_source(
    resource: ResourceDriver, node: TalosNode, bundle: SecretsBundle
) -> None:
    checked, _ = resource.preview(inputs(node, bundle, "machine: [unclosed"))

    [(field, reason)] = checked.failures
    assert field == "patches" and reason.startswith("cp-1: node cp-1 #2: ")


def test_check_names_each_bad_setting(resource: ResourceDriver, node: TalosNode, bundle: SecretsBundle) -> None:
    bad = inputs(node, bundle, role="boss", address="", applyMode="sometimes", timeout=-1)

    checked, _ = resource.preview(bad)

    assert [name for name, _ in checked.failures] == ["role", "address", "applyMode", "timeout"]
    assert all(reason.startswith("cp-1: ") for _, reason in checked.failures)


def test_check_bad_cluster_option_names_it_and_the_fix(
    resource: ResourceDriver, node: TalosNode, bundle: SecretsBundle
) -> None:
    cluster = {"clusterName": "lab", "endpoint": "http://nowhere", "talosVersion": VERSION}

    checked, _ = resource.preview(inputs(node, bundle, cluster=cluster))

    [(field, reason)] = checked.failures
    assert field == "cluster" and "endpoint" in reason and "fix:" in reason


def test_check_unknown_secrets_in_preview_still_validates_patches(
    resource: ResourceDriver, node: TalosNode, bundle: SecretsBundle
) -> None:
    fine, _ = resource.preview(inputs(node, bundle, secretsYaml=UNKNOWN, address=UNKNOWN, installDisk=UNKNOWN))
    bad, _ = resource.preview(inputs(node, bundle, "machine:\n    kubelet: 7\n", secretsYaml=UNKNOWN))

    assert fine.failures == [] and fine.inputs["configRedacted"] == UNKNOWN
    assert [name for name, _ in bad.failures] == ["patches"]


# --- create ------------------------------------------------------------------------------------------------


def test_create_applies_in_maintenance_and_waits_for_mtls(
    resource: ResourceDriver, server: ProviderServer, node: TalosNode, bundle: SecretsBundle
) -> None:
    step = resource.up(inputs(node, bundle, LABEL_PATCH))

    out = step.outputs
    assert step.op == "create" and resource.id == f"cp-1@{node.address}"
    assert out["applied"]["how"] == "maintenance" and out["talosVersion"] == VERSION
    assert configs_equal(running_config(node, bundle), out["machineConfig"])
    assert node.config is not None and node.config.hostname == "cp-1"
    assert "cp-1: config applied in maintenance mode" in server.stderr()
    assert "cp-1: mTLS and the new running config: reached" in server.stderr()


def test_create_on_a_node_running_the_config_adopts_it(
    resource: ResourceDriver, server: ProviderServer, node: TalosNode, bundle: SecretsBundle
) -> None:
    resource.up(inputs(node, bundle))
    boots = node.boots

    again = ResourceDriver(server, TalosMachineConfigProvider(), "cp-1-config", TYPE)  # state lost mid-run
    step = again.up(inputs(node, bundle))

    assert step.outputs["applied"]["how"] == "adopted" and node.boots == boots


def test_create_on_a_node_of_another_cluster_refuses_with_the_reason(
    resource: ResourceDriver, talos_nodes: NodeFactory, bundle: SecretsBundle
) -> None:
    other = SecretsBundle.generate()
    stranger = talos_nodes.start()
    ResourceDriver(resource.server, TalosMachineConfigProvider(), "x", TYPE).up(inputs(stranger, other))

    with pytest.raises(ProviderCallError) as raised:
        resource.up(inputs(stranger, bundle))

    assert "cp-1: " in raised.value.details and "another cluster" in raised.value.details


def test_create_on_a_node_that_never_answers_gives_up_at_its_deadline(
    resource: ResourceDriver, talos_nodes: NodeFactory, bundle: SecretsBundle
) -> None:
    dead = talos_nodes.start(version=None)

    with pytest.raises(ProviderCallError) as raised:
        resource.up(inputs(dead, bundle, timeout=1))

    assert "cp-1: gave up waiting for cp-1 Talos API" in raised.value.details


# --- diff and update ---------------------------------------------------------------------------------------


@pytest.fixture
def configured(resource: ResourceDriver, node: TalosNode, bundle: SecretsBundle) -> ResourceDriver:
    resource.up(inputs(node, bundle, LABEL_PATCH))
    return resource


def test_diff_same_meaning_in_another_form_is_no_change(
    configured: ResourceDriver, node: TalosNode, bundle: SecretsBundle
) -> None:
    reformatted = '{"machine": {"nodeLabels": {"tier": "gold"}}}'

    _, diff = configured.preview(inputs(node, bundle, reformatted))

    assert diff is not None and diff.changes == "none"


def test_diff_patch_change_is_an_update_and_unknowns_count_as_change(
    configured: ResourceDriver, node: TalosNode, bundle: SecretsBundle
) -> None:
    _, changed = configured.preview(inputs(node, bundle, "machine:\n    nodeLabels:\n        tier: silver\n"))
    _, unknown = configured.preview(inputs(node, bundle, LABEL_PATCH, secretsYaml=UNKNOWN))

    assert changed is not None and (changed.changes, changed.replaces) == ("some", [])
    assert unknown is not None and unknown.changes == "some"


@pytest.mark.parametrize("change", [{"address": "127.0.0.2"}, {"machine": {"id": "robot-2"}}, {"role": "worker"}])
def test_diff_other_server_or_role_replaces(
    configured: ResourceDriver, node: TalosNode, bundle: SecretsBundle, change: dict
) -> None:
    _, diff = configured.preview(inputs(node, bundle, LABEL_PATCH, **change))

    assert diff is not None and diff.replaces == list(change)


def test_update_applies_in_place_without_reboot(
    configured: ResourceDriver, node: TalosNode, bundle: SecretsBundle
) -> None:
    boots = node.boots

    step = configured.up(inputs(node, bundle, "machine:\n    nodeLabels:\n        tier: silver\n"))

    assert step.op == "update" and step.outputs["applied"]["mode"] == "no-reboot" and node.boots == boots
    assert "tier: silver" in running_config(node, bundle)


def test_update_needing_a_reboot_in_auto_mode_reboots_into_it(
    configured: ResourceDriver, node: TalosNode, bundle: SecretsBundle
) -> None:
    boots = node.boots

    step = configured.up(inputs(node, bundle, LABEL_PATCH, ENV_PATCH))

    assert step.outputs["applied"]["mode"] == "reboot" and node.boots == boots + 1
    assert configs_equal(running_config(node, bundle), step.outputs["machineConfig"])


def test_update_staged_if_needing_reboot_stages_it(
    configured: ResourceDriver, node: TalosNode, bundle: SecretsBundle
) -> None:
    boots, before = node.boots, running_config(node, bundle)

    step = configured.up(inputs(node, bundle, LABEL_PATCH, ENV_PATCH, applyMode="staged-if-needing-reboot"))

    assert step.outputs["applied"]["mode"] == "staged" and node.boots == boots
    assert configs_equal(running_config(node, bundle), before)
    assert configs_equal(running_config(node, bundle, persistent=True), step.outputs["machineConfig"])


def test_update_of_settings_only_touches_nothing(
    configured: ResourceDriver, node: TalosNode, bundle: SecretsBundle
) -> None:
    before = dict(configured.outputs)
    node.close()  # any call to the node would now fail

    step = configured.up(inputs(node, bundle, LABEL_PATCH, timeout=30))

    assert step.op == "update" and step.outputs["applied"] == before["applied"]
    assert step.outputs["timeout"] == 30


def test_delete_and_refresh_of_a_node_that_is_gone_touch_nothing(
    configured: ResourceDriver, node: TalosNode, bundle: SecretsBundle
) -> None:
    configured.up(inputs(node, bundle, LABEL_PATCH, timeout=1))  # settings only: bounds the read's patience
    before = dict(configured.outputs)
    node.close()

    configured.refresh()
    assert configured.outputs == before
    configured.destroy()
    assert configured.id is None


def test_secrets_never_in_blob_logs_redacted_rendering_or_errors(
    configured: ResourceDriver, server: ProviderServer, node: TalosNode, bundle: SecretsBundle
) -> None:
    with pytest.raises(ProviderCallError) as raised:
        configured.up(inputs(node, bundle, LABEL_PATCH, address="127.0.0.9", timeout=1))

    blob = base64.b64decode(configured.blob).decode("latin-1")
    seen = [blob, server.stderr(), raised.value.details, repr(configured.outputs["configRedacted"])]
    assert not [value for value in secret_values(bundle) for text in seen if value in text]
    assert bundle.cluster_secret in configured.outputs["machineConfig"]  # the control: it is there, as a secret
