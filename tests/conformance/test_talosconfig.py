"""talosconfig: ours loads in Talos' client and drives it against a lab node, matches what `gen config` issues,
and merges as talosctl merges."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest
import yaml

from lab.talos.testing import ClusterMaterial, NodeFactory
from talos.api.client import TalosClient
from talos.compare import configs_equal
from talos.errors import TalosError
from talos.secrets import SecretsBundle
from talos.talosconfig import TalosConfig, build_talosconfig, merge_talosconfig
from tests.conformance.certs import describe_certificate
from tests.conformance.edits import Edit, set_at
from tests.conformance.oracle import GenerateRequest, Oracle, Target

pytestmark = pytest.mark.oracle

CLUSTER = "conformance"
TARGETS = {
    "one-ip": (["192.0.2.10"], ["192.0.2.10"]),
    "three-ips": (["192.0.2.10", "192.0.2.11", "192.0.2.12"], ["192.0.2.10"]),
    "name-with-port": (["cp1.example.com:50000"], ["cp1.example.com"]),
    "ipv6": (["2001:db8::10"], ["2001:db8::10", "2001:db8::11"]),
}
ADMIN_FACTS = {
    "roles": ["os:admin"],
    "common_name": "",
    "issuer_organizations": ["talos"],
    "ext_key_usage": ["client_auth"],
    "key_type": "Ed25519",
    "is_ca": False,
    "valid_hours": 8760,
    "chain_error": "",
}


@pytest.fixture(scope="module")
def bundle() -> SecretsBundle:
    return SecretsBundle.generate()


@pytest.fixture(scope="module")
def machinery_talosconfig(oracle: Oracle, bundle: SecretsBundle) -> str:
    generated = oracle.generate(GenerateRequest.plain(bundle.to_yaml(), cluster_name=CLUSTER))
    assert generated.verdict.accepted, generated.verdict.errors
    return generated.talosconfig


@pytest.mark.parametrize("target", TARGETS, ids=str)
def test_our_talosconfig_loads_in_talos_client_with_an_admin_certificate(
    oracle: Oracle, bundle: SecretsBundle, target: str
) -> None:
    endpoints, nodes = TARGETS[target]
    ours = build_talosconfig(CLUSTER, bundle, endpoints=endpoints, nodes=nodes).to_yaml()

    facts = oracle.talosconfig(ours)

    assert facts.verdict.accepted, facts.verdict.errors
    assert facts.context == CLUSTER
    assert facts.contexts[CLUSTER] == {**ADMIN_FACTS, "endpoints": endpoints, "nodes": nodes}


def test_our_admin_certificate_is_shaped_as_gen_configs(
    oracle: Oracle, bundle: SecretsBundle, machinery_talosconfig: str
) -> None:
    ours = build_talosconfig(CLUSTER, bundle, endpoints=["192.0.2.10"], nodes=["192.0.2.10"])
    theirs = TalosConfig.from_yaml(machinery_talosconfig)

    assert oracle.talosconfig(machinery_talosconfig).contexts[CLUSTER] == {**ADMIN_FACTS, "endpoints": [], "nodes": []}
    assert describe_certificate(ours.current().crt) == describe_certificate(theirs.current().crt)
    assert ours.current().ca == theirs.current().ca == bundle.os.crt


def test_gen_config_talosconfig_loads_in_ours_and_saves_back_byte_for_byte(machinery_talosconfig: str) -> None:
    assert TalosConfig.from_yaml(machinery_talosconfig).to_yaml() == machinery_talosconfig


MERGES = {
    "new-name": (["prod"], "staging"),
    "taken-name": (["prod"], "prod"),
    "taken-twice": (["prod", "prod-1"], "prod"),
}


@pytest.mark.parametrize("merge", MERGES, ids=str)
def test_merge_matches_talosctl_config_merge(oracle: Oracle, bundle: SecretsBundle, merge: str) -> None:
    existing_names, new_name = MERGES[merge]
    existing = _config(bundle, existing_names, current=existing_names[0])
    new = build_talosconfig(new_name, bundle, endpoints=["192.0.2.20"], nodes=["192.0.2.20"])

    verdict, theirs = oracle.merge_talosconfig(existing.to_yaml(), new.to_yaml())
    ours = merge_talosconfig(existing, new).to_yaml()

    assert verdict.accepted, verdict.errors
    assert yaml.safe_load(ours) == yaml.safe_load(theirs)
    assert oracle.talosconfig(ours).verdict.accepted


def _config(bundle: SecretsBundle, names: list[str], *, current: str) -> TalosConfig:
    contexts = {
        name: build_talosconfig(name, bundle, endpoints=[f"192.0.2.{i}"], nodes=[f"192.0.2.{i}"]).current()
        for i, name in enumerate(names, start=1)
    }
    return TalosConfig(context=current, contexts=contexts)


def _drives(shape: str, secrets: SecretsBundle, address: str) -> TalosConfig:
    """Our talosconfig for a node at `address`, in one of the shapes a user ends up with."""
    if shape == "merged":
        other = build_talosconfig("lab", SecretsBundle.generate(), endpoints=["192.0.2.10"], nodes=["192.0.2.10"])
        ours = build_talosconfig("lab", secrets, endpoints=[address], nodes=[address])
        return merge_talosconfig(other, ours)
    endpoint = {"endpoint": address, "endpoint-with-port": f"{address}:50000"}[shape]
    return build_talosconfig("lab", secrets, endpoints=[endpoint], nodes=[address])


@pytest.mark.parametrize("shape", ["endpoint", "endpoint-with-port", "merged"])
def test_our_talosconfig_drives_talos_client_against_a_node(
    oracle: Oracle, talos_nodes: NodeFactory, cluster: ClusterMaterial, shape: str
) -> None:
    """Machinery's client takes everything from our talosconfig (current context, endpoints, CA, certificate)
    and reads the node's version and its machine config, as ours does with the same context."""
    node = talos_nodes.start(config=cluster.controlplane)
    ours = _drives(shape, cluster.secrets, node.address)
    target = Target(talosconfig=ours.to_yaml())

    version = oracle.api("version", target)
    machine_config = oracle.api("machine-config", target, id="v1alpha1")
    context = ours.current()
    with TalosClient(context.endpoints[0], context) as client:
        our_version, our_config = client.version(), client.machine_config()

    assert version.ok and machine_config.ok, (version.errors, machine_config.errors)
    assert (version.values["tag"], version.values["configured"]) == (our_version.tag, our_version.configured)
    assert configs_equal(machine_config.values["config"], our_config)
    assert configs_equal(our_config, cluster.controlplane)


@dataclass(frozen=True)
class BadTalosconfig:
    id: str
    mutate: Edit
    stage: str
    """Where Talos refuses it: "load" (client config) or "client" (credentials, when a client is built)."""


_OTHER_KEY = base64.b64encode(SecretsBundle.generate().os.key).decode()
"""An Ed25519 key that belongs to no certificate of the talosconfig."""

BAD_TALOSCONFIGS = [
    BadTalosconfig("crt-not-base64", set_at(f"contexts.{CLUSTER}.crt", "not base64!"), "client"),
    BadTalosconfig("key-not-base64", set_at(f"contexts.{CLUSTER}.key", "***"), "client"),
    BadTalosconfig("ca-not-base64", set_at(f"contexts.{CLUSTER}.ca", "%%%"), "client"),
    BadTalosconfig("current-context-missing", set_at("context", "elsewhere"), "client"),
    BadTalosconfig("contexts-not-a-mapping", set_at("contexts", ["a"]), "load"),
    BadTalosconfig("endpoints-not-a-list", set_at(f"contexts.{CLUSTER}.endpoints", {"a": 1}), "load"),
    BadTalosconfig("key-of-another-certificate", set_at(f"contexts.{CLUSTER}.key", _OTHER_KEY), "client"),
]


@pytest.mark.parametrize("case", BAD_TALOSCONFIGS, ids=lambda case: case.id)
def test_bad_talosconfig_is_refused_by_both(oracle: Oracle, bundle: SecretsBundle, case: BadTalosconfig) -> None:
    data = build_talosconfig(CLUSTER, bundle, endpoints=["192.0.2.10"], nodes=["192.0.2.10"]).to_dict()
    case.mutate(data)
    text = yaml.safe_dump(data, sort_keys=False)

    facts = oracle.talosconfig(text)

    assert facts.verdict.stage == case.stage, facts.verdict.errors
    with pytest.raises(TalosError):
        TalosConfig.from_yaml(text).current()
