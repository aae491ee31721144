"""Patches: Talos' configpatcher and ours give the same result, and refuse the same malformed patches.

Ours refuses a patch when loading or applying it fails, or when the patched config fails validation (our
pipeline always validates after patching; Talos refuses unknown fields already when loading the patch).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import yaml

from talos.compare import configs_equal, render_diff
from talos.documents import dump_documents, parse_documents
from talos.errors import TalosError
from talos.patches import apply_patches, load_patch
from talos.secrets import SecretsBundle
from talos.validation import validate_config
from talos.versions import CURRENT
from tests.conformance.differences import RecordProperty, note_difference
from tests.conformance.oracle import GenerateRequest, Oracle
from tests.talos.test_patches import APPLY_ERRORS as UNIT_APPLY_ERRORS
from tests.talos.test_patches import MALFORMED as UNIT_MALFORMED

pytestmark = pytest.mark.oracle

BASE_PATCH = """
machine:
  network:
    interfaces:
      - interface: eth0
        addresses: [192.0.2.10/24]
        routes: [{network: 0.0.0.0/0, gateway: 192.0.2.1}]
        vlans:
          - vlanId: 100
            addresses: [10.0.100.10/24]
      - deviceSelector: {hardwareAddr: "aa:bb:cc:dd:ee:ff"}
        addresses: [198.51.100.10/32]
    nameservers: [192.0.2.53]
  kubelet:
    extraArgs: {rotate-server-certificates: "true"}
    extraConfig: {maxPods: 150, serializeImagePulls: false}
  sysctls: {net.core.somaxconn: "65535"}
  nodeLabels: {zone: a}
cluster:
  apiServer:
    extraArgs: {audit-log-maxage: "30"}
"""
DELETE_HOSTNAME = "apiVersion: v1alpha1\nkind: HostnameConfig\n$patch: delete\n"


@pytest.fixture(scope="module")
def bases(oracle: Oracle) -> dict[str, str]:
    """Talos-generated control plane configs to patch: "multi" (with HostnameConfig) and "single" (v1alpha1 only)."""
    request = GenerateRequest.plain(SecretsBundle.generate().to_yaml(), patches=(BASE_PATCH,))
    multi = oracle.generate(request)
    single = oracle.generate(replace(request, patches=(BASE_PATCH, DELETE_HOSTNAME)))
    assert multi.verdict.accepted and single.verdict.accepted, (multi.verdict.errors, single.verdict.errors)
    return {"multi": multi.controlplane, "single": single.controlplane}


@dataclass(frozen=True)
class PatchCase:
    id: str
    patches: tuple[str, ...]
    base: str = "multi"


def _yaml(data: object) -> str:
    return yaml.safe_dump(data, sort_keys=False)


def _json(*operations: dict[str, object]) -> str:
    return json.dumps(list(operations))


def _machine(**fields: object) -> str:
    return _yaml({"machine": fields})


def _cluster(**fields: object) -> str:
    return _yaml({"cluster": fields})


_DELETE = {"$patch": "delete"}
_LINK = {"apiVersion": "v1alpha1", "kind": "LinkConfig", "name": "eth1", "addresses": [{"address": "203.0.113.5/32"}]}

MERGES = [
    PatchCase("scalar-overwrites", (_machine(install={"disk": "/dev/nvme0n1"}),)),
    PatchCase("false-overwrites", (_cluster(discovery={"enabled": False}),)),
    PatchCase("empty-string-changes-nothing", (_machine(install={"image": ""}),)),
    PatchCase("null-changes-nothing", (_machine(install={"image": None}),)),
    PatchCase("cert-sans-append", (_machine(certSANs=["api.example.com", "192.0.2.100"]),)),
    PatchCase("nameservers-append-in-order", (_machine(network={"nameservers": ["192.0.2.54"]}),) * 2),
    PatchCase("pod-subnets-replaced", (_cluster(network={"podSubnets": ["10.32.0.0/12"]}),)),
    PatchCase("service-subnets-replaced", (_cluster(network={"serviceSubnets": ["10.112.0.0/12"]}),)),
    PatchCase(
        "audit-policy-replaced",
        (
            _cluster(
                apiServer={
                    "auditPolicy": {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "None"}]}
                }
            ),
        ),
    ),
    PatchCase(
        "interface-merged-by-name",
        (_machine(network={"interfaces": [{"interface": "eth0", "mtu": 9000, "addresses": ["192.0.2.11/24"]}]}),),
    ),
    PatchCase(
        "interface-merged-by-device-selector",
        (
            _machine(
                network={
                    "interfaces": [
                        {
                            "deviceSelector": {"hardwareAddr": "aa:bb:cc:dd:ee:ff"},
                            "routes": [{"network": "198.51.100.1/32"}],
                        }
                    ]
                }
            ),
        ),
    ),
    PatchCase("interface-new-appended", (_machine(network={"interfaces": [{"interface": "eth1", "dhcp": True}]}),)),
    PatchCase(
        "vlan-merged-by-id",
        (
            _machine(
                network={
                    "interfaces": [
                        {"interface": "eth0", "vlans": [{"vlanId": 100, "mtu": 1400}, {"vlanId": 200, "dhcp": True}]}
                    ]
                }
            ),
        ),
    ),
    PatchCase(
        "admission-control-merged-by-name",
        (
            _cluster(
                apiServer={
                    "admissionControl": [
                        {"name": "PodSecurity", "configuration": {"defaults": {"enforce": "restricted"}}}
                    ]
                }
            ),
        ),
    ),
    PatchCase(
        "extra-args-overwritten-by-key",
        (_cluster(apiServer={"extraArgs": {"audit-log-maxage": "60", "audit-log-maxbackup": "5"}}),),
    ),
    PatchCase("extra-args-list-value", (_cluster(apiServer={"extraArgs": {"feature-gates": ["A=true", "B=false"]}}),)),
    PatchCase("node-label-with-empty-value-added", (_machine(nodeLabels={"storage": ""}),)),
    PatchCase(
        "kubelet-extra-config-merged",
        (_machine(kubelet={"extraConfig": {"maxPods": 200, "cpuManagerPolicy": "static"}}),),
    ),
    PatchCase("sysctls-merged", (_machine(sysctls={"vm.max_map_count": "262144"}),)),
    PatchCase("endpoint-replaced", (_cluster(controlPlane={"endpoint": "https://api.example.com:443"}),)),
    PatchCase(
        "runbook-cluster-patch",
        (
            _cluster(
                allowSchedulingOnControlPlanes=True,
                network={"cni": {"name": "none"}},
                proxy={"disabled": True},
                clusterName="prod",
            ),
        ),
    ),
    PatchCase(
        "hostname-document-merged",
        (_yaml({"apiVersion": "v1alpha1", "kind": "HostnameConfig", "auto": "off", "hostname": "cp-1"}),),
    ),
    PatchCase("new-document-appended", (_yaml(_LINK),)),
    PatchCase(
        "multi-document-patch",
        (
            "---\n".join(
                [
                    _machine(install={"wipe": True}),
                    _yaml({"apiVersion": "v1alpha1", "kind": "HostnameConfig", "auto": "off", "hostname": "cp-2"}),
                    _yaml(_LINK),
                ]
            ),
        ),
    ),
    PatchCase(
        "static-32-legacy",
        (
            _machine(
                network={
                    "interfaces": [
                        {
                            "interface": "enp0s31f6",
                            "dhcp": False,
                            "addresses": ["203.0.113.10/32"],
                            "routes": [
                                {"network": "203.0.113.1/32"},
                                {"network": "0.0.0.0/0", "gateway": "203.0.113.1"},
                            ],
                        }
                    ]
                }
            ),
        ),
    ),
    PatchCase("delete-document", (DELETE_HOSTNAME,)),
    PatchCase("delete-key", (_cluster(proxy=_DELETE),)),
    PatchCase("delete-absent-struct-key-is-a-no-op", (_machine(network={"hostname": _DELETE}),)),
    PatchCase("delete-list-element", (_machine(network={"interfaces": [{"interface": "eth0", **_DELETE}]}),)),
    PatchCase("delete-map-key", (_machine(nodeLabels={"zone": _DELETE}),)),
    PatchCase(
        "delete-then-json-patch",
        (DELETE_HOSTNAME, _json({"op": "add", "path": "/machine/nodeLabels/rack", "value": "r1"})),
    ),
    PatchCase(
        "json-replace", (_json({"op": "replace", "path": "/machine/install/disk", "value": "/dev/vda"}),), "single"
    ),
    PatchCase(
        "json-add-to-list-end",
        (_json({"op": "add", "path": "/machine/certSANs/-", "value": "api.example.com"}),),
        "single",
    ),
    PatchCase("json-remove", (_json({"op": "remove", "path": "/cluster/proxy"}),), "single"),
    PatchCase("json-yaml-operations", ("- op: add\n  path: /machine/nodeLabels/rack\n  value: r2\n",), "single"),
    PatchCase(
        "json-two-patches",
        (
            _json({"op": "add", "path": "/machine/certSANs/-", "value": "a.example"}),
            _json({"op": "add", "path": "/machine/certSANs/0", "value": "b.example"}),
        ),
        "single",
    ),
    PatchCase(
        "json-replace-missing-key-adds-it",
        (_json({"op": "replace", "path": "/machine/install/wipe2", "value": True}),),
        "single",
    ),
    PatchCase(
        "json-test-passes",
        (
            _json(
                {"op": "test", "path": "/machine/install/disk", "value": "/dev/sda"},
                {"op": "replace", "path": "/machine/install/disk", "value": "/dev/sdb"},
            ),
        ),
        "single",
    ),
]

REFUSALS = [
    PatchCase("not-yaml", ("machine: [unclosed",)),
    PatchCase("a-scalar", ("hello world",)),
    PatchCase("unknown-field", (_machine(colour="blue"),)),
    PatchCase("unknown-document-kind", (_yaml({"apiVersion": "v1alpha1", "kind": "NoSuchConfig", "name": "x"}),)),
    PatchCase("extra-config-type-changed", (_machine(kubelet={"extraConfig": {"maxPods": "200"}}),)),
    PatchCase(
        "disk-size-merged-into-another",
        (
            _machine(install={"diskSelector": {"size": ">= 1TB"}}),
            _machine(install={"diskSelector": {"size": "<= 2TB"}}),
        ),
    ),
    PatchCase("delete-under-missing-parent", (_cluster(coreDNS={"image": _DELETE}),)),
    PatchCase("delete-absent-map-key", (_machine(nodeLabels={"missing": _DELETE}),)),
    PatchCase(
        "json-on-multi-document", (_json({"op": "replace", "path": "/machine/install/disk", "value": "/dev/vda"}),)
    ),
    PatchCase(
        "json-test-fails", (_json({"op": "test", "path": "/machine/install/disk", "value": "/dev/nvme0n1"}),), "single"
    ),
    PatchCase("json-remove-missing", (_json({"op": "remove", "path": "/machine/nodeLabels/missing"}),), "single"),
    PatchCase("json-unknown-op", (_json({"op": "mutate", "path": "/machine/install/disk", "value": "x"}),), "single"),
    PatchCase(
        "json-add-under-missing-parent",
        (_json({"op": "add", "path": "/cluster/coreDNS/image", "value": "coredns:1"}),),
        "single",
    ),
    PatchCase("json-not-an-operation-list", ("[1, 2, 3]",), "single"),
]


def _ours(base: str, patches: tuple[str, ...]) -> list[dict[str, object]]:
    loaded = [load_patch(text, source=f"patch {number}") for number, text in enumerate(patches, 1)]
    return apply_patches(parse_documents(base), loaded)


@pytest.mark.parametrize("case", MERGES, ids=lambda case: case.id)
def test_patch_gives_talos_result(
    oracle: Oracle, bases: dict[str, str], case: PatchCase, record_property: RecordProperty
) -> None:
    verdict, theirs = oracle.patch(bases[case.base], list(case.patches))
    assert verdict.accepted, verdict.errors

    ours = dump_documents(_ours(bases[case.base], case.patches))

    if not configs_equal(ours, theirs):
        encoded, as_talos_writes_it = oracle.encode(ours)
        assert encoded.accepted, encoded.errors
        assert configs_equal(as_talos_writes_it, theirs), render_diff(theirs, ours)
        note_difference(record_property, "encoding-as-written")


@pytest.mark.parametrize("case", REFUSALS, ids=lambda case: case.id)
def test_malformed_patch_is_refused_by_both(oracle: Oracle, bases: dict[str, str], case: PatchCase) -> None:
    verdict, _ = oracle.patch(bases[case.base], list(case.patches))

    assert not verdict.accepted
    with pytest.raises(TalosError):
        validate_config(_ours(bases[case.base], case.patches), CURRENT)


# --- the unit tests' patch files and malformed catalogue, asked of Talos too ---------------------------------

PATCH_DATA = Path(__file__).parents[1] / "data" / "patches"
PATCH_BASE = PATCH_DATA / "controlplane.yaml"
"""The config the unit tests patch (a stock v1.13 control plane, so multi-document)."""


def _unit_base(patches: list[str]) -> str:
    """The unit tests' config, reduced to its v1alpha1 document when the first patch is a JSON patch (the unit
    tests' own rule: its text starts with `[` or `- op`)."""
    documents = parse_documents(PATCH_BASE.read_text(encoding="utf-8"))
    json_patch = patches[0].lstrip().startswith(("[", "- op"))
    return dump_documents(documents[:1] if json_patch else documents)


@pytest.mark.parametrize("path", sorted(p for p in PATCH_DATA.iterdir() if p != PATCH_BASE), ids=lambda p: p.name)
def test_patch_file_gives_talos_result(oracle: Oracle, path: Path, record_property: RecordProperty) -> None:
    text = path.read_text(encoding="utf-8")
    base = _unit_base([text])

    verdict, theirs = oracle.patch(base, [text])
    assert verdict.accepted, verdict.errors

    ours = dump_documents(_ours(base, (text,)))
    if not configs_equal(ours, theirs):
        encoded, as_talos_writes_it = oracle.encode(ours)
        assert encoded.accepted, encoded.errors
        assert configs_equal(as_talos_writes_it, theirs), render_diff(theirs, ours)
        note_difference(record_property, "encoding-as-written")


@pytest.mark.parametrize(
    "patches",
    [pytest.param([text], id=f"load-{n}") for n, (text, _) in enumerate(UNIT_MALFORMED, 1)]
    + [pytest.param(patches, id=f"apply-{n}") for n, (patches, _) in enumerate(UNIT_APPLY_ERRORS, 1)],
)
def test_patch_our_unit_tests_refuse_is_refused_by_talos(oracle: Oracle, patches: list[str]) -> None:
    base = _unit_base(patches)

    verdict, _ = oracle.patch(base, patches)

    assert not verdict.accepted
    with pytest.raises(TalosError):
        _ours(base, tuple(patches))
