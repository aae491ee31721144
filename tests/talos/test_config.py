import dataclasses
import json
from typing import Any

import pytest

from talos.config import ClusterOptions, Role, generate_config, render_config
from talos.documents import Document, parse_documents
from talos.errors import ConfigError
from talos.patches import load_patch
from talos.secrets import SecretsBundle
from talos.validation import ConfigValidationError
from talos.versions import CONTRACTS
from tests.talos.cases import RenderCase, case, rendered_cases

DEFAULTS = {"v1.13": case("v1.13-defaults").options, "v1.12": case("v1.12-defaults").options}


def ordered(documents: list[Document]) -> str:
    """The documents as JSON in key order: equal only when values and key order both match."""
    return json.dumps(documents, indent=1)


def v1alpha1(options: ClusterOptions, bundle: SecretsBundle, role: Role = "controlplane") -> dict[str, Any]:
    return render_config(options, bundle, role)[0]


@pytest.mark.parametrize(("render_case", "role"), rendered_cases(golden_only=True))
def test_render_matches_talosctl_output_values_and_key_order(
    render_case: RenderCase, role: Role, talosctl_bundle: SecretsBundle
) -> None:
    expected = parse_documents(render_case.golden_file(role).read_text())

    rendered = render_config(render_case.options, talosctl_bundle, role)

    assert ordered(rendered) == ordered(expected)


@pytest.mark.parametrize("contract", ["v1.13", "v1.12"])
def test_render_controlplane_fields_of_the_reference_table(contract: str, secrets_bundle: SecretsBundle) -> None:
    pins = CONTRACTS[contract]
    doc = v1alpha1(DEFAULTS[contract], secrets_bundle)
    machine, cluster = doc["machine"], doc["cluster"]

    assert (doc["version"], doc["debug"], doc["persist"]) == ("v1alpha1", False, True)
    assert machine["type"] == "controlplane"
    assert machine["token"] == secrets_bundle.trustd_token
    assert machine["ca"]["key"] and machine["certSANs"] == []
    assert machine["kubelet"] == {
        "image": f"ghcr.io/siderolabs/kubelet:v{pins.kubernetes_version}",
        "defaultRuntimeSeccompProfileEnabled": True,
        "disableManifestsDirectory": True,
    }
    assert machine["install"] == {
        "disk": "/dev/sda",
        "image": f"ghcr.io/siderolabs/installer:{pins.talos_version}",
        "wipe": False,
        "grubUseUKICmdline": True,
    }
    assert machine["features"] == {
        "diskQuotaSupport": True,
        "kubePrism": {"enabled": True, "port": 7445},
        "hostDNS": {"enabled": True, "forwardKubeDNSToHost": True},
    }
    assert machine["nodeLabels"] == {"node.kubernetes.io/exclude-from-external-load-balancers": ""}
    assert ("network" in machine) is pins.network_empty_map
    assert cluster["network"] == {
        "dnsDomain": "cluster.local",
        "podSubnets": ["10.244.0.0/16"],
        "serviceSubnets": ["10.96.0.0/12"],
    }
    assert cluster["token"] == secrets_bundle.bootstrap_token
    assert cluster["secretboxEncryptionSecret"] == secrets_bundle.secretbox_encryption_secret
    assert set(cluster["ca"]) == set(cluster["aggregatorCA"]) == {"crt", "key"}
    assert list(cluster["serviceAccount"]) == ["key"]
    assert cluster["apiServer"]["admissionControl"][0]["name"] == "PodSecurity"
    assert cluster["apiServer"]["auditPolicy"]["rules"] == [{"level": "Metadata"}]
    assert "certSANs" not in cluster["apiServer"]
    assert cluster["discovery"] == {
        "enabled": True,
        "registries": {"kubernetes": {"disabled": True}, "service": {}},
    }
    assert list(cluster["etcd"]) == ["ca"] and "image" not in cluster["etcd"]
    assert cluster["clusterName"] == "demo"
    assert "extraManifests" not in cluster and "inlineManifests" not in cluster


@pytest.mark.parametrize("contract", ["v1.13", "v1.12"])
def test_render_worker_carries_no_ca_keys_etcd_or_control_plane_sections(
    contract: str, secrets_bundle: SecretsBundle
) -> None:
    doc = v1alpha1(DEFAULTS[contract], secrets_bundle, "worker")
    machine, cluster = doc["machine"], doc["cluster"]

    assert machine["type"] == "worker"
    assert machine["ca"]["key"] == "" and cluster["ca"]["key"] == ""
    assert machine["ca"]["crt"] == v1alpha1(DEFAULTS[contract], secrets_bundle)["machine"]["ca"]["crt"]
    assert "nodeLabels" not in machine
    assert list(cluster) == ["id", "secret", "controlPlane", "clusterName", "network", "token", "ca", "discovery"]


def test_render_emits_hostname_config_document_after_v1alpha1(secrets_bundle: SecretsBundle) -> None:
    for options in DEFAULTS.values():
        documents = render_config(options, secrets_bundle, "worker")

        assert documents[1] == {"apiVersion": "v1alpha1", "kind": "HostnameConfig", "auto": "stable"}
        assert len(documents) == 2


def test_render_defaults_kubernetes_and_installer_to_contract_pins(secrets_bundle: SecretsBundle) -> None:
    options = ClusterOptions(cluster_name="c", endpoint="https://c.example:6443", talos_version="v1.12.3")
    machine = v1alpha1(options, secrets_bundle)["machine"]

    assert machine["install"]["image"] == "ghcr.io/siderolabs/installer:v1.12.3"
    assert machine["kubelet"]["image"] == "ghcr.io/siderolabs/kubelet:v1.35.4"


def test_render_kubernetes_version_with_v_prefix_used_once(secrets_bundle: SecretsBundle) -> None:
    doc = v1alpha1(case("ipv6-endpoint-kubernetes-v-prefix").options, secrets_bundle)

    assert doc["cluster"]["scheduler"]["image"] == "registry.k8s.io/kube-scheduler:v1.35.0"


def test_render_ipv6_endpoint_keeps_ipv4_subnets_like_talosctl(secrets_bundle: SecretsBundle) -> None:
    doc = v1alpha1(case("ipv6-endpoint-kubernetes-v-prefix").options, secrets_bundle)

    assert doc["cluster"]["controlPlane"]["endpoint"] == "https://[2001:db8::10]:6443"
    assert doc["cluster"]["network"]["podSubnets"] == ["10.244.0.0/16"]


def test_render_additional_sans_go_to_machine_and_api_server(secrets_bundle: SecretsBundle) -> None:
    options = case("ipv6-endpoint-kubernetes-v-prefix").options
    controlplane, worker = (v1alpha1(options, secrets_bundle, role) for role in ("controlplane", "worker"))

    assert controlplane["machine"]["certSANs"] == ["2001:db8::10", "api.v6.example"]
    assert controlplane["cluster"]["apiServer"]["certSANs"] == ["2001:db8::10", "api.v6.example"]
    assert worker["machine"]["certSANs"] == ["2001:db8::10", "api.v6.example"]


def test_render_install_disk_path(secrets_bundle: SecretsBundle) -> None:
    install = v1alpha1(case("nvme-install-disk").options, secrets_bundle, "worker")["machine"]["install"]

    assert install["disk"] == "/dev/nvme0n1"
    assert "diskSelector" not in install


def test_render_disk_selector_replaces_disk_in_talos_field_order(secrets_bundle: SecretsBundle) -> None:
    install = v1alpha1(case("full-disk-selector").options, secrets_bundle)["machine"]["install"]

    assert "disk" not in install
    assert list(install["diskSelector"]) == ["size", "model", "serial", "modalias", "uuid", "type", "busPath"]
    assert list(install) == ["diskSelector", "image", "wipe", "grubUseUKICmdline"]


def test_render_custom_cni_with_urls_on_both_roles(secrets_bundle: SecretsBundle) -> None:
    for role in ("controlplane", "worker"):
        network = v1alpha1(case("custom-cni").options, secrets_bundle, role)["cluster"]["network"]

        assert network["cni"] == {"name": "custom", "urls": ["https://example.com/cilium.yaml"]}
        assert next(iter(network)) == "cni"


def test_render_kube_proxy_disabled_on_both_roles(secrets_bundle: SecretsBundle) -> None:
    options = case("no-kube-proxy-v1.12").options

    assert v1alpha1(options, secrets_bundle)["cluster"]["proxy"] == {
        "disabled": True,
        "image": "registry.k8s.io/kube-proxy:v1.35.4",
    }
    assert v1alpha1(options, secrets_bundle, "worker")["cluster"]["proxy"] == {"disabled": True}


def test_render_discovery_off_keeps_registries(secrets_bundle: SecretsBundle) -> None:
    discovery = v1alpha1(case("discovery-off").options, secrets_bundle, "worker")["cluster"]["discovery"]

    assert discovery == {"enabled": False, "registries": {"kubernetes": {"disabled": True}, "service": {}}}


def test_render_allow_scheduling_is_the_last_cluster_field(secrets_bundle: SecretsBundle) -> None:
    cluster = v1alpha1(case("scheduling-on-control-planes").options, secrets_bundle)["cluster"]

    assert list(cluster.items())[-1] == ("allowSchedulingOnControlPlanes", True)


def test_render_old_bundle_keeps_aescbc_secret(secrets_bundle: SecretsBundle) -> None:
    old = dataclasses.replace(secrets_bundle, secretbox_encryption_secret=None, aescbc_encryption_secret="c2VjcmV0")
    cluster = v1alpha1(DEFAULTS["v1.13"], old)["cluster"]

    assert cluster["aescbcEncryptionSecret"] == "c2VjcmV0"
    assert "secretboxEncryptionSecret" not in cluster


def test_render_returns_independent_documents(secrets_bundle: SecretsBundle) -> None:
    first = v1alpha1(DEFAULTS["v1.13"], secrets_bundle)
    first["cluster"]["apiServer"]["auditPolicy"]["rules"].append({"level": "None"})

    assert v1alpha1(DEFAULTS["v1.13"], secrets_bundle)["cluster"]["apiServer"]["auditPolicy"]["rules"] == [
        {"level": "Metadata"}
    ]


def test_render_unknown_role_refused(secrets_bundle: SecretsBundle) -> None:
    with pytest.raises(ConfigError, match=r"render_config: role: unknown role 'init' \(fix: use one of controlplane"):
        render_config(DEFAULTS["v1.13"], secrets_bundle, "init")  # type: ignore[arg-type]


BASE = {"cluster_name": "c", "endpoint": "https://c.example:6443"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cluster_name": " "}, r"cluster_name: is empty"),
        ({"endpoint": "c.example:6443"}, r"endpoint: 'c.example:6443' is malformed: the scheme must be https://"),
        ({"endpoint": "http://c.example:6443"}, r"endpoint: .* the scheme must be https://"),
        ({"endpoint": "https://:6443"}, r"endpoint: .* the host name must not be blank"),
        ({"endpoint": "https://c.example:70000"}, r"endpoint: .* port must be a number between 1 and 65535"),
        ({"endpoint": "https://2001:db8::1:6443"}, r"endpoint: .* IPv6 address must be enclosed in square brackets"),
        ({"endpoint": "https://c.example"}, r"endpoint: 'https://c.example' has no port \(fix: .*:6443"),
        ({"talos_version": "v1.11.5"}, r"talos_version: 'v1.11.5' is not a release of a supported Talos minor"),
        ({"talos_version": "latest"}, r"talos_version: 'latest' is not a release"),
        ({"kubernetes_version": "1.36"}, r"kubernetes_version: '1.36' is not a version \(fix: write e.g. 1.36.3"),
        ({"dns_domain": "bad domain"}, r"dns_domain: 'bad domain' is not a DNS name"),
        ({"installer_image": "ghcr.io/siderolabs/installer"}, r"installer_image: .*: it is not pinned: without a tag"),
        ({"installer_image": "ghcr.io/siderolabs/installer:latest"}, r"installer_image: .* or with `latest`"),
        (
            {"installer_image": "ghcr.io/siderolabs/installer:stable"},
            r"installer_image: .*: its tag 'stable' is not a Talos release",
        ),
        (
            {"installer_image": "ghcr.io/siderolabs/installer@sha256:abc"},
            r"installer_image: .*: its digest is not sha256: and 64",
        ),
        ({"installer_image": "ghcr.io/siderolabs/installer:v1.13.9 "}, r"installer_image: .* not an image reference"),
        ({"endpoint": "https://u:pw@c.example"}, r"endpoint: 'https://\*\*\*\*\*\*@c.example' has no port"),
        (
            {"install_disk": "/dev/sdb", "install_disk_selector": {"wwid": "x"}},
            r"install_disk: install_disk and install_disk_selector are mutually exclusive",
        ),
        ({"install_disk": "sda"}, r"install_disk: 'sda' is not a device path \(fix: write e.g. /dev/nvme0n1"),
        ({"install_disk_selector": {}}, r"install_disk_selector: is empty"),
        ({"install_disk_selector": {"name": "sda"}}, r"install_disk_selector: Talos cannot select .* by name"),
        ({"install_disk_selector": {"wwn": "x"}}, r"install_disk_selector: unknown field 'wwn'"),
        ({"install_disk_selector": {"size": "big"}}, r"install_disk_selector: size 'big' is not a size condition"),
        ({"install_disk_selector": {"type": "ssdd"}}, r"install_disk_selector: type 'ssdd' is unknown"),
        ({"install_disk_selector": {"serial": 123}}, r"install_disk_selector: serial must be a non-empty string"),
        ({"cni": "cilium"}, r"cni: unknown CNI 'cilium' \(fix: use one of flannel, none, custom"),
        ({"cni": "custom"}, r"cni_urls: the custom CNI needs the URLs of its manifests"),
        ({"cni_urls": ("https://x.example/a.yaml",)}, r"cni_urls: the 'flannel' CNI takes no manifest URLs"),
        ({"cni": "custom", "cni_urls": ("x.yaml",)}, r"cni_urls: 'x.yaml' is not an http\(s\) URL"),
        ({"additional_sans": ("a b",)}, r"additional_sans: 'a b' is not a DNS name or IP address"),
    ],
)
def test_cluster_options_bad_value_names_option_and_fix(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=rf"ClusterOptions: {message}") as caught:
        ClusterOptions(**{**BASE, **overrides})

    assert "(fix: " in str(caught.value)


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/siderolabs/installer:v1.13.9",
        "registry.example:5000/talos/installer:v1.14.0-rc.1",
        f"ghcr.io/siderolabs/installer@sha256:{'a' * 64}",
        f"ghcr.io/siderolabs/installer:v1.13.9@sha256:{'a' * 64}",
    ],
)
def test_cluster_options_accept_an_installer_pinned_by_release_or_digest(
    image: str, secrets_bundle: SecretsBundle
) -> None:
    options = ClusterOptions(**BASE, installer_image=image)

    assert render_config(options, secrets_bundle, "worker")[0]["machine"]["install"]["image"] == image


def test_generate_applies_patches_in_order_then_validates(secrets_bundle: SecretsBundle) -> None:
    first = load_patch("machine:\n  network:\n    nameservers: [192.0.2.53]\n", source="first")
    second = load_patch("machine:\n  network:\n    nameservers: [192.0.2.54]\n", source="second")
    hostname = load_patch("apiVersion: v1alpha1\nkind: HostnameConfig\nauto: 'off'\nhostname: cp-1\n", source="host")

    documents = generate_config(DEFAULTS["v1.13"], secrets_bundle, "controlplane", [first, second, hostname])

    assert documents[0]["machine"]["network"]["nameservers"] == ["192.0.2.53", "192.0.2.54"]
    assert documents[1] == {"apiVersion": "v1alpha1", "kind": "HostnameConfig", "auto": "off", "hostname": "cp-1"}


def test_generate_without_patches_is_the_rendered_config(secrets_bundle: SecretsBundle) -> None:
    options = case("v1.13-runbook").options

    assert generate_config(options, secrets_bundle, "worker") == render_config(options, secrets_bundle, "worker")


def test_generate_refuses_patch_that_breaks_the_config(secrets_bundle: SecretsBundle) -> None:
    typo = load_patch("machine:\n  instal:\n    disk: /dev/sdb\n", source="typo.yaml")

    with pytest.raises(ConfigValidationError, match=r"v1alpha1: machine\.instal: unknown field 'instal'"):
        generate_config(DEFAULTS["v1.13"], secrets_bundle, "worker", [typo])
