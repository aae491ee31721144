"""An interrupted `pulumi up` (the CLI and its plugins killed) and the documented recovery: `pulumi cancel` (the
file backend's lock), then `pulumi up` again. It converges with no second bootstrap, and no second install of a
node whose install had finished."""

from __future__ import annotations

import pytest

from lab.services import Lab
from lab.testing import requires_root, slow_image_downloads
from tests.e2e.conftest import planned, up_until_killed
from tests.engine.conftest import EngineProject

pytestmark = [pytest.mark.engine, pytest.mark.slow, requires_root()]
ROBOT = (2100001, 2100002, 2100003)


def recover(project: EngineProject) -> None:
    project.pulumi("cancel", "--yes")
    project.pulumi("up", "--yes", "--skip-preview")


def rescue_boots(lab: Lab) -> dict[int, int]:
    return {number: [b.target for b in lab.robot_server(number).boots].count("rescue") for number in ROBOT}


def bootstrap_outputs(project: EngineProject) -> dict:
    [bootstrap] = [r for r in project.resources() if r["urn"].endswith("::lab-bootstrap")]
    return bootstrap["outputs"]


def test_killed_mid_install_converges_installing_only_what_was_not_finished(project: EngineProject, lab: Lab) -> None:
    before = slow_image_downloads(lab, seconds=6)  # the kill lands mid-write even when the engine's output lags
    up_until_killed(project, "writing image")
    written = {number: lab.robot_server(number).disks[0].inspect() for number in ROBOT}
    lab.set_delays(before)

    recover(project)

    assert written == dict.fromkeys(ROBOT)  # killed before any Robot disk got its partition table
    assert all(1 <= boots <= 2 for boots in rescue_boots(lab).values())
    assert bootstrap_outputs(project)["outcome"] == "bootstrapped"
    assert planned(project) == {}


def test_killed_while_applying_configs_converges_without_reinstalling(project: EngineProject, lab: Lab) -> None:
    up_until_killed(project, "config applied in maintenance mode")

    recover(project)

    assert rescue_boots(lab) == dict.fromkeys(ROBOT, 1)
    assert bootstrap_outputs(project)["outcome"] == "bootstrapped"
    assert planned(project) == {}


def test_killed_after_bootstrap_adopts_the_cluster(project: EngineProject, lab: Lab) -> None:
    up_until_killed(project, "etcd bootstrapped on cp-1")
    cp1 = lab.talos.fabric.node_at(lab.robot_server(2100001).address)
    assert cp1 is not None
    members = cp1.fabric.etcd(cp1.etcd_cluster_id()).members

    recover(project)

    assert bootstrap_outputs(project)["outcome"] == "adopted"
    assert cp1.fabric.etcd(cp1.etcd_cluster_id()).members.keys() == members.keys() | {"cp-2", "cp-3"}
    assert rescue_boots(lab) == dict.fromkeys(ROBOT, 1)
