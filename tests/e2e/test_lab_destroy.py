"""`pulumi destroy` of the deployed lab stack through the real engine forgets the cluster and touches nothing: every
server (dedicated and Cloud) keeps running what it ran, its disks keep their Talos install, every Talos node keeps
its config, etcd its members, and the stack is left without resources."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hcloud import Client

from lab.datacenter import Machine
from lab.disks import TalosInstall
from lab.services import Lab
from lab.talos.stages import EtcdState
from lab.testing import requires_root
from talos.api.client import TalosClient
from talos.talosconfig import TalosConfig
from tests.e2e.conftest import edit_stack
from tests.engine.conftest import EngineProject

pytestmark = [pytest.mark.engine, pytest.mark.slow, requires_root()]

ROBOT = (2100001, 2100002, 2100003)


@dataclass(frozen=True)
class Seen:
    """What a server and the Talos node on it look like from the outside."""

    boots: tuple[Any, ...]
    disks: tuple[Any, ...]
    powered: bool
    maintenance: bool
    talos_boots: int
    config: bytes | None
    etcd_members: tuple[str, ...]


def servers(lab: Lab) -> dict[str, Machine]:
    """Every server of the lab: the dedicated ones and the Cloud servers the Cloud API lists."""
    cloud = Client(token=lab.spec.cloud_token, api_endpoint=lab.cloud_url, poll_interval=0.05)
    machines = {f"robot-{number}": lab.robot_server(number) for number in ROBOT}
    machines |= {f"cloud-{server.id}": lab.cloud_server(server.id) for server in cloud.servers.get_all()}
    return machines


def look(lab: Lab, machine: Machine) -> Seen:
    node = lab.talos.fabric.node_at(machine.address)
    assert node is not None, f"{machine.key}: no Talos node answers on {machine.address}"
    members = node.fabric.etcd(node.etcd_cluster_id()).members if node.etcd_state != EtcdState.NONE else {}
    return Seen(
        boots=tuple(machine.boots),
        disks=tuple(disk.inspect() for disk in machine.disks),
        powered=machine.powered,
        maintenance=node.maintenance,
        talos_boots=node.boots,
        config=node.config.raw if node.config else None,
        etcd_members=tuple(sorted(members)),
    )


@pytest.mark.parametrize("delete_cloud_servers", [False, True], ids=["default", "deleteCloudServers"])
def test_destroy_forgets_the_cluster_and_leaves_servers_disks_and_nodes_untouched(
    project: EngineProject, lab: Lab, delete_cloud_servers: bool
) -> None:
    if delete_cloud_servers:  # the policy deletes a *removed* node's server; a destroy removes no node
        edit_stack(project, lambda values: values.update(removal={"deleteCloudServers": True}))
    project.pulumi("up", "--yes", "--skip-preview")
    outputs = project.outputs()
    machines = servers(lab)
    before = {key: look(lab, machine) for key, machine in machines.items()}
    assert len(machines) == 5  # the control: three dedicated servers and two Cloud servers deployed
    assert all(isinstance(seen.disks[0], TalosInstall) and not seen.maintenance for seen in before.values())

    project.pulumi("destroy", "--yes", "--skip-preview")

    assert project.resources() == []
    assert servers(lab).keys() == machines.keys()  # Cloud servers are retained, not deleted
    assert {key: look(lab, machine) for key, machine in machines.items()} == before
    context = TalosConfig.from_yaml(outputs["talosconfig"]).current()
    with TalosClient(context.endpoints[0], context) as talos:  # the real Talos API still answers with the old PKI
        versions = {node: talos.version(node=node).tag for node in context.nodes}
    assert sorted(versions) == sorted(outputs["nodes"].values()) and set(versions.values()) == {"v1.13.9"}
