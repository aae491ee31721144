"""Changes to a running lab cluster through the real engine: a patch updates only the nodes it touches, a worker
comes and goes, and none of it bootstraps again or reinstalls a node."""

from __future__ import annotations

import dns.resolver
import pytest

from lab.services import Lab
from lab.testing import requires_root
from talos.api.client import TalosClient
from talos.talosconfig import TalosConfig
from tests.e2e.conftest import edit_stack, planned
from tests.engine.conftest import EngineProject

pytestmark = [pytest.mark.engine, pytest.mark.slow, requires_root()]

GOLD = {"machine": {"nodeLabels": {"tier": "gold"}}}


@pytest.fixture
def running(project: EngineProject) -> EngineProject:
    project.pulumi("up", "--yes", "--skip-preview")
    return project


def running_config(project: EngineProject, node: str) -> str:
    outputs = project.outputs()
    context = TalosConfig.from_yaml(outputs["talosconfig"]).current()
    with TalosClient(outputs["nodes"][node], context) as talos:
        return talos.machine_config()


def resolve(lab: Lab, name: str) -> list[str]:
    assert lab.dns is not None
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = [lab.dns.address[0]], lab.dns.address[1]
    try:
        return sorted(record.address for record in resolver.resolve(f"{name}.lab.example", "A"))
    except dns.resolver.NXDOMAIN:
        return []


def test_worker_patch_updates_only_the_workers_with_a_redacted_diff(running: EngineProject) -> None:
    edit_stack(running, lambda values: values.setdefault("patches", {}).setdefault("worker", []).append(GOLD))

    assert planned(running) == {"worker-1-config": "update", "worker-2-config": "update"}
    shown = running.pulumi("preview", "--diff").stdout
    assert '+ tier: "gold"' in shown and "******" in shown
    running.pulumi("up", "--yes", "--skip-preview")

    assert "tier: gold" in running_config(running, "worker-1") and "tier: gold" not in running_config(running, "cp-1")
    assert planned(running) == {}


def test_add_then_remove_a_worker_without_a_second_bootstrap(running: EngineProject, lab: Lab) -> None:
    first = running.outputs()
    worker = {"name": "worker-3", "role": "worker", "cloud": {}, "wipe": "any"}
    edit_stack(running, lambda values: values["nodes"].append(worker))

    running.pulumi("up", "--yes", "--skip-preview")

    added = running.outputs()
    assert set(added["nodes"]) == {*first["nodes"], "worker-3"}
    assert resolve(lab, "worker-3") == [added["nodes"]["worker-3"]]
    assert added["kubeconfig"] == first["kubeconfig"]  # the bootstrap was kept, not run again
    assert TalosConfig.from_yaml(added["talosconfig"]).current().nodes[-1] == added["nodes"]["worker-3"]

    edit_stack(running, lambda values: values.update(nodes=[n for n in values["nodes"] if n["name"] != "worker-2"]))
    running.pulumi("up", "--yes", "--skip-preview")

    removed = running.outputs()
    assert "worker-2" not in removed["nodes"] and resolve(lab, "worker-2") == []
    assert sorted(resolve(lab, "api")) == sorted(removed["nodes"][cp] for cp in ("cp-1", "cp-2", "cp-3"))
