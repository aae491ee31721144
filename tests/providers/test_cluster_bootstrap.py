"""ClusterBootstrap through the SDK's dynamic-provider gRPC server, against a small cluster of standalone lab
Talos nodes: bootstrap once, adopt, health with "CNI none, nodes NotReady" as the end state, the kubeconfig
with the official client, the one-shot diff, and what must never leak."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from lab.talos.node import TalosNode
from lab.talos.testing import NodeFactory
from providers.cluster_bootstrap import ClusterBootstrapProvider
from talos.api.client import TalosClient
from talos.config import ClusterOptions, Role, generate_config
from talos.documents import dump_documents
from talos.patches import load_patches
from talos.secrets import SecretsBundle
from talos.talosconfig import TalosConfig
from tests.providers.harness import UNKNOWN, ProviderCallError, ProviderServer, ResourceDriver

TYPE = "pulumi-python:dynamic/talos:ClusterBootstrap"
NO_CNI = "cluster:\n    network:\n        cni:\n            name: none\n    proxy:\n        disabled: true\n"


@dataclass
class LabCluster:
    bundle: SecretsBundle
    nodes: dict[str, TalosNode]
    roles: dict[str, Role]
    endpoint: str

    def members(self) -> list[dict[str, str]]:
        return [{"name": name, "address": node.address, "role": self.roles[name]} for name, node in self.nodes.items()]


def start_cluster(talos_nodes: NodeFactory, layout: dict[str, Role], cni_patch: str = NO_CNI) -> LabCluster:
    """Nodes configured for one cluster (hostname = name), booted and waiting to be bootstrapped."""
    bundle = SecretsBundle.generate()
    addresses = {name: talos_nodes.address() for name in layout}
    first = next(addresses[name] for name, role in layout.items() if role == "controlplane")
    cluster = LabCluster(bundle, {}, {}, f"https://{first}:6443")
    for name, role in layout.items():
        add_node(talos_nodes, cluster, name, role, address=addresses[name], cni_patch=cni_patch)
    return cluster


def add_node(
    talos_nodes: NodeFactory, cluster: LabCluster, name: str, role: Role, *, address: str = "", cni_patch: str = NO_CNI
) -> TalosNode:
    """One more node of the cluster (hostname = name), booted with its config."""
    options = ClusterOptions(cluster_name="lab", endpoint=cluster.endpoint)
    hostname = f'apiVersion: v1alpha1\nkind: HostnameConfig\nauto: "off"\nhostname: {name}\n'
    documents = generate_config(options, cluster.bundle, role, load_patches([cni_patch, hostname]))
    node = talos_nodes.start(address=address or talos_nodes.address(), config=dump_documents(documents), wait=False)
    cluster.nodes[name], cluster.roles[name] = node, role
    return node


@pytest.fixture
def lab_cluster(talos_nodes: NodeFactory) -> LabCluster:
    return start_cluster(talos_nodes, {"cp-1": "controlplane", "cp-2": "controlplane", "worker-1": "worker"})


@pytest.fixture
def resource(server: ProviderServer) -> ResourceDriver:
    return ResourceDriver(server, ClusterBootstrapProvider(), "lab-bootstrap", TYPE)


def inputs(cluster: LabCluster, **overrides: Any) -> dict[str, Any]:
    base = {
        "clusterName": "lab",
        "secretsYaml": cluster.bundle.to_yaml(),
        "nodes": cluster.members(),
        "cni": "none",
        "trigger": "1",
        "timeout": 30,
    }
    return {**base, **overrides}


def list_nodes(kubeconfig: str, folder: Path) -> dict[str, str]:
    """Node name -> Ready status, listed by the official client with the kubeconfig unchanged."""
    path = folder / "kubeconfig"
    path.write_text(kubeconfig)
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        items = client.CoreV1Api(api).list_node().items
    return {n.metadata.name: next(c.status for c in n.status.conditions if c.type == "Ready") for n in items}


def test_create_bootstraps_once_and_hands_out_working_configs(
    resource: ResourceDriver, server: ProviderServer, lab_cluster: LabCluster, tmp_path: Path
) -> None:
    step = resource.up(inputs(lab_cluster))

    out = step.outputs
    assert step.op == "create" and out["outcome"] == "bootstrapped" and out["kubernetesVersion"] == "v1.36.3"
    assert "NotReady until a CNI is installed" in out["health"]
    assert list_nodes(out["kubeconfig"], tmp_path) == {"cp-1": "False", "cp-2": "False", "worker-1": "False"}
    context = TalosConfig.from_yaml(out["talosconfig"]).current()
    cp1, cp2, worker = lab_cluster.nodes.values()
    assert context.endpoints == (cp1.address, cp2.address)
    assert context.nodes == (cp1.address, cp2.address, worker.address)
    with TalosClient(context.endpoints[1], context) as talos:
        assert len(talos.etcd_members()) == 2
    log = server.stderr()
    assert "lab: surveying etcd on cp-1, cp-2 before bootstrapping cp-1" in log
    assert "lab: bootstrapped: etcd bootstrapped on cp-1" in log and out["etcd"] == "bootstrapped on cp-1"
    assert "lab: Kubernetes nodes registered: reached" in log


def test_create_after_lost_state_adopts_without_a_second_bootstrap(
    resource: ResourceDriver, server: ProviderServer, lab_cluster: LabCluster
) -> None:
    resource.up(inputs(lab_cluster))
    first = lab_cluster.nodes["cp-1"]
    members = first.fabric.etcd(first.etcd_cluster_id()).members

    again = ResourceDriver(server, ClusterBootstrapProvider(), "lab-bootstrap", TYPE)
    step = again.up(inputs(lab_cluster))

    assert step.outputs["outcome"] == "adopted"
    assert first.fabric.etcd(first.etcd_cluster_id()).members == members


def test_cni_other_than_none_waits_for_ready_nodes_and_says_so(
    resource: ResourceDriver, lab_cluster: LabCluster
) -> None:
    with pytest.raises(ProviderCallError) as raised:
        resource.up(inputs(lab_cluster, cni="flannel", timeout=3))

    assert "lab: gave up waiting for Kubernetes nodes registered" in raised.value.details
    assert "not Ready: cp-1, cp-2, worker-1" in raised.value.details


def test_a_node_that_never_comes_up_is_named_at_the_deadline(
    resource: ResourceDriver, lab_cluster: LabCluster, talos_nodes: NodeFactory
) -> None:
    absent = talos_nodes.address()
    members = [*lab_cluster.members(), {"name": "worker-9", "address": absent, "role": "worker"}]

    with pytest.raises(ProviderCallError) as raised:
        resource.up(inputs(lab_cluster, nodes=members, timeout=3))

    assert "cluster healthy after" in raised.value.details
    assert f"(last: {absent}:50000: Connection refused)" in raised.value.details


def test_check_names_bad_inputs(resource: ResourceDriver, lab_cluster: LabCluster) -> None:
    workers_only = [{"name": "w", "address": "127.0.0.1", "role": "worker"}]

    bad = inputs(lab_cluster, clusterName="", nodes=workers_only, timeout=0, allowNewEtcd="yes")
    checked, _ = resource.preview(bad)
    unknown, _ = resource.preview(inputs(lab_cluster, secretsYaml=UNKNOWN, nodes=UNKNOWN))

    assert [name for name, _ in checked.failures] == ["clusterName", "nodes", "timeout", "allowNewEtcd"]
    assert "no control plane to bootstrap" in dict(checked.failures)["nodes"]
    assert unknown.failures == []


@pytest.fixture
def bootstrapped(resource: ResourceDriver, lab_cluster: LabCluster) -> ResourceDriver:
    resource.up(inputs(lab_cluster))
    return resource


def test_rerun_changes_nothing_and_a_new_trigger_replaces(
    bootstrapped: ResourceDriver, lab_cluster: LabCluster
) -> None:
    _, same = bootstrapped.preview(inputs(lab_cluster))
    _, again = bootstrapped.preview(inputs(lab_cluster, trigger="2"))

    assert same is not None and same.changes == "none"
    assert again is not None and again.replaces == ["trigger"]


def test_node_list_change_reaims_the_talosconfig_only(
    bootstrapped: ResourceDriver, lab_cluster: LabCluster, talos_nodes: NodeFactory
) -> None:
    before = dict(bootstrapped.outputs)
    for node in lab_cluster.nodes.values():
        node.close()  # any call to a node would now fail
    members = [*lab_cluster.members(), {"name": "worker-2", "address": "127.0.0.7", "role": "worker"}]

    step = bootstrapped.up(inputs(lab_cluster, nodes=members))

    assert step.op == "update" and step.outputs["kubeconfig"] == before["kubeconfig"]
    old, new = (TalosConfig.from_yaml(out["talosconfig"]).current() for out in (before, step.outputs))
    assert new.nodes[-1] == "127.0.0.7" and (new.crt, new.key) == (old.crt, old.key)


def test_delete_and_refresh_touch_nothing(bootstrapped: ResourceDriver, lab_cluster: LabCluster) -> None:
    before = dict(bootstrapped.outputs)
    for node in lab_cluster.nodes.values():
        node.close()

    bootstrapped.refresh()
    assert bootstrapped.outputs == before
    bootstrapped.destroy()
    assert bootstrapped.id is None


def test_secrets_never_in_blob_or_logs(bootstrapped: ResourceDriver, server: ProviderServer) -> None:
    talosconfig = TalosConfig.from_yaml(bootstrapped.outputs["talosconfig"]).current()
    kubeconfig_key = bootstrapped.outputs["kubeconfig"].split("client-key-data: ")[1].split()[0]
    secrets = [base64.b64encode(talosconfig.key).decode(), kubeconfig_key]

    blob = base64.b64decode(bootstrapped.blob).decode("latin-1")

    assert not [value for value in secrets for text in (blob, server.stderr()) if value in text]
