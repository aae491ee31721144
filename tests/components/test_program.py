"""The program (`__main__.py`) under Pulumi's mocks, for both stacks: the resource graph, dependencies, options
(protect, retainOnDelete, secret outputs) and stack outputs that never show a secret in plain text."""

from __future__ import annotations

import itertools
import json

import pytest
from pulumi.runtime import rpc

from providers.talos_machine_config import render
from talos.secrets import SecretsBundle
from tests.components.program import ProgramRun, run_program, secret_in, stack_config

SECRETS = "pulumi-python:dynamic/talos:ClusterSecrets"
INSTALL = "pulumi-python:dynamic/hetzner:RescueInstall"
CONFIG = "pulumi-python:dynamic/talos:TalosMachineConfig"
BOOTSTRAP = "pulumi-python:dynamic/talos:ClusterBootstrap"
DNS = "pulumi-python:dynamic/hetzner:DnsRecord"
SERVER = "hcloud:index/server:Server"
NODES = ("cp-1", "cp-2", "cp-3", "worker-1", "worker-2")


@pytest.fixture(scope="module", params=["lab", "prod"])
def run(request: pytest.FixtureRequest) -> ProgramRun:
    return run_program(request.param)


@pytest.fixture(scope="module")
def lab() -> ProgramRun:
    return run_program("lab")


@pytest.fixture(scope="module")
def prod() -> ProgramRun:
    return run_program("prod")


def test_each_node_is_installed_configured_and_parented_by_its_component(run: ProgramRun) -> None:
    assert sorted(r.name for r in run.of_type("talos-hetzner:index:TalosNode")) == sorted(NODES)
    for node in NODES:
        component = run.named(node)
        install, config = run.named(f"{node}-install"), run.named(f"{node}-config")
        assert install.parent == component.urn and config.parent == component.urn
        assert install.urn in config.dependencies
    assert len(run.of_type(SECRETS)) == len(run.of_type(BOOTSTRAP)) == 1


def test_lab_has_two_cloud_servers_a_zone_and_a_rescue_key(lab: ProgramRun) -> None:
    servers = lab.of_type(SERVER)
    assert sorted(s.name for s in servers) == ["cp-3-server", "worker-2-server"]
    key = lab.named("lab-rescue-key")
    assert all(key.urn in s.dependencies for s in servers)
    assert lab.named("cp-3-server").urn in lab.named("cp-3-install").dependencies
    assert lab.named("lab-zone").inputs["name"] == "lab.example"


def test_prod_is_all_dedicated_servers_by_robot_number(prod: ProgramRun) -> None:
    assert prod.of_type(SERVER) == []
    assert sorted(r.inputs["server"]["id"] for r in prod.of_type(INSTALL)) == [
        1234561,
        1234562,
        1234563,
        1234564,
        1234565,
    ]


def test_bootstrap_waits_for_every_node_config(run: ProgramRun) -> None:
    bootstrap = run.of_type(BOOTSTRAP)[0]
    assert {c.urn for c in run.of_type(CONFIG)} <= set(bootstrap.dependencies)
    assert run.of_type(SECRETS)[0].urn in bootstrap.dependencies


def test_dns_values_follow_the_nodes_configs(run: ProgramRun) -> None:
    records = {r.name: r for r in run.of_type(DNS)}
    api = sorted(name for name, r in records.items() if name.endswith("-api"))
    assert api == ["cp-1-api", "cp-2-api", "cp-3-api"]
    for name, record in records.items():
        node = name.rsplit("-", 1)[0]
        assert run.named(f"{node}-config").urn in record.dependencies


def test_servers_installs_are_retained_and_prod_protects_what_must_not_go(lab: ProgramRun, prod: ProgramRun) -> None:
    for run in (lab, prod):
        assert all(r.retain_on_delete for r in run.of_type(INSTALL) + run.of_type(BOOTSTRAP) + run.of_type(SERVER))
    assert all(r.protect for r in prod.of_type(INSTALL) + prod.of_type(SECRETS) + prod.of_type(BOOTSTRAP))
    assert not any(r.protect for r in lab.resources)


def test_secret_outputs_are_declared_on_the_resources(run: ProgramRun) -> None:
    assert run.of_type(SECRETS)[0].secret_outputs == ["secretsYaml"]
    assert all(r.secret_outputs == ["machineConfig", "secretsYaml"] for r in run.of_type(CONFIG))
    assert run.of_type(BOOTSTRAP)[0].secret_outputs == ["kubeconfig", "secretsYaml", "talosconfig"]


def test_stack_outputs_keep_secrets_secret_and_show_none_in_plain_text(run: ProgramRun) -> None:
    secret = sorted(name for name, (_, hidden) in run.outputs.items() if hidden)
    assert secret == ["kubeconfig", "rescuePasswords", "secretsYaml", "talosconfig"]
    plain = {name: value for name, (value, hidden) in run.outputs.items() if not hidden}
    assert secret_in(plain) == []
    assert set(plain["nodes"]) == set(NODES)


def test_no_secret_in_any_plain_resource_input(run: ProgramRun) -> None:
    for resource in run.resources:
        shown = {key: value for key, value in resource.inputs.items() if not rpc.is_rpc_secret(value)}
        assert secret_in(shown) == [], resource.name
    assert all(rpc.is_rpc_secret(r.inputs["secretsYaml"]) for r in run.resources if "secretsYaml" in r.inputs)


def test_preview_with_unknown_outputs_builds_the_same_graph(lab: ProgramRun) -> None:
    preview = run_program("lab", preview=True)

    assert sorted((r.type, r.name) for r in preview.resources) == sorted((r.type, r.name) for r in lab.resources)


def test_secret_stored_in_plain_text_stops_the_program_with_the_fix() -> None:
    config = stack_config("lab")

    with pytest.raises(Exception, match="robotPassword is stored in plain text") as raised:
        run_program("lab", config=config, secret_keys=["hcloud:token"])

    assert "pulumi config set --secret robotPassword" in str(raised.value)
    assert "robot-Pa55-never-shown" not in str(raised.value)


UPGRADE = "pulumi-python:dynamic/talos:TalosUpgrade"
KUBERNETES = "pulumi-python:dynamic/talos:KubernetesUpgrade"


def test_talos_upgrades_chain_after_the_bootstrap_control_planes_first(run: ProgramRun) -> None:
    upgrades = {r.inputs["node"]: r for r in run.of_type(UPGRADE)}
    assert sorted(upgrades) == sorted(NODES)
    bootstrap = run.of_type(BOOTSTRAP)[0].urn
    order = ["cp-1", "cp-2", "cp-3", "worker-1", "worker-2"]
    for before, after in itertools.pairwise(order):
        assert upgrades[before].urn in upgrades[after].dependencies, (before, after)
        assert upgrades[after].urn not in upgrades[before].dependencies
    assert all(bootstrap in upgrade.dependencies for upgrade in upgrades.values())
    assert all(upgrade.parent == run.named(node).urn for node, upgrade in upgrades.items())
    assert all(upgrade.secret_outputs == ["kubeconfig", "secretsYaml"] for upgrade in upgrades.values())


def test_upgrades_and_machine_configs_install_the_same_installer(run: ProgramRun) -> None:
    installers = {r.inputs["installerImage"] for r in run.of_type(UPGRADE)}
    assert installers == {r.inputs["cluster"]["installerImage"] for r in run.of_type(CONFIG)}
    assert len(installers) == 1 and next(iter(installers)).endswith(":v1.13.9")


def test_kubernetes_rolls_once_for_the_cluster_after_every_talos_upgrade(run: ProgramRun) -> None:
    [kubernetes] = run.of_type("pulumi-python:dynamic/talos:KubernetesUpgrade")

    assert {r.urn for r in run.of_type(UPGRADE)} <= set(kubernetes.dependencies)
    assert run.of_type(BOOTSTRAP)[0].urn in kubernetes.dependencies
    assert kubernetes.secret_outputs == ["kubeconfig", "secretsYaml"]
    assert [node["name"] for node in kubernetes.inputs["nodes"]] == list(NODES)


def test_each_node_has_a_member_after_the_bootstrap_and_the_roster_lists_them_all(run: ProgramRun) -> None:
    members = {r.inputs["node"]: r for r in run.of_type("pulumi-python:dynamic/talos:ClusterMember")}
    [roster] = run.of_type("pulumi-python:dynamic/talos:ClusterRoster")

    assert sorted(members) == sorted(NODES)
    for node, member in members.items():
        assert run.of_type(BOOTSTRAP)[0].urn in member.dependencies
        assert run.named(f"{node}-config").urn in member.dependencies
        assert member.secret_outputs == ["kubeconfig", "secretsYaml"]
        assert len(member.inputs["controlPlanes"]) == 3
        assert member.urn in roster.dependencies  # a node joins the roster once its membership is confirmed
    # removals wait for every upgrade: never while another node reboots into a new version
    assert {r.urn for r in run.of_type(UPGRADE) + run.of_type(KUBERNETES)} <= set(roster.dependencies)
    assert [m["node"] for m in roster.inputs["members"]] == list(NODES)
    cloud_nodes = {r.inputs["labels"]["node"] for r in run.of_type(SERVER)}
    with_server = {m["node"]: m["cloudServerId"] for m in roster.inputs["members"] if "cloudServerId" in m}
    assert with_server.keys() == cloud_nodes and all(float(i).is_integer() and i > 0 for i in with_server.values())
    assert roster.inputs["policy"] == {"drain": True, "reset": "config", "reboot": True}
    assert roster.inputs["deleteCloudServers"] is False
    assert roster.secret_outputs == ["kubeconfig", "secretsYaml"]


def test_bootstrap_never_allows_a_new_etcd_unless_the_stack_says_so(run: ProgramRun) -> None:
    assert run.of_type(BOOTSTRAP)[0].inputs["allowNewEtcd"] is False
    allowed = run_program("lab", config={**stack_config("lab"), "talos-hetzner:allowNewEtcd": "true"})
    assert allowed.of_type(BOOTSTRAP)[0].inputs["allowNewEtcd"] is True


def _label_patch(value: str) -> dict[str, object]:
    return {"machine": {"nodeLabels": {"example.com/patched-by": value}}}


def test_node_patches_apply_cluster_then_role_then_the_nodes_own() -> None:
    config = stack_config("prod")
    patches = json.loads(config["talos-hetzner:patches"])
    patches["cluster"] = [_label_patch("cluster")]
    patches["controlplane"].append(_label_patch("role"))
    nodes = json.loads(config["talos-hetzner:nodes"])
    nodes[0]["patches"] = [_label_patch("node")]
    run = run_program(
        "prod",
        config={**config, "talos-hetzner:patches": json.dumps(patches), "talos-hetzner:nodes": json.dumps(nodes)},
    )
    bundle = SecretsBundle.generate()

    def sources(node: str) -> list[str]:
        return [patch["source"] for patch in run.named(f"{node}-config").inputs["patches"]]

    def patched_by(node: str) -> str:
        inputs = {**run.named(f"{node}-config").inputs, "secretsYaml": bundle.to_yaml()}
        return render(inputs)[0]["machine"]["nodeLabels"]["example.com/patched-by"]

    assert sources("cp-1") == [
        "cluster #1",
        "controlplane #1",
        "controlplane #2",
        "node cp-1 hostname",
        "node cp-1 static network",
        "node cp-1 #1",
    ]
    assert sources("worker-1") == ["cluster #1", "worker #1", "node worker-1 hostname", "node worker-1 static network"]
    assert (patched_by("cp-1"), patched_by("cp-2"), patched_by("worker-1")) == ("node", "role", "cluster")
