import copy
from collections.abc import Callable
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from talos.config import Role, render_config
from talos.documents import Document
from talos.errors import ConfigError
from talos.secrets import SecretsBundle
from talos.validation import ConfigValidationError, Problem, _translate, endpoint_problem, validate_config
from talos.versions import CONTRACTS, CURRENT
from tests.talos.cases import RenderCase, case, rendered_cases

Mutation = Callable[[list[Document]], None]


@pytest.fixture(scope="module")
def rendered(secrets_bundle: SecretsBundle) -> dict[str, list[Document]]:
    options = case("v1.13-defaults").options
    return {role: render_config(options, secrets_bundle, role) for role in ("controlplane", "worker")}


def problems_of(documents: list[Document], **kwargs: Any) -> tuple[Problem, ...]:
    with pytest.raises(ConfigValidationError) as caught:
        validate_config(documents, CURRENT, **kwargs)
    return caught.value.problems


def mutated(rendered: dict[str, list[Document]], role: Role, mutate: Mutation) -> list[Document]:
    documents = copy.deepcopy(rendered[role])
    mutate(documents)
    return documents


def machine(documents: list[Document]) -> dict[str, Any]:
    return documents[0]["machine"]


def cluster(documents: list[Document]) -> dict[str, Any]:
    return documents[0]["cluster"]


def static_interface(documents: list[Document], **fields: Any) -> None:
    machine(documents)["network"] = {
        "interfaces": [
            {
                "interface": "eth0",
                "addresses": ["192.0.2.10/32"],
                "routes": [{"network": "192.0.2.1/32"}, {"network": "0.0.0.0/0", "gateway": "192.0.2.1"}],
                **fields,
            }
        ]
    }


def link_config(**fields: Any) -> Document:
    return {"apiVersion": "v1alpha1", "kind": "LinkConfig", "name": "eth0", **fields}


MALFORMED: list[tuple[str, str, Mutation, str, str, str]] = [
    # (name, role, mutation, document, path, message fragment)
    (
        "misspelt-section",
        "worker",
        lambda d: machine(d).update(instal=machine(d).pop("install")),
        "v1alpha1",
        "machine.instal",
        "unknown field 'instal'",
    ),
    (
        "wrong-case-field",
        "worker",
        lambda d: machine(d).update(certSans=["a.example"]),
        "v1alpha1",
        "machine.certSans",
        "unknown field 'certSans'",
    ),
    (
        "string-for-boolean",
        "worker",
        lambda d: machine(d)["install"].update(wipe="false"),
        "v1alpha1",
        "machine.install.wipe",
        "is a string, expected a boolean",
    ),
    (
        "unknown-cni",
        "controlplane",
        lambda d: cluster(d)["network"].update(cni={"name": "flanel"}),
        "v1alpha1",
        "cluster.network.cni.name",
        "'flanel' is not one of flannel, custom, none",
    ),
    (
        "http-endpoint",
        "worker",
        lambda d: cluster(d)["controlPlane"].update(endpoint="http://api.example:6443"),
        "v1alpha1",
        "cluster.controlPlane.endpoint",
        "does not match the pattern ^https://",
    ),
    (
        "endpoint-port-out-of-range",
        "worker",
        lambda d: cluster(d)["controlPlane"].update(endpoint="https://api.example:99999"),
        "v1alpha1",
        "cluster.controlPlane.endpoint",
        "port must be a number between 1 and 65535",
    ),
    (
        "no-install-disk",
        "worker",
        lambda d: machine(d)["install"].pop("disk"),
        "v1alpha1",
        "machine.install",
        "neither disk nor a valid diskSelector is set",
    ),
    (
        "selector-by-name",
        "worker",
        lambda d: machine(d)["install"].update(disk="", diskSelector={"name": "sda"}),
        "v1alpha1",
        "machine.install.diskSelector.name",
        "by name is not supported",
    ),
    (
        "selector-size-syntax",
        "worker",
        lambda d: machine(d)["install"].update(diskSelector={"size": "~1TB"}),
        "v1alpha1",
        "machine.install.diskSelector.size",
        "'~1TB' is not a size condition",
    ),
    (
        "extra-kernel-args-with-uki-cmdline",
        "worker",
        lambda d: machine(d)["install"].update(extraKernelArgs=["console=ttyS0"]),
        "v1alpha1",
        "machine.install.extraKernelArgs",
        "cannot be used together with grubUseUKICmdline",
    ),
    (
        "install-image-latest",
        "worker",
        lambda d: machine(d)["install"].update(image="ghcr.io/siderolabs/installer:latest"),
        "v1alpha1",
        "machine.install.image",
        "it is not pinned: without a tag, or with `latest`",
    ),
    (
        "install-image-missing",
        "controlplane",
        lambda d: machine(d)["install"].pop("image"),
        "v1alpha1",
        "machine.install.image",
        "is required in metal mode",
    ),
    (
        "control-plane-without-ca-key",
        "controlplane",
        lambda d: machine(d)["ca"].update(key=""),
        "v1alpha1",
        "machine.ca.key",
        "a control plane needs the Talos API CA key",
    ),
    (
        "worker-with-os-ca-key",
        "worker",
        lambda d: machine(d)["ca"].update(key="a2V5"),
        "v1alpha1",
        "machine.ca.key",
        "a worker must not carry the Talos API CA key",
    ),
    (
        "worker-with-kubernetes-ca-key",
        "worker",
        lambda d: cluster(d)["ca"].update(key="a2V5"),
        "v1alpha1",
        "cluster.ca.key",
        "a worker must not carry the Kubernetes CA key",
    ),
    (
        "worker-with-etcd",
        "worker",
        lambda d: cluster(d).update(etcd={"ca": {"crt": "Y3J0", "key": "a2V5"}}),
        "v1alpha1",
        "cluster.etcd",
        "etcd runs only on control plane nodes",
    ),
    (
        "persist-false",
        "worker",
        lambda d: d[0].update(persist=False),
        "v1alpha1",
        "persist",
        "must be true",
    ),
    (
        "pod-subnet-prefix-too-long",
        "worker",
        lambda d: cluster(d)["network"].update(podSubnets=["10.244.0.0/33"]),
        "v1alpha1",
        "cluster.network.podSubnets[0]",
        "'10.244.0.0/33' is not a valid CIDR",
    ),
    (
        "service-subnet-not-cidr",
        "worker",
        lambda d: cluster(d)["network"].update(serviceSubnets=["10.96.0.0"]),
        "v1alpha1",
        "cluster.network.serviceSubnets[0]",
        "is not a valid CIDR",
    ),
    (
        "bad-dns-domain",
        "worker",
        lambda d: cluster(d)["network"].update(dnsDomain="cluster..local"),
        "v1alpha1",
        "cluster.network.dnsDomain",
        "is not a valid DNS name",
    ),
    (
        "etcd-advertised-subnet-invalid",
        "controlplane",
        lambda d: cluster(d)["etcd"].update(advertisedSubnets=["!10.0.0.0/40"]),
        "v1alpha1",
        "cluster.etcd.advertisedSubnets[0]",
        "'!10.0.0.0/40' is not a subnet or an IP address",
    ),
    (
        "kubelet-valid-subnet-invalid",
        "worker",
        lambda d: machine(d)["kubelet"].update(nodeIP={"validSubnets": ["10.0.0.0/8", "eth0"]}),
        "v1alpha1",
        "machine.kubelet.nodeIP.validSubnets[1]",
        "'eth0' is not a subnet or an IP address",
    ),
    (
        "inline-manifest-name-twice",
        "controlplane",
        lambda d: cluster(d).update(inlineManifests=[{"name": "cni", "contents": ""}] * 2),
        "v1alpha1",
        "cluster.inlineManifests[1].name",
        "'cni' is used twice",
    ),
    (
        "interface-address-out-of-range",
        "worker",
        lambda d: static_interface(d, addresses=["192.0.2.300/32"]),
        "v1alpha1",
        "machine.network.interfaces[0].addresses[0]",
        "'192.0.2.300/32' is not an IP address or CIDR",
    ),
    (
        "route-gateway-not-ip",
        "worker",
        lambda d: static_interface(d, routes=[{"network": "0.0.0.0/0", "gateway": "gw.example"}]),
        "v1alpha1",
        "machine.network.interfaces[0].routes[0].gateway",
        "'gw.example' is not an IP address",
    ),
    (
        "route-without-network-or-gateway",
        "worker",
        lambda d: static_interface(d, routes=[{"metric": 1024}]),
        "v1alpha1",
        "machine.network.interfaces[0].routes[0]",
        "either network or gateway must be set",
    ),
    (
        "route-field-misspelt",
        "worker",
        lambda d: static_interface(d, routes=[{"netwrok": "0.0.0.0/0", "gateway": "192.0.2.1"}]),
        "v1alpha1",
        "machine.network.interfaces[0].routes[0].netwrok",
        "unknown field 'netwrok'",
    ),
    (
        "interface-and-selector",
        "worker",
        lambda d: static_interface(d, deviceSelector={"hardwareAddr": "aa:bb:cc:dd:ee:ff"}),
        "v1alpha1",
        "machine.network.interfaces[0]",
        "exactly one of interface and deviceSelector must be set",
    ),
    (
        "vip-on-worker",
        "worker",
        lambda d: static_interface(d, vip={"ip": "192.0.2.100"}),
        "v1alpha1",
        "machine.network.interfaces[0].vip",
        "allowed on control plane nodes only",
    ),
    (
        "cni-none-with-urls",
        "controlplane",
        lambda d: cluster(d)["network"].update(cni={"name": "none", "urls": ["https://x.example/cni.yaml"]}),
        "v1alpha1",
        "cluster.network.cni.urls",
        "must be empty for the 'none' CNI",
    ),
    (
        "custom-cni-without-urls",
        "controlplane",
        lambda d: cluster(d)["network"].update(cni={"name": "custom"}),
        "v1alpha1",
        "cluster.network.cni.urls",
        "the custom CNI needs the URLs of its manifests",
    ),
    (
        "none-cni-with-flannel-policies",
        "controlplane",
        lambda d: cluster(d)["network"].update(cni={"name": "none", "flannel": {"kubeNetworkPoliciesEnabled": True}}),
        "v1alpha1",
        "cluster.network.cni.flannel.kubeNetworkPoliciesEnabled",
        "is a flannel option and the 'none' CNI is not flannel",
    ),
    (
        "negative-link-mtu",
        "worker",
        lambda d: d.append(link_config(mtu=-1)),
        "LinkConfig/eth0",
        "mtu",
        "-1 is below the minimum 0",
    ),
    (
        "host-dns-forward-without-enabled",
        "worker",
        lambda d: machine(d)["features"]["hostDNS"].update(enabled=False),
        "v1alpha1",
        "machine.features.hostDNS.forwardKubeDNSToHost",
        "requires machine.features.hostDNS.enabled",
    ),
    (
        "link-address-out-of-range",
        "worker",
        lambda d: d.append(link_config(addresses=[{"address": "192.0.2.300/32"}])),
        "LinkConfig/eth0",
        "addresses[0].address",
        "'192.0.2.300/32' is not a valid IP prefix",
    ),
    (
        "link-route-gateway-unspecified",
        "worker",
        lambda d: d.append(link_config(routes=[{"gateway": "0.0.0.0"}])),
        "LinkConfig/eth0",
        "routes[0].gateway",
        "'0.0.0.0' is not a valid IP address",
    ),
    (
        "hostname-in-both-places",
        "worker",
        lambda d: machine(d).update(network={"hostname": "w-1"}),
        "HostnameConfig",
        "",
        "static hostname is already set in the v1alpha1 document",
    ),
    (
        "hostname-next-to-auto-stable",
        "worker",
        lambda d: d[1].update(hostname="w-1"),
        "HostnameConfig",
        "hostname",
        "cannot be set together with auto: stable",
    ),
    (
        "hostname-auto-typo",
        "worker",
        lambda d: d[1].update(auto="stabel"),
        "HostnameConfig",
        "auto",
        "'stabel' is not one of stable, off",
    ),
    (
        "duplicate-document",
        "worker",
        lambda d: d.append(dict(d[1])),
        "HostnameConfig",
        "",
        "duplicate document: document 2 is the same HostnameConfig",
    ),
    (
        "unknown-kind",
        "worker",
        lambda d: d.append({"apiVersion": "v1alpha1", "kind": "HostnameConfg", "auto": "off"}),
        "HostnameConfg",
        "kind",
        "unknown document kind 'HostnameConfg'",
    ),
    (
        "typed-document-without-api-version",
        "worker",
        lambda d: d.append({"kind": "ResolverConfig"}),
        "ResolverConfig",
        "apiVersion",
        "typed document without apiVersion",
    ),
    (
        "same-link-in-two-kinds",
        "worker",
        lambda d: d.extend([link_config(), {"apiVersion": "v1alpha1", "kind": "DummyLinkConfig", "name": "eth0"}]),
        "DummyLinkConfig/eth0",
        "name",
        "link 'eth0' is also configured by a LinkConfig document",
    ),
    (
        "no-v1alpha1-document",
        "worker",
        lambda d: d.pop(0),
        "v1alpha1",
        "",
        "the v1alpha1 document (machine and cluster sections) is missing",
    ),
]


@pytest.mark.parametrize(
    ("role", "mutate", "document", "path", "message"),
    [pytest.param(*rest, id=name) for name, *rest in MALFORMED],
)
def test_malformed_config_problem_names_document_path_and_fix(
    rendered: dict[str, list[Document]], role: Role, mutate: Mutation, document: str, path: str, message: str
) -> None:
    problems = problems_of(mutated(rendered, role, mutate))

    matching = [p for p in problems if (p.document, p.path) == (document, path) and message in p.message]
    assert matching, f"no problem at {document}: {path} containing {message!r} in:\n" + "\n".join(map(str, problems))
    assert all(p.fix for p in problems)


def test_malformed_catalogue_is_large_and_distinct() -> None:
    assert len({name for name, *_ in MALFORMED}) == len(MALFORMED) >= 15


@pytest.mark.parametrize(
    ("field", "suggestion"),
    [("instal", "did you mean 'install'?"), ("certSans", "did you mean 'certSANs'?"), ("xyz", "remove it")],
)
def test_unknown_field_fix_suggests_closest_known_field(
    rendered: dict[str, list[Document]], field: str, suggestion: str
) -> None:
    problems = problems_of(mutated(rendered, "worker", lambda d: machine(d).update({field: {}})))

    problem = next(p for p in problems if p.path == f"machine.{field}")
    assert problem.fix.startswith(suggestion)


def test_unknown_kind_fix_suggests_closest_kind(rendered: dict[str, list[Document]]) -> None:
    documents = [*rendered["worker"], {"apiVersion": "v1alpha1", "kind": "LinkConfg", "name": "eth0"}]

    assert problems_of(documents)[0].fix == "did you mean 'LinkConfig'?"


def test_error_lists_every_problem_one_per_line(rendered: dict[str, list[Document]]) -> None:
    def break_twice(documents: list[Document]) -> None:
        documents[0]["persist"] = False
        machine(documents)["instal"] = {}

    with pytest.raises(ConfigValidationError) as caught:
        validate_config(mutated(rendered, "worker", break_twice), CURRENT)

    text = str(caught.value)
    assert text.startswith("the machine config is invalid (2 problem(s)):")
    assert "  - v1alpha1: machine.instal: unknown field 'instal' (fix: did you mean 'install'?)" in text
    assert "  - v1alpha1: persist: must be true" in text


def test_error_messages_never_quote_secret_values(
    rendered: dict[str, list[Document]], secrets_bundle: SecretsBundle
) -> None:
    def break_secrets(documents: list[Document]) -> None:
        machine(documents)["token"] = [secrets_bundle.trustd_token]
        cluster(documents)["secret"] = {"value": secrets_bundle.cluster_secret}
        cluster(documents)["ca"]["key"] = cluster(rendered["controlplane"])["ca"]["key"]

    with pytest.raises(ConfigValidationError) as caught:
        validate_config(mutated(rendered, "worker", break_secrets), CURRENT)

    text = str(caught.value)
    assert "machine.token: is a list, expected a string" in text
    assert "cluster.secret: is a mapping, expected a string" in text
    for secret in (
        secrets_bundle.trustd_token,
        secrets_bundle.cluster_secret,
        cluster(rendered["controlplane"])["ca"]["key"],
    ):
        assert secret not in text


@pytest.mark.parametrize(
    ("document", "path", "message"),
    [
        (
            {
                "apiVersion": "v1alpha1",
                "kind": "SideroLinkConfig",
                "apiUrl": "http://u:SECRET-1@s.example/?jointoken=SECRET-2",
            },
            "apiUrl",
            "'http://******@s.example/?******' does not match the pattern ^(https|grpc)://",
        ),
        (
            {"apiVersion": "v1alpha1", "kind": "SideroLinkConfig", "apiUrl": "s.example:8099?jointoken=SECRET-1"},
            "apiUrl",
            "'s.example:8099?******' does not match the pattern",
        ),
        (
            {
                "apiVersion": "v1alpha1",
                "kind": "RegistryMirrorConfig",
                "name": "docker.io",
                "endpoints": [{"url": "ftp://user:SECRET-1@mirror.example/v2#SECRET-2"}],
            },
            "endpoints[0].url",
            "'ftp://******@mirror.example/v2?******' does not match the pattern ^(http|https)://",
        ),
    ],
)
def test_schema_errors_about_urls_mask_credentials_and_query(
    rendered: dict[str, list[Document]], document: Document, path: str, message: str
) -> None:
    problems = problems_of([*rendered["worker"], document])

    [problem] = [p for p in problems if p.path == path]
    assert message in problem.message and problem.fix.startswith("start the URL with")
    assert "SECRET" not in str(ConfigValidationError(list(problems)))


@pytest.mark.parametrize("rule", [{"pattern": "^[a-z]+$"}, {"enum": ["a", "b"]}])
def test_pattern_or_enum_error_on_a_secret_field_hides_the_value(rule: dict[str, Any]) -> None:
    # No rule of today's official schemas puts a pattern or enum on a secret field; a new contract's could.
    document = {"version": "v1alpha1", "cluster": {"token": "SECRET.0123456789"}}
    schema = {"properties": {"cluster": {"properties": {"token": {"type": "string", **rule}}}}}
    [error] = Draft202012Validator(schema).iter_errors(document)

    [problem] = _translate("v1alpha1", document, error)

    assert problem.path == "cluster.token" and problem.message.startswith("the value (hidden: it is a secret)")
    assert "SECRET" not in str(problem)


def test_endpoint_error_masks_credentials(rendered: dict[str, list[Document]]) -> None:
    documents = mutated(
        rendered, "worker", lambda d: cluster(d)["controlPlane"].update(endpoint="https://u:SECRET@api.example:0")
    )

    [problem] = problems_of(documents)

    assert (
        problem.message == "'https://******@api.example:0' is malformed: the port must be a number between 1 and 65535"
    )


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/siderolabs/installer:v1.13.9",
        f"factory.talos.dev/metal-installer/{'0' * 64}:v1.13.9",
        f"registry.example:5000/installer@sha256:{'f' * 64}",
    ],
)
def test_installer_pinned_by_release_or_digest_is_valid(rendered: dict[str, list[Document]], image: str) -> None:
    validate_config(mutated(rendered, "worker", lambda d: machine(d)["install"].update(image=image)), CURRENT)


@pytest.mark.parametrize(("render_case", "role"), rendered_cases())
def test_every_catalogue_config_is_valid(render_case: RenderCase, role: Role, secrets_bundle: SecretsBundle) -> None:
    documents = render_config(render_case.options, secrets_bundle, role)

    validate_config(documents, render_case.options.contract)


def test_static_network_recipe_is_valid_in_both_forms(rendered: dict[str, list[Document]]) -> None:
    legacy = mutated(rendered, "worker", static_interface)
    typed = [
        *rendered["worker"],
        link_config(
            addresses=[{"address": "192.0.2.10/32"}], routes=[{"destination": "192.0.2.1/32"}, {"gateway": "192.0.2.1"}]
        ),
    ]

    for documents in (legacy, typed):
        validate_config(documents, CURRENT)


def test_pinned_hostname_and_disk_selector_are_valid(rendered: dict[str, list[Document]]) -> None:
    def pin(documents: list[Document]) -> None:
        documents[1].update(auto="off", hostname="w-1")
        install = machine(documents)["install"]
        install.pop("disk")
        install["diskSelector"] = {"wwid": "eui.*", "size": ">= 1.5 TB", "type": "ssd"}

    validate_config(mutated(rendered, "worker", pin), CURRENT)


def test_deprecated_fields_talos_still_decodes_are_accepted(rendered: dict[str, list[Document]]) -> None:
    def deprecated(documents: list[Document]) -> None:
        machine(documents)["install"].update(extraKernelArgs=["console=ttyS0"], grubUseUKICmdline=False)
        machine(documents)["features"]["rbac"] = True
        machine(documents)["acceptedCAs"] = [{"crt": "Y3J0"}]
        machine(documents)["registries"] = {"mirrors": {"docker.io": {"endpoints": ["https://mirror.example"]}}}

    validate_config(mutated(rendered, "worker", deprecated), CURRENT)


def test_null_fields_are_read_as_absent_like_talos(rendered: dict[str, list[Document]]) -> None:
    def empty_keys(documents: list[Document]) -> None:
        machine(documents)["kubelet"].update(extraArgs=None, clusterDNS=None)
        machine(documents)["pods"] = None

    validate_config(mutated(rendered, "worker", empty_keys), CURRENT)


def test_v1_12_config_with_empty_network_map_is_valid(secrets_bundle: SecretsBundle) -> None:
    options = case("v1.12-defaults").options
    documents = render_config(options, secrets_bundle, "worker")

    assert documents[0]["machine"]["network"] == {}
    validate_config(documents, CONTRACTS["v1.12"])


def test_cloud_mode_needs_no_install_section(rendered: dict[str, list[Document]]) -> None:
    documents = mutated(rendered, "worker", lambda d: machine(d).pop("install"))

    validate_config(documents, CURRENT, mode="cloud")
    assert problems_of(documents, mode="metal")[0].path == "machine.install"


def test_container_mode_requires_host_dns_forwarding(rendered: dict[str, list[Document]]) -> None:
    documents = mutated(rendered, "worker", lambda d: machine(d)["features"].pop("hostDNS"))

    problems = problems_of(documents, mode="container")

    assert {p.path for p in problems} == {
        "machine.features.hostDNS.enabled",
        "machine.features.hostDNS.forwardKubeDNSToHost",
    }


def test_unknown_mode_refused(rendered: dict[str, list[Document]]) -> None:
    with pytest.raises(ConfigError, match=r"validate_config: mode: unknown mode 'vm'"):
        validate_config(rendered["worker"], CURRENT, mode="vm")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("endpoint", "problem"),
    [
        ("https://api.example:6443", None),
        ("https://[2001:db8::1]:6443", None),
        ("https://203.0.113.10", None),
        ("ftp://api.example:6443", "the scheme must be https://"),
        ("https://:6443", "the host name must not be blank"),
        ("https://api.example:0", "the port must be a number between 1 and 65535"),
        ("https://api.example:port", "the port must be a number between 1 and 65535"),
    ],
)
def test_endpoint_problem(endpoint: str, problem: str | None) -> None:
    assert endpoint_problem(endpoint) == problem
