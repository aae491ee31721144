"""A Kubernetes version change on the running lab cluster through the real engine: the machine configs follow in
state without touching a node, and the cluster's KubernetesUpgrade rolls the components as upgrade-k8s does —
each static pod across the control planes one by one, then the kubelets, control planes first — each restarted
exactly once, also when the `up` is killed midway and run again."""

from __future__ import annotations

import re

import pytest

from lab.services import Lab
from lab.testing import requires_root
from talos.kubernetes_images import STATIC_PODS
from tests.e2e.conftest import edit_stack, planned, up_until_killed
from tests.engine.conftest import EngineProject

pytestmark = [pytest.mark.engine, pytest.mark.slow, requires_root()]

CONTROL_PLANES = ("cp-1", "cp-2", "cp-3")
WORKERS = ("worker-1", "worker-2")
TARGET = "1.36.4"


def test_version_change_rolls_each_component_once_in_upgrade_k8s_order(project: EngineProject, lab: Lab) -> None:
    project.pulumi("up", "--yes", "--skip-preview")
    edit_stack(project, lambda values: values.update(kubernetesVersion=TARGET))

    steps = planned(project)
    assert steps.pop("lab-kubernetes") == "update"
    assert set(steps) <= {f"{node}-config" for node in CONTROL_PLANES + WORKERS}
    assert set(steps.values()) <= {"update"}

    shown = project.pulumi("up", "--yes", "--skip-preview").stdout.split("Diagnostics:")[0]  # then repeated

    rolled = re.findall(rf"\b([a-z0-9-]+): (kube-[a-z-]+|kubelet): v1\.36\.3 -> v{re.escape(TARGET)}", shown)
    expected = [(node, pod) for pod in (*STATIC_PODS, "kube-proxy") for node in CONTROL_PLANES]
    expected += [(node, "kubelet") for node in CONTROL_PLANES + WORKERS]
    assert rolled == expected
    assert_each_component_restarted_once(project, lab)
    assert planned(project) == {}


def test_up_killed_midway_resumes_the_roll_restarting_nothing_twice(project: EngineProject, lab: Lab) -> None:
    project.pulumi("up", "--yes", "--skip-preview")
    edit_stack(project, lambda values: values.update(kubernetesVersion=TARGET))

    seen = up_until_killed(project, f"cp-2: kube-controller-manager: v1.36.3 -> v{TARGET}")
    project.pulumi("cancel", "--yes")
    project.pulumi("up", "--yes", "--skip-preview")

    assert f"cp-3: kube-apiserver: v1.36.3 -> v{TARGET}" in seen  # killed in the second component's round
    assert_each_component_restarted_once(project, lab)
    assert planned(project) == {}


def assert_each_component_restarted_once(project: EngineProject, lab: Lab) -> None:
    """Every component of every node restarted exactly once on the target image (per the lab's own record)."""
    for node, address in project.outputs()["nodes"].items():
        talos = lab.talos.fabric.node_at(address)
        assert talos is not None
        restarted = [name for _, name, image in talos.components.history if image.endswith(f":v{TARGET}")]
        wanted = [*STATIC_PODS, "kubelet"] if node in CONTROL_PLANES else ["kubelet"]
        assert sorted(restarted) == sorted(wanted), node
