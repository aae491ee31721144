"""The bootstrap survives lost state, through the real engine: with the ClusterBootstrap (and what depends on it)
deleted from the stack's state, `pulumi up` adopts the running etcd, never sends Bootstrap again, and every control
plane keeps the bootstrap marker in its META."""

from __future__ import annotations

import pytest

from lab.services import Lab
from lab.talos.node import TalosNode
from lab.testing import requires_root
from talos.bootstrap_marker import MARKER_KEY, BootstrapMarker
from tests.e2e.conftest import planned
from tests.engine.conftest import EngineProject

pytestmark = [pytest.mark.engine, pytest.mark.slow, requires_root()]
CONTROL_PLANES = ("cp-1", "cp-2", "cp-3")


def bootstrap_resource(project: EngineProject) -> dict:
    [bootstrap] = [r for r in project.resources() if r["urn"].endswith("::lab-bootstrap")]
    return bootstrap


def lab_node(project: EngineProject, lab: Lab, name: str) -> TalosNode:
    node = lab.talos.fabric.node_at(project.outputs()["nodes"][name])
    assert node is not None, f"{name} is not running in the lab"
    return node


def test_lost_bootstrap_state_adopts_the_cluster_without_a_second_bootstrap(project: EngineProject, lab: Lab) -> None:
    project.pulumi("up", "--yes", "--skip-preview")
    first = lab_node(project, lab, "cp-1")
    cluster_id = first.etcd_cluster_id()
    assert lab.talos.fabric.bootstrap_calls(cluster_id) == 1
    members = lab.talos.fabric.etcd(cluster_id).members

    project.pulumi("state", "delete", bootstrap_resource(project)["urn"], "--target-dependents", "--yes")
    project.pulumi("up", "--yes", "--skip-preview")

    assert bootstrap_resource(project)["outputs"]["outcome"] == "adopted"
    assert lab.talos.fabric.bootstrap_calls(cluster_id) == 1 and lab.talos.fabric.etcd(cluster_id).members == members
    marks = {name: lab_node(project, lab, name).storage.read_meta().get(MARKER_KEY) for name in CONTROL_PLANES}
    parsed = {name: BootstrapMarker.parse(value.decode()) if value else None for name, value in marks.items()}
    assert all(marker is not None and marker.node == "cp-1" for marker in parsed.values()), parsed
    assert planned(project) == {}
