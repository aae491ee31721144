"""Drift on a running lab cluster through the real engine: a config changed on a node behind the stack's back is
invisible until `pulumi refresh`, then `pulumi preview --diff` names the changed fields (secrets masked) and
`pulumi up` restores the declared config on that node only."""

from __future__ import annotations

from typing import Any

import pytest

from lab.services import Lab
from lab.testing import requires_root
from talos.api.client import TalosClient
from talos.compare import configs_equal
from talos.documents import dump_documents, parse_documents
from talos.talosconfig import TalosConfig
from tests.e2e.conftest import planned
from tests.engine.conftest import EngineProject

pytestmark = [pytest.mark.engine, pytest.mark.slow, requires_root()]

NODE = "worker-1"
RESET = "worker-2"
SYSCTL = "net.core.somaxconn"


def talos(project: EngineProject, node: str) -> TalosClient:
    outputs = project.outputs()
    return TalosClient(outputs["nodes"][node], TalosConfig.from_yaml(outputs["talosconfig"]).current())


def change_by_hand(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What an operator might do with talosctl edit: a sysctl and a node label (both applied without a reboot)."""
    machine = documents[0]["machine"]
    machine["sysctls"] = {**(machine.get("sysctls") or {}), SYSCTL: "65535"}
    machine["nodeLabels"] = {**(machine.get("nodeLabels") or {}), "edited": "by-hand"}
    return documents


def test_out_of_band_change_shows_after_refresh_and_up_restores_it(project: EngineProject) -> None:
    project.pulumi("up", "--yes", "--skip-preview")
    with talos(project, NODE) as client:
        declared = client.machine_config()
        result = client.apply_configuration(dump_documents(change_by_hand(parse_documents(declared))), mode="no-reboot")
    assert result.mode == "no-reboot"
    assert f"{NODE}-config" not in planned(project)  # drift is only seen by a refresh

    refreshed = project.pulumi("refresh", "--yes", "--skip-preview").stdout

    assert f"{NODE}: drift: it runs another config" in refreshed
    shown = project.pulumi("preview", "--diff").stdout
    assert SYSCTL in shown and "by-hand" in shown and '"******"' in shown
    assert "PRIVATE KEY" not in shown + refreshed
    assert planned(project) == {f"{NODE}-config": "update"}

    project.pulumi("up", "--yes", "--skip-preview")

    with talos(project, NODE) as client:
        assert configs_equal(client.machine_config(), declared)
    project.pulumi("refresh", "--yes", "--skip-preview")
    assert f"{NODE}-config" not in planned(project)


def test_node_reset_behind_the_stack_is_marked_in_maintenance_and_up_configures_it_again(
    project: EngineProject, lab: Lab
) -> None:
    project.pulumi("up", "--yes", "--skip-preview")
    with talos(project, RESET) as client:
        declared = client.machine_config()
        client.reset(graceful=False, reboot=True, wipe_labels=["STATE", "EPHEMERAL"])
    node = lab.talos.fabric.node_at(project.outputs()["nodes"][RESET])
    assert node is not None
    node.wait_for(lambda n: n.maintenance and n.stage.value == "maintenance", timeout=60)

    refreshed = project.pulumi("refresh", "--yes", "--skip-preview").stdout

    assert f"{RESET}: in maintenance mode: it runs no machine config" in refreshed
    assert planned(project) == {f"{RESET}-config": "update"}

    shown = project.pulumi("up", "--yes", "--skip-preview").stdout

    assert f"{RESET}: config applied in maintenance mode" in shown
    with talos(project, RESET) as client:
        assert configs_equal(client.machine_config(), declared)
