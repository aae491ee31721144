"""A Kubernetes version change on the running lab cluster through the real engine: the machine configs follow in
state without touching a node, and the cluster's KubernetesUpgrade rolls the components as upgrade-k8s does —
each static pod across the control planes one by one, then the kubelets, control planes first — each restarted
exactly once."""

from __future__ import annotations

import re

import pytest

from lab.services import Lab
from lab.testing import requires_root
from tests.e2e.conftest import edit_stack, planned
from tests.engine.conftest import EngineProject

pytestmark = [pytest.mark.engine, pytest.mark.slow, requires_root()]

CONTROL_PLANES = ("cp-1", "cp-2", "cp-3")
WORKERS = ("worker-1", "worker-2")
STATIC_PODS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
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
    outputs = project.outputs()
    for node, address in outputs["nodes"].items():
        talos = lab.talos.fabric.node_at(address)
        assert talos is not None
        restarted = [(name, image) for _, name, image in talos.components.history if image.endswith(f":v{TARGET}")]
        wanted = [*STATIC_PODS, "kubelet"] if node in CONTROL_PLANES else ["kubelet"]
        assert sorted(name for name, _ in restarted) == sorted(wanted), node
    assert planned(project) == {}
