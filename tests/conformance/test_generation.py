"""Generation: from our secrets bundle, Talos' `gen config` and ours give the same controlplane and worker configs.

Each case is what a user would type: talosctl's flags for the options talosctl has (cluster name, endpoint,
Kubernetes version, DNS domain, install disk, installer image, discovery, SANs, version contract) and
cluster-wide patches for the ones it lacks (disk selector, scheduling on control planes, CNI, kube-proxy), then
the case's own patches: cluster-wide, then per role, then per node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from talos.compare import configs_equal, render_diff
from talos.config import ClusterOptions, Role, generate_config
from talos.documents import dump_documents
from talos.patches import load_patch
from talos.secrets import SecretsBundle
from talos.versions import CONTRACTS
from tests.conformance.differences import RecordProperty, note_difference
from tests.conformance.oracle import GenerateRequest, Oracle, Verdict
from tests.talos.cases import CASES as RENDER_CASES
from tests.talos.cases import RenderCase

pytestmark = pytest.mark.oracle

V13 = CONTRACTS["v1.13"].talos_version
V12 = CONTRACTS["v1.12"].talos_version
SCHEMATIC = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"


@dataclass(frozen=True)
class GenCase:
    """Options, and patches in the order they apply: cluster-wide, per role, per node."""

    id: str
    options: ClusterOptions
    patches: tuple[str, ...] = ()
    role_patches: Mapping[Role, tuple[str, ...]] = field(default_factory=dict)
    node_patches: tuple[str, ...] = ()

    def patches_for(self, role: Role) -> list[str]:
        return [*self.patches, *self.role_patches.get(role, ()), *self.node_patches]


def option_patches(options: ClusterOptions) -> list[str]:
    """The cluster-wide patches a talosctl user writes for the options `gen config` has no flag for."""
    cluster: dict[str, object] = {}
    if options.allow_scheduling_on_control_planes:
        cluster["allowSchedulingOnControlPlanes"] = True
    if options.cni != "flannel":
        cluster["network"] = {
            "cni": {"name": options.cni, **({"urls": list(options.cni_urls)} if options.cni_urls else {})}
        }
    if not options.kube_proxy:
        cluster["proxy"] = {"disabled": True}
    patches = [yaml.safe_dump({"cluster": cluster})] if cluster else []
    if options.install_disk_selector:
        patches.append(yaml.safe_dump({"machine": {"install": {"diskSelector": dict(options.install_disk_selector)}}}))
    return patches


def machinery_request(case: GenCase, secrets_yaml: str) -> GenerateRequest:
    """`talosctl gen config --with-secrets` for the case, every flag given."""
    options = case.options
    return GenerateRequest(
        secrets_yaml=secrets_yaml,
        version_contract=options.contract.name,
        cluster_name=options.cluster_name,
        endpoint=options.endpoint,
        kubernetes_version=options.kubernetes,
        dns_domain=options.dns_domain,
        install_disk="" if options.install_disk_selector else options.install_disk or "/dev/sda",
        install_image=options.installer,
        discovery=options.discovery,
        additional_sans=options.additional_sans,
        patches=(*option_patches(options), *case.patches),
        patches_control_plane=(*case.role_patches.get("controlplane", ()), *case.node_patches),
        patches_worker=(*case.role_patches.get("worker", ()), *case.node_patches),
    )


def _options(talos_version: str = V13, **values: object) -> ClusterOptions:
    values.setdefault("cluster_name", "conformance")
    values.setdefault("endpoint", "https://192.0.2.10:6443")
    return ClusterOptions(talos_version=talos_version, **values)  # type: ignore[arg-type]


def _doc(**fields: object) -> str:
    return yaml.safe_dump(fields, sort_keys=False)


SELECTOR = {
    "wwid": "eui.*",
    "size": ">= 400GB",
    "type": "nvme",
    "model": "SAMSUNG*",
    "serial": "S4*",
    "busPath": "/pci0000:00/*",
}
RUNBOOK_CLUSTER = _doc(
    cluster={"allowSchedulingOnControlPlanes": True, "network": {"cni": {"name": "none"}}, "proxy": {"disabled": True}}
)
HOSTNAME = _doc(apiVersion="v1alpha1", kind="HostnameConfig", auto="off", hostname="cp-1")
LEGACY_SLASH_32 = _doc(
    machine={
        "network": {
            "interfaces": [
                {
                    "deviceSelector": {"hardwareAddr": "aa:bb:cc:dd:ee:ff"},
                    "dhcp": False,
                    "addresses": ["203.0.113.10/32", "2001:db8:1:2::2/64"],
                    "routes": [
                        {"network": "203.0.113.1/32"},
                        {"network": "0.0.0.0/0", "gateway": "203.0.113.1"},
                        {"network": "::/0", "gateway": "fe80::1"},
                    ],
                }
            ],
            "nameservers": ["185.12.64.1", "185.12.64.2"],
        }
    }
)
LINK_SLASH_32 = "---\n".join(
    [
        _doc(
            apiVersion="v1alpha1",
            kind="LinkConfig",
            name="enp0s31f6",
            addresses=[{"address": "203.0.113.10/32"}, {"address": "2001:db8:1:2::2/64"}],
            routes=[{"destination": "203.0.113.1/32"}, {"gateway": "203.0.113.1"}, {"gateway": "fe80::1"}],
        ),
        _doc(apiVersion="v1alpha1", kind="ResolverConfig", nameservers=[{"address": "185.12.64.1"}]),
    ]
)
NODE_DISK = _doc(machine={"install": {"disk": {"$patch": "delete"}, "diskSelector": {"wwid": "eui.0025388b91c0d1f3"}}})
RUNBOOK_NODE = (HOSTNAME, NODE_DISK, LEGACY_SLASH_32)


def _runbook(talos_version: str) -> ClusterOptions:
    return _options(
        talos_version,
        cluster_name="prod",
        endpoint="https://api.prod.example:6443",
        dns_domain="prod.internal",
        installer_image=f"factory.talos.dev/metal-installer/{SCHEMATIC}:{talos_version}",
        additional_sans=("api.prod.example", "203.0.113.10"),
    )


CASES = [
    GenCase("defaults", _options()),
    GenCase("endpoint-name-port-443", _options(cluster_name="edge", endpoint="https://api.edge.example:443")),
    GenCase("ipv6-endpoint", _options(endpoint="https://[2001:db8::10]:6443", additional_sans=("2001:db8::10",))),
    GenCase("dns-domain", _options(dns_domain="k8s.internal")),
    GenCase("kubernetes-version", _options(kubernetes_version="1.35.0")),
    GenCase("kubernetes-version-v-prefix", _options(kubernetes_version="v1.34.2")),
    GenCase("install-disk", _options(install_disk="/dev/nvme0n1")),
    GenCase("disk-selector", _options(install_disk_selector=SELECTOR)),
    GenCase("installer-image", _options(installer_image=f"factory.talos.dev/metal-installer/{SCHEMATIC}:{V13}")),
    GenCase("discovery-off", _options(discovery=False)),
    GenCase("scheduling-on-control-planes", _options(allow_scheduling_on_control_planes=True)),
    GenCase("cni-none", _options(cni="none")),
    GenCase("cni-custom", _options(cni="custom", cni_urls=("https://example.com/cilium.yaml",))),
    GenCase("kube-proxy-off", _options(kube_proxy=False)),
    GenCase("additional-sans", _options(additional_sans=("api.example.com", "198.51.100.7"))),
    GenCase(
        "runbook-options",
        _options(
            install_disk_selector={"wwid": "eui.*"},
            allow_scheduling_on_control_planes=True,
            cni="none",
            kube_proxy=False,
            discovery=False,
        ),
    ),
    GenCase("runbook-patches", _runbook(V13), patches=(RUNBOOK_CLUSTER,), node_patches=RUNBOOK_NODE),
    GenCase("static-32-legacy", _options(), node_patches=(LEGACY_SLASH_32,)),
    GenCase("static-32-link-config", _options(), node_patches=(LINK_SLASH_32,)),
    GenCase(
        "role-patches",
        _options(),
        patches=(_doc(machine={"sysctls": {"vm.max_map_count": "262144"}}),),
        role_patches={
            "controlplane": (_doc(cluster={"apiServer": {"extraArgs": {"audit-log-maxage": "30"}}}),),
            "worker": (_doc(machine={"nodeLabels": {"role": "storage"}}),),
        },
    ),
    GenCase(
        "delete-hostname-then-json-patch",
        _options(),
        node_patches=(
            _doc(apiVersion="v1alpha1", kind="HostnameConfig", **{"$patch": "delete"}),
            '[{"op": "add", "path": "/machine/network", "value": {"hostname": "node-1"}}]',
        ),
    ),
    GenCase("v1.12-defaults", _options(V12)),
    GenCase("v1.12-runbook-patches", _runbook(V12), patches=(RUNBOOK_CLUSTER,), node_patches=RUNBOOK_NODE),
    GenCase("v1.12-selector-discovery-off", _options(V12, install_disk_selector=SELECTOR, discovery=False)),
    GenCase("v1.12-cni-none-kube-proxy-off", _options(V12, cni="none", kube_proxy=False)),
    GenCase("v1.12-static-32-link-config", _options(V12), node_patches=(LINK_SLASH_32,)),
]


@pytest.fixture(scope="module")
def bundle() -> SecretsBundle:
    """Our bundle: Talos generates from it, so every secret and certificate in both outputs is the same."""
    return SecretsBundle.generate()


@pytest.mark.parametrize("role", ["controlplane", "worker"])
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_our_config_equals_talos_gen_config(
    oracle: Oracle, bundle: SecretsBundle, case: GenCase, role: Role, record_property: RecordProperty
) -> None:
    generated = oracle.generate(machinery_request(case, bundle.to_yaml()))
    assert generated.verdict.accepted, generated.verdict.errors
    theirs = generated.controlplane if role == "controlplane" else generated.worker
    patches = [load_patch(text, source=f"patch {n}") for n, text in enumerate(case.patches_for(role), 1)]

    ours = dump_documents(generate_config(case.options, bundle, role, patches))

    if not configs_equal(ours, theirs):
        verdict, as_talos_writes_it = oracle.encode(ours)
        assert verdict.accepted, verdict.errors
        assert configs_equal(as_talos_writes_it, theirs), render_diff(theirs, ours)
        note_difference(record_property, "encoding-as-written")
    assert oracle.validate(ours) == Verdict(errors=())


TALOSCTL_SECRETS = Path(__file__).parents[1] / "data" / "secrets" / "talosctl-secrets.yaml"


@pytest.mark.parametrize("role", ["controlplane", "worker"])
@pytest.mark.parametrize("case", [c for c in RENDER_CASES if c.golden], ids=lambda case: case.name)
def test_golden_config_is_byte_for_byte_what_talos_generates(oracle: Oracle, case: RenderCase, role: Role) -> None:
    """The talosctl outputs our unit tests compare against really are Talos' (v1.12 ones included)."""
    request = machinery_request(GenCase(case.name, case.options), TALOSCTL_SECRETS.read_text(encoding="utf-8"))

    generated = oracle.generate(request)

    assert generated.verdict.accepted, generated.verdict.errors
    theirs = generated.controlplane if role == "controlplane" else generated.worker
    assert case.golden_file(role).read_text(encoding="utf-8") == theirs
