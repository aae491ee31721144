"""Removing a control plane from three on the running lab cluster through the real engine: preview plans the
deletions, `up` drains the node, takes it out of etcd, resets its config (the server stays, in maintenance mode),
deletes its Kubernetes Node and drops its DNS values; etcd keeps two members, nothing is bootstrapped again."""

from __future__ import annotations

import pytest
import yaml
from hcloud import Client
from kubernetes import client as kube
from kubernetes import config as kube_config

from lab.services import Lab
from lab.testing import requires_root
from tests.e2e.conftest import edit_stack, planned
from tests.e2e.test_lab_changes import resolve
from tests.engine.conftest import EngineProject

pytestmark = [pytest.mark.engine, pytest.mark.slow, requires_root()]


def kubernetes_nodes(kubeconfig: str) -> list[str]:
    configuration = kube.Configuration()
    kube_config.load_kube_config_from_dict(yaml.safe_load(kubeconfig), client_configuration=configuration)
    with kube.ApiClient(configuration) as api:
        return sorted(node.metadata.name for node in kube.CoreV1Api(api).list_node().items)


def etcd_members(lab: Lab, address: str) -> list[str]:
    node = lab.talos.fabric.node_at(address)
    assert node is not None
    return sorted(node.fabric.etcd(node.etcd_cluster_id()).members)


def test_removing_a_control_plane_from_three_leaves_a_healthy_two_member_etcd(project: EngineProject, lab: Lab) -> None:
    project.pulumi("up", "--yes", "--skip-preview")
    before = project.outputs()
    assert etcd_members(lab, before["nodes"]["cp-1"]) == ["cp-1", "cp-2", "cp-3"]

    edit_stack(project, lambda values: values.update(nodes=[n for n in values["nodes"] if n["name"] != "cp-2"]))
    steps = planned(project)
    assert steps["lab-roster"] == "update"  # the roster's update takes the node out of the cluster
    assert steps["lab-cp-2-member"] == "delete" and steps["cp-2-config"] == "delete" and steps["cp-2-api"] == "delete"
    assert steps.get("lab-bootstrap") != "replace" and not any(op == "replace" for op in steps.values())

    shown = project.pulumi("up", "--yes", "--skip-preview").stdout

    after = project.outputs()
    assert after["kubeconfig"] == before["kubeconfig"]  # the bootstrap was kept
    assert etcd_members(lab, after["nodes"]["cp-1"]) == etcd_members(lab, after["nodes"]["cp-3"]) == ["cp-1", "cp-3"]
    removed = lab.talos.fabric.node_at(before["nodes"]["cp-2"])
    assert removed is not None and removed.maintenance  # reset to maintenance mode, the server kept
    assert sorted(resolve(lab, "api")) == sorted(after["nodes"][cp] for cp in ("cp-1", "cp-3"))
    assert resolve(lab, "cp-2") == []
    assert "cp-2" not in kubernetes_nodes(after["kubeconfig"])
    assert "cp-2" in shown and planned(project) == {}


def test_removing_a_cloud_worker_with_delete_cloud_servers_deletes_its_server_after_it_left(
    project: EngineProject, lab: Lab
) -> None:
    edit_stack(project, lambda values: values.update(removal={"deleteCloudServers": True}))
    project.pulumi("up", "--yes", "--skip-preview")
    address = project.outputs()["nodes"]["worker-2"]
    cloud = Client(token=lab.spec.cloud_token, api_endpoint=lab.cloud_url, poll_interval=0.05)
    [server] = [s for s in cloud.servers.get_all() if s.labels.get("node") == "worker-2"]

    edit_stack(project, lambda values: values.update(nodes=[n for n in values["nodes"] if n["name"] != "worker-2"]))
    shown = project.pulumi("up", "--yes", "--skip-preview").stdout

    assert f"worker-2: Cloud server {server.id} deleted (deleteCloudServers)" in shown
    assert server.id not in {s.id for s in cloud.servers.get_all()}
    assert shown.index("worker-2: removed:") < shown.index(f"Cloud server {server.id} deleted")
    assert "worker-2" not in kubernetes_nodes(project.outputs()["kubeconfig"])
    assert address not in project.outputs()["nodes"].values() and planned(project) == {}
