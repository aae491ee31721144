"""A Talos version change on the running lab cluster through the real engine: preview names every node that will
upgrade, `up` upgrades them one at a time (control planes first), and an `up` killed midway resumes without
upgrading any node twice."""

from __future__ import annotations

import re

import pytest

from lab.datacenter import Machine
from lab.services import Lab
from lab.testing import requires_root
from talos.api.client import TalosClient
from talos.talosconfig import TalosConfig
from tests.e2e.conftest import edit_stack, planned, up_until_killed
from tests.engine.conftest import EngineProject

pytestmark = [pytest.mark.engine, pytest.mark.slow, requires_root()]

ORDER = ("cp-1", "cp-2", "cp-3", "worker-1", "worker-2")
TARGET = "v1.13.10"


@pytest.fixture
def running(project: EngineProject) -> EngineProject:
    project.pulumi("up", "--yes", "--skip-preview")
    edit_stack(project, lambda values: values.update(talosVersion=TARGET))
    return project


def machines(project: EngineProject, lab: Lab) -> dict[str, Machine]:
    by_address = {machine.placement.address: machine for machine in lab.datacenter.machines.values()}
    return {node: by_address[address] for node, address in project.outputs()["nodes"].items()}


def boots_into(machine: Machine, version: str) -> list[float]:
    return [boot.at for boot in machine.boots if boot.target == "talos" and boot.detail == version]


def running_versions(project: EngineProject) -> dict[str, str]:
    outputs = project.outputs()
    context = TalosConfig.from_yaml(outputs["talosconfig"]).current()
    versions = {}
    for node, address in outputs["nodes"].items():
        with TalosClient(address, context) as talos:
            versions[node] = talos.version().tag
    return versions


def test_preview_names_each_node_to_upgrade_then_up_rolls_them_in_order(running: EngineProject, lab: Lab) -> None:
    steps = planned(running)
    shown = running.pulumi("preview", "--diff").stdout

    assert {name: op for name, op in steps.items() if name.endswith("-upgrade")} == {
        f"lab-{node}-upgrade": "update" for node in ORDER
    }
    assert "lab-bootstrap" not in steps and not any(op == "replace" for op in steps.values())
    assert len(re.findall(rf'talosVersion\s*: "v1\.13\.9" => "{TARGET}"', shown)) >= len(ORDER)

    running.pulumi("up", "--yes", "--skip-preview")

    boots = {node: boots_into(machine, TARGET) for node, machine in machines(running, lab).items()}
    assert all(len(times) == 1 for times in boots.values()), boots
    assert sorted(ORDER, key=lambda node: boots[node][0]) == list(ORDER)
    assert running_versions(running) == dict.fromkeys(ORDER, TARGET)
    assert planned(running) == {}


def test_up_killed_midway_resumes_and_upgrades_no_node_twice(running: EngineProject, lab: Lab) -> None:
    seen = up_until_killed(running, "cp-2: upgrading")
    at_kill = {node: bool(boots_into(machine, TARGET)) for node, machine in machines(running, lab).items()}
    running.pulumi("cancel", "--yes")
    running.pulumi("up", "--yes", "--skip-preview")

    boots = {node: boots_into(machine, TARGET) for node, machine in machines(running, lab).items()}
    assert "cp-2: upgrading" in seen and at_kill["cp-1"] and not at_kill["worker-2"]
    assert all(len(times) == 1 for times in boots.values()), boots
    assert running_versions(running) == dict.fromkeys(ORDER, TARGET)
    outcomes = {
        r["outputs"]["node"]: r["outputs"]["outcome"] for r in running.resources() if "TalosUpgrade" in r["type"]
    }
    assert outcomes["cp-1"] == "upgraded" and outcomes["worker-2"] == "upgraded"
    assert planned(running) == {}
