"""Validation: configs we accept pass Talos' metal-mode strict validation; configs we refuse, Talos refuses."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import pytest

from providers.talos_machine_config import render
from talos.config import Role, render_config
from talos.documents import Document, dump_documents, parse_documents
from talos.secrets import SecretsBundle
from talos.validation import ConfigValidationError, validate_config
from talos.versions import CONTRACTS, CURRENT
from tests.components.program import run_program
from tests.conformance.differences import RecordProperty, note_difference
from tests.conformance.edits import Edit, drop_at, edits, set_at
from tests.conformance.oracle import GenerateRequest, Oracle, Verdict
from tests.talos.cases import RenderCase, case, rendered_cases
from tests.talos.test_validation import MALFORMED, Mutation

pytestmark = pytest.mark.oracle

FIXTURES = Path(__file__).parents[1] / "data" / "configs"


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.yaml")), ids=lambda path: path.name)
def test_fixture_config_is_accepted_by_both(oracle: Oracle, path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    contract = CONTRACTS[path.name.split("-", 1)[0]]

    verdict = oracle.validate(text)

    validate_config(parse_documents(text), contract)
    assert verdict == Verdict(errors=()), verdict


@pytest.fixture(scope="module")
def bundle() -> SecretsBundle:
    return SecretsBundle.generate()


@pytest.mark.parametrize(("case", "role"), rendered_cases())
def test_config_we_render_passes_talos_validation(
    oracle: Oracle, bundle: SecretsBundle, case: RenderCase, role: Role
) -> None:
    documents = render_config(case.options, bundle, role)

    verdict = oracle.validate(dump_documents(documents))

    validate_config(documents, case.options.contract)
    assert verdict == Verdict(errors=()), verdict


@pytest.fixture(scope="module")
def machinery_configs(oracle: Oracle, bundle: SecretsBundle) -> dict[str, list[Document]]:
    """Talos' own controlplane and worker configs for a plain cluster: the good configs the bad ones start from."""
    generated = oracle.generate(GenerateRequest.plain(bundle.to_yaml()))
    assert generated.verdict.accepted, generated.verdict.errors
    return {"controlplane": parse_documents(generated.controlplane), "worker": parse_documents(generated.worker)}


@dataclass(frozen=True)
class BadConfig:
    id: str
    edit: Edit
    role: str = "controlplane"
    difference: str | None = None
    """Set when machinery accepts what ours refuses: the id of the listed difference."""


def _append_document(document: Document) -> Edit:
    return lambda documents: documents.append(document)


_LINK = {"apiVersion": "v1alpha1", "kind": "LinkConfig", "name": "eth0"}
_HOSTNAME = {"apiVersion": "v1alpha1", "kind": "HostnameConfig", "auto": "stable"}
_NO_DISK = drop_at("0.machine.install.disk")


def _cni(cni: dict[str, object]) -> Edit:
    return set_at("0.cluster.network.cni", cni)


def _interfaces(*interfaces: dict[str, object]) -> Edit:
    return set_at("0.machine.network.interfaces", list(interfaces))


BAD_CONFIGS = [
    BadConfig("unknown-field", set_at("0.machine.colour", "blue")),
    BadConfig("misspelt-section", set_at("0.machine.instal", {"disk": "/dev/sda"})),
    BadConfig("persist-false", set_at("0.persist", False)),
    BadConfig("unknown-machine-type", set_at("0.machine.type", "master")),
    BadConfig("no-install-disk", _NO_DISK),
    BadConfig("disk-selector-by-name", edits(_NO_DISK, set_at("0.machine.install.diskSelector.name", "sda"))),
    BadConfig("disk-selector-bad-size", edits(_NO_DISK, set_at("0.machine.install.diskSelector.size", "big"))),
    BadConfig("disk-selector-bad-type", edits(_NO_DISK, set_at("0.machine.install.diskSelector.type", "floppy"))),
    BadConfig("extra-kernel-args-with-uki-cmdline", set_at("0.machine.install.extraKernelArgs", ["console=ttyS0"])),
    BadConfig("control-plane-without-ca-key", set_at("0.machine.ca.key", "")),
    BadConfig(
        "worker-with-cluster-ca-key",
        set_at("0.cluster.ca.key", "LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCg=="),
        "worker",
    ),
    BadConfig("worker-with-etcd", set_at("0.cluster.etcd", {"ca": {"crt": "", "key": ""}}), "worker"),
    BadConfig("endpoint-missing", drop_at("0.cluster.controlPlane.endpoint")),
    BadConfig("endpoint-not-a-url", set_at("0.cluster.controlPlane.endpoint", "not a url")),
    BadConfig("cni-unknown", _cni({"name": "calico"})),
    BadConfig("cni-none-with-urls", _cni({"name": "none", "urls": ["https://example.com/cni.yaml"]})),
    BadConfig("dns-domain-not-a-name", set_at("0.cluster.network.dnsDomain", "bad domain!")),
    BadConfig("hostname-twice", set_at("0.machine.network.hostname", "cp1")),
    BadConfig("hostname-with-auto", set_at("1.hostname", "cp1")),
    BadConfig("hostname-auto-unknown", set_at("1.auto", "random")),
    BadConfig("hostname-document-unknown-field", set_at("1.automatic", "stable")),
    BadConfig("hostname-document-twice", _append_document(dict(_HOSTNAME))),
    BadConfig("unknown-document-kind", _append_document({**_LINK, "kind": "LinkConfigs"})),
    BadConfig("link-address-without-prefix", _append_document({**_LINK, "addresses": [{"address": "192.0.2.10"}]})),
    BadConfig("link-route-bad-gateway", _append_document({**_LINK, "routes": [{"gateway": "192.0.2.999"}]})),
    BadConfig("link-twice", edits(_append_document(dict(_LINK)), _append_document(dict(_LINK)))),
    BadConfig("legacy-interface-bad-cidr", _interfaces({"interface": "eth0", "addresses": ["192.0.2.10/33"]})),
    BadConfig(
        "legacy-route-bad-network",
        _interfaces({"interface": "eth0", "routes": [{"network": "0.0.0.0/99", "gateway": "192.0.2.1"}]}),
    ),
    BadConfig("legacy-interface-without-name", _interfaces({"addresses": ["192.0.2.10/32"]})),
    BadConfig("cert-san-not-a-list", set_at("0.machine.certSANs", "api.example.com")),
    BadConfig("persist-quoted-yes", set_at("0.persist", "yes"), difference="validation-yaml11-booleans"),
    BadConfig(
        "endpoint-http",
        set_at("0.cluster.controlPlane.endpoint", "http://192.0.2.10:6443"),
        difference="validation-endpoint-https",
    ),
    BadConfig(
        "pod-subnet-not-a-cidr",
        set_at("0.cluster.network.podSubnets", ["10.244.0.0/33"]),
        difference="validation-subnets",
    ),
    BadConfig("cni-custom-without-urls", _cni({"name": "custom"})),
    BadConfig(
        "cni-none-with-flannel-policies", _cni({"name": "none", "flannel": {"kubeNetworkPoliciesEnabled": True}})
    ),
    BadConfig("link-mtu-negative", _append_document({**_LINK, "mtu": -1})),
]


@pytest.mark.parametrize("case", BAD_CONFIGS, ids=lambda case: case.id)
def test_bad_config_is_refused_by_both(
    oracle: Oracle, machinery_configs: dict[str, list[Document]], case: BadConfig, record_property: RecordProperty
) -> None:
    documents = copy.deepcopy(machinery_configs[case.role])
    case.edit(documents)

    verdict = oracle.validate(dump_documents(documents))

    with pytest.raises(ConfigValidationError):
        validate_config(documents, CURRENT)
    if case.difference:
        note_difference(record_property, case.difference)
        assert verdict.accepted, f"machinery now refuses it too; drop the listed difference: {verdict.errors}"
    else:
        assert not verdict.accepted


UNIT_CATALOGUE_DIFFERENCES = {
    "http-endpoint": "validation-endpoint-https",
    "pod-subnet-prefix-too-long": "validation-subnets",
    "service-subnet-not-cidr": "validation-subnets",
    "no-v1alpha1-document": "validation-v1alpha1-required",
    "install-image-latest": "validation-installer-pinned",
    "install-image-missing": "validation-installer-pinned",
}
"""Cases of the unit tests' malformed catalogue that Talos accepts, by name: the listed difference they meet."""


@pytest.mark.parametrize(
    ("role", "mutate"), [pytest.param(role, mutate, id=name) for name, role, mutate, *_ in MALFORMED]
)
def test_config_our_unit_tests_refuse_is_refused_by_talos(
    oracle: Oracle,
    bundle: SecretsBundle,
    role: Role,
    mutate: Mutation,
    request: pytest.FixtureRequest,
    record_property: RecordProperty,
) -> None:
    documents = render_config(case("v1.13-defaults").options, bundle, role)
    mutate(documents)

    verdict = oracle.validate(dump_documents(documents))

    with pytest.raises(ConfigValidationError):
        validate_config(documents, CURRENT)
    difference = UNIT_CATALOGUE_DIFFERENCES.get(request.node.callspec.id)
    if difference:
        note_difference(record_property, difference)
        assert verdict.accepted, f"Talos now refuses it too; drop the listed difference: {verdict.errors}"
    else:
        assert not verdict.accepted


def _stack_node_configs(stack: str, bundle: SecretsBundle) -> dict[str, str]:
    """Node name -> the config TalosMachineConfig renders for it, from the program run on the stack file."""
    configs = run_program(stack).of_type("pulumi-python:dynamic/talos:TalosMachineConfig")
    return {
        config.name: dump_documents(render({**config.inputs, "secretsYaml": bundle.to_yaml()})) for config in configs
    }


@pytest.mark.parametrize("stack", ["lab", "prod"])
def test_each_stack_node_config_passes_talos_validation(oracle: Oracle, bundle: SecretsBundle, stack: str) -> None:
    configs = _stack_node_configs(stack, bundle)

    verdicts = {name: oracle.validate(text) for name, text in configs.items()}

    assert sorted(configs) == ["cp-1-config", "cp-2-config", "cp-3-config", "worker-1-config", "worker-2-config"]
    assert verdicts == dict.fromkeys(configs, Verdict(errors=())), verdicts
