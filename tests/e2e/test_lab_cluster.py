"""`pulumi up` of the lab stack through the real engine: five bare lab servers to a working kubeconfig."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from lab.faults import Fault
from lab.services import Lab
from lab.testing import requires_root
from talos.api.client import TalosClient
from talos.secrets import SecretsBundle
from talos.talosconfig import TalosConfig
from tests.e2e.conftest import lab_stack
from tests.engine.conftest import EngineProject

pytestmark = [pytest.mark.engine, pytest.mark.slow, requires_root()]

NODES = ("cp-1", "cp-2", "cp-3", "worker-1", "worker-2")


@dataclass
class Deployed:
    project: EngineProject
    lab: Lab
    up_seconds: float
    outputs: dict


@pytest.fixture(scope="module")
def deployed(lab_servers: Lab, engine_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """The lab stack deployed once for the module's tests (the lab is reset afterwards)."""
    project = lab_stack(lab_servers, tmp_path_factory.mktemp("e2e"), engine_home)
    try:
        project.pulumi("preview")
        started = time.monotonic()
        project.pulumi("up", "--yes", "--skip-preview")
        yield Deployed(project, lab_servers, time.monotonic() - started, project.outputs())
    finally:
        lab_servers.reset()


def test_up_lists_the_nodes_with_the_official_client(deployed: Deployed, tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(deployed.outputs["kubeconfig"])
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        nodes = client.CoreV1Api(api).list_node().items

    assert sorted(n.metadata.name for n in nodes) == sorted(NODES)
    ready = {c.status for n in nodes for c in n.status.conditions if c.type == "Ready"}
    assert ready == {"False"}  # no CNI yet: the expected end state


def test_talosconfig_reaches_every_node(deployed: Deployed) -> None:
    context = TalosConfig.from_yaml(deployed.outputs["talosconfig"]).current()

    with TalosClient(context.endpoints[0], context) as talos:
        versions = {node: talos.version(node=node).tag for node in context.nodes}

    assert len(context.endpoints) == 3 and set(versions.values()) == {"v1.13.9"} and len(versions) == 5


def test_second_preview_changes_nothing_and_contacts_no_server(deployed: Deployed) -> None:
    lab = deployed.lab
    talos_nodes = [lab.talos.fabric.node_at(address) for address in deployed.outputs["nodes"].values()]
    lab.faults.arm(Fault.ROBOT_LOST, times=None)
    lab.faults.arm(Fault.CLOUD_LOST, times=None)
    for node in talos_nodes:
        assert node is not None
        node.refuse_connections(20)  # any Talos API call would now fail
    try:
        preview = deployed.project.pulumi("preview", "--expect-no-changes", "--json")
        fired = lab.faults.fired(Fault.ROBOT_LOST) + lab.faults.fired(Fault.CLOUD_LOST)
    finally:
        lab.faults.clear()

    assert set(json.loads(preview.stdout)["changeSummary"]) == {"same"}
    assert fired == 0


def test_state_keeps_options_and_secrets_encrypted(deployed: Deployed) -> None:
    resources = {r["urn"].rsplit("::", 1)[1]: r for r in deployed.project.resources()}
    installs = [r for name, r in resources.items() if name.endswith("-install")]
    assert len(installs) == 5 and all(r.get("retainOnDelete") for r in installs)
    assert resources["lab-bootstrap"].get("retainOnDelete") and not resources["lab-bootstrap"].get("protect")
    assert resources["cp-1-config"]["additionalSecretOutputs"] == ["machineConfig", "secretsYaml"]
    assert set(resources["cp-1-config"]["dependencies"]) >= {resources["cp-1-install"]["urn"]}
    kubeconfig, talosconfig = deployed.outputs["kubeconfig"], deployed.outputs["talosconfig"]
    key_material = [
        yaml.safe_load(kubeconfig)["users"][0]["user"]["client-key-data"],
        yaml.safe_load(talosconfig)["contexts"]["lab"]["key"],
        SecretsBundle.from_yaml(deployed.outputs["secretsYaml"]).cluster_secret,
    ]
    state = deployed.project.state_text()
    assert [secret for secret in key_material if secret in state] == []
    assert resources["lab-bootstrap"]["outputs"]["kubeconfig"]["4dabf18193072939515e22adb298388d"]
