"""Injected faults during `pulumi up` through the real engine: recovered within the deadlines, or reported in the
engine's output naming the node, what failed and the fix."""

from __future__ import annotations

import pytest

from lab.faults import Fault
from lab.services import Lab
from lab.testing import requires_root, slow_image_downloads
from tests.e2e.conftest import edit_stack, planned
from tests.engine.conftest import EngineProject

pytestmark = [pytest.mark.engine, pytest.mark.slow, requires_root()]


def test_rate_limits_locked_zones_and_a_slow_boot_are_waited_out(project: EngineProject, lab: Lab) -> None:
    lab.faults.arm(Fault.ROBOT_RATE_LIMIT, times=2, target="/reset/", interval=1)
    lab.faults.arm(Fault.CLOUD_LOCKED, times=2, target="/v1/zones/")
    lab.faults.arm(Fault.BOOT_SLOW, times=1, target="robot-2100002", extra=2.0)

    project.pulumi("up", "--yes", "--skip-preview")

    assert lab.faults.fired(Fault.ROBOT_RATE_LIMIT) == 2 and lab.faults.fired(Fault.CLOUD_LOCKED) == 2
    assert lab.faults.fired(Fault.BOOT_SLOW) == 1
    assert sorted(project.outputs()["nodes"]) == ["cp-1", "cp-2", "cp-3", "worker-1", "worker-2"]
    assert planned(project) == {}


def test_a_rescue_that_never_comes_up_fails_the_up_naming_the_node_and_the_fix(
    project: EngineProject, lab: Lab
) -> None:
    # configure: a worker whose install finished before cp-2 failed waits for a control plane's trustd that no
    # run starts; the up ends only when that in-flight step does
    edit_stack(project, lambda values: values["timeouts"].update(rescue=2, resetAttempts=1, configure=20))
    lab.faults.arm(Fault.RESCUE_NOT_COMING_UP, times=None, target="robot-2100002")

    up = project.pulumi("up", "--yes", "--skip-preview", check=False)

    shown = up.stdout + up.stderr
    assert up.returncode != 0
    assert "cp-2: the rescue system did not come up on robot server 2100002 after 1 reset(s)" in shown
    assert "fix: check the server in the Hetzner console" in shown
    lab.faults.clear()
    edit_stack(project, lambda values: values["timeouts"].update(rescue=120, resetAttempts=3, configure=600))
    project.pulumi("up", "--yes", "--skip-preview")  # the fault gone, the next run converges
    assert planned(project) == {}


def test_server_errors_and_a_dropped_ssh_connection_are_recovered_in_the_same_up(
    project: EngineProject, lab: Lab
) -> None:
    slow_image_downloads(lab)
    lab.faults.arm(Fault.ROBOT_SERVER_ERROR, times=2, target="/key/", status=503)
    lab.faults.arm(Fault.SSH_DROP_MID_WRITE, times=1, target="robot-2100003", after=0.2)

    up = project.pulumi("up", "--yes", "--skip-preview")

    assert lab.faults.fired(Fault.ROBOT_SERVER_ERROR) == 2 and lab.faults.fired(Fault.SSH_DROP_MID_WRITE) == 1
    assert "worker-1" in up.stdout and "reconnecting to start over" in up.stdout
    assert sorted(project.outputs()["nodes"]) == ["cp-1", "cp-2", "cp-3", "worker-1", "worker-2"]
    assert planned(project) == {}
