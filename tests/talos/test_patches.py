"""Patches as talosctl v1.13.9 loads and applies them: checked case by case against Talos' configpatcher.

Each expected result below was produced by Talos' own Go machinery (configpatcher.LoadPatches + Apply on the
same config and patches) when these tests were written; where we refuse a case Talos lets through, the test
says so.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from talos.documents import Document, document_id, parse_documents
from talos.errors import PatchError
from talos.patches import Patch, apply_patches, load_patch, load_patches

DATA = Path(__file__).resolve().parent.parent / "data" / "patches"


def config() -> list[Document]:
    return parse_documents((DATA / "controlplane.yaml").read_text())


def single_document_config() -> list[Document]:
    return config()[:1]


def patched(*values: Any, documents: list[Document] | None = None) -> list[Document]:
    return apply_patches(config() if documents is None else documents, load_patches(list(values), base_dir=DATA))


def v1(documents: list[Document]) -> Document:
    assert document_id(documents[0]) == "v1alpha1"
    return documents[0]


def by_id(documents: list[Document]) -> dict[str, Document]:
    return {document_id(doc): doc for doc in documents}


def fails(*values: Any, documents: list[Document] | None = None) -> str:
    with pytest.raises(PatchError) as caught:
        patched(*values, documents=documents)
    return str(caught.value)


# --- loading ------------------------------------------------------------------------------------------------


def test_load_patch_at_file_is_read_relative_to_base_dir() -> None:
    patch = load_patch("@cluster.yaml", base_dir=DATA)
    assert patch.kind == "strategic"
    assert patch.source == "cluster.yaml"
    assert patch.documents[0]["cluster"]["proxy"] == {"disabled": True}


def test_load_patch_bare_word_is_a_file_name_as_talosctl_guesses() -> None:
    assert load_patch("labels.json", base_dir=DATA).kind == "json6902"
    with pytest.raises(PatchError, match=r"^nope\.yaml: \$: cannot read the patch file .*nope\.yaml: No such file"):
        load_patch("nope.yaml", base_dir=DATA)


def test_load_patch_path_object_reads_the_file() -> None:
    patch = load_patch(DATA / "labels-ops.yaml")
    assert patch.kind == "json6902"
    assert [op["op"] for op in patch.operations] == ["add", "remove"]


def test_load_patch_inline_text_with_a_space_is_inline() -> None:
    patch = load_patch("machine: {certSANs: [a]}")
    assert (patch.source, patch.kind, patch.documents) == ("inline", "strategic", ({"machine": {"certSANs": ["a"]}},))


def test_load_patch_json_array_text_is_a_json_patch() -> None:
    patch = load_patch('[{"op": "remove", "path": "/machine/certSANs"}]')
    assert patch.kind == "json6902"
    assert patch.operations == ({"op": "remove", "path": "/machine/certSANs"},)


def test_load_patch_yaml_list_reads_only_the_first_document_as_talos_does() -> None:
    patch = load_patch("- op: remove\n  path: /machine/certSANs\n---\nmachine: {certSANs: [ignored]}\n")
    assert patch.kind == "json6902"
    assert len(patch.operations) == 1


def test_load_patch_parsed_mapping_is_strategic_and_list_is_json6902() -> None:
    mapping = {"machine": {"certSANs": ["a"]}}
    operations = [{"op": "add", "path": "/machine/certSANs/-", "value": "b"}]
    strategic, json_patch = load_patch(mapping, source="stack"), load_patch(operations)
    assert (strategic.kind, strategic.source, json_patch.kind) == ("strategic", "stack", "json6902")
    strategic.documents[0]["machine"]["certSANs"].append("changed")
    assert mapping == {"machine": {"certSANs": ["a"]}}


def test_load_patches_names_inline_patches_by_position_and_files_by_name() -> None:
    patches = load_patches(
        ["cluster.yaml", "machine: {certSANs: [a]}", {"cluster": {"clusterName": "x"}}], base_dir=DATA
    )
    assert [p.source for p in patches] == ["cluster.yaml", "inline #2", "inline #3"]


def test_load_patch_multi_document_text_keeps_every_document() -> None:
    patch = load_patch("@node-cp-1.yaml", base_dir=DATA)
    assert [document_id(doc) for doc in patch.documents] == ["v1alpha1", "HostnameConfig"]


def test_load_patch_reads_scalars_as_go_yaml_does() -> None:
    text = (
        "machine:\n  nodeLabels: {a: off, b: yes, c: 52:54:00:12:34:56, d: 2024-01-01}\n  files: [{permissions: 0644}]"
    )
    machine = load_patch(text).documents[0]["machine"]
    assert machine["nodeLabels"] == {"a": "off", "b": "yes", "c": "52:54:00:12:34:56", "d": "2024-01-01"}
    assert machine["files"][0]["permissions"] == 0o644


def test_empty_patch_text_is_an_empty_json_patch_noop_on_a_single_document() -> None:
    patch = load_patch("# nothing here\n")
    assert (patch.kind, patch.operations) == ("json6902", ())
    assert apply_patches(single_document_config(), [patch]) == single_document_config()


def test_empty_patch_fails_on_a_multi_document_config_as_in_talosctl() -> None:
    message = fails("# nothing here\n")
    assert "JSON6902 patches are not supported for multi-document machine configuration" in message
    assert "an empty patch is read as an empty JSON patch" in message


# --- documents ----------------------------------------------------------------------------------------------


def test_documents_match_by_kind_and_name_unmatched_ones_are_appended() -> None:
    result = patched(
        "apiVersion: v1alpha1\nkind: HostnameConfig\nauto: 'off'\nhostname: cp-1", "@node-cp-1-linkconfig.yaml"
    )
    assert [document_id(doc) for doc in result] == ["v1alpha1", "HostnameConfig", "LinkConfig/enp0s31f6"]
    assert by_id(result)["HostnameConfig"] == {
        "apiVersion": "v1alpha1",
        "kind": "HostnameConfig",
        "auto": "off",
        "hostname": "cp-1",
    }


def test_same_kind_with_another_name_is_a_new_document() -> None:
    link = "apiVersion: v1alpha1\nkind: LinkConfig\nname: {name}\nmtu: 9000"
    result = patched(
        link.format(name="eth0"), link.format(name="eth1"), link.format(name="eth0").replace("9000", "1400")
    )
    assert [(document_id(d), d.get("mtu")) for d in result[2:]] == [
        ("LinkConfig/eth0", 1400),
        ("LinkConfig/eth1", 9000),
    ]


def test_v1alpha1_document_comes_first_even_when_a_patch_adds_it() -> None:
    hostname_only = config()[1:]
    result = patched("machine: {nodeLabels: {a: b}}", documents=hostname_only)
    assert [document_id(doc) for doc in result] == ["v1alpha1", "HostnameConfig"]


def test_conflicting_link_kinds_with_one_name_are_refused() -> None:
    bond = "apiVersion: v1alpha1\nkind: BondConfig\nname: bond0\nlinks: [eth0]\nbondMode: active-backup"
    message = fails("apiVersion: v1alpha1\nkind: LinkConfig\nname: bond0\nmtu: 9000", bond)
    assert message == (
        "inline #2: BondConfig/bond0: conflicts with LinkConfig/bond0: they configure the same link or volume; keep one"
    )


# --- strategic merge rules ----------------------------------------------------------------------------------


def test_lists_are_appended_by_default() -> None:
    machine = v1(patched("machine: {certSANs: [a.example]}", "machine: {certSANs: [b.example]}"))["machine"]
    assert machine["certSANs"] == ["a.example", "b.example"]


def test_pod_and_service_subnets_are_replaced_even_by_an_empty_list() -> None:
    network = v1(patched("cluster: {network: {podSubnets: [10.42.0.0/16], serviceSubnets: []}}"))["cluster"]["network"]
    assert (network["podSubnets"], network["serviceSubnets"]) == (["10.42.0.0/16"], [])


def test_audit_policy_is_replaced_as_a_whole() -> None:
    api_server = v1(patched("cluster: {apiServer: {auditPolicy: {rules: [{level: None}]}}}"))["cluster"]["apiServer"]
    assert api_server["auditPolicy"] == {"rules": [{"level": "None"}]}


def test_interfaces_merge_by_name_and_by_equal_device_selector() -> None:
    base = (
        "machine: {network: {interfaces: [{interface: eth0, addresses: [10.0.0.2/24]},"
        " {deviceSelector: {hardwareAddr: 'aa:bb:*'}, dhcp: true}]}}"
    )
    change = (
        "machine: {network: {interfaces: [{interface: eth0, addresses: [10.0.0.3/24], mtu: 9000},"
        " {deviceSelector: {hardwareAddr: 'aa:bb:*'}, dhcp: false}, {mtu: 1300}]}}"
    )
    interfaces = v1(patched(base, change))["machine"]["network"]["interfaces"]
    assert interfaces == [
        {"interface": "eth0", "addresses": ["10.0.0.2/24", "10.0.0.3/24"], "mtu": 9000},
        {"deviceSelector": {"hardwareAddr": "aa:bb:*"}, "dhcp": False},
        {"mtu": 1300},
    ]


def test_device_selectors_setting_physical_never_match_as_go_compares_pointers() -> None:
    entry = "machine: {network: {interfaces: [{deviceSelector: {driver: virtio, physical: true}, mtu: %d}]}}"
    interfaces = v1(patched(entry % 1500, entry % 1400))["machine"]["network"]["interfaces"]
    assert [i["mtu"] for i in interfaces] == [1500, 1400]


def test_interfaces_repeated_in_one_patch_merge_only_where_the_config_has_the_parent() -> None:
    patch = (
        "machine: {network: {interfaces: [{interface: eth9, addresses: [a/32]}, {interface: eth9, addresses: [b/32]}]}}"
    )
    copied_whole = v1(patched(patch))["machine"]["network"]["interfaces"]
    merged = v1(patched("machine: {network: {nameservers: [1.1.1.1]}}", patch))["machine"]["network"]["interfaces"]
    assert [i["addresses"] for i in copied_whole] == [["a/32"], ["b/32"]]
    assert merged == [{"interface": "eth9", "addresses": ["a/32", "b/32"]}]


def test_vlans_merge_by_vlan_id() -> None:
    base = "machine: {network: {interfaces: [{interface: eth0, vlans: [{vlanId: 5, mtu: 1400}]}]}}"
    change = "machine: {network: {interfaces: [{interface: eth0, vlans: [{vlanId: 5, mtu: 1500}, {vlanId: 6}]}]}}"
    vlans = v1(patched(base, change))["machine"]["network"]["interfaces"][0]["vlans"]
    assert vlans == [{"vlanId": 5, "mtu": 1500}, {"vlanId": 6}]


def test_admission_control_merges_by_name_and_its_configuration_deeply() -> None:
    patch = (
        "cluster: {apiServer: {admissionControl: [{name: PodSecurity, configuration:"
        " {defaults: {audit: baseline}, exemptions: {namespaces: [cilium]}}}, {name: Other, configuration: {x: 1}}]}}"
    )
    plugins = v1(patched(patch))["cluster"]["apiServer"]["admissionControl"]
    assert [p["name"] for p in plugins] == ["PodSecurity", "Other"]
    configuration = plugins[0]["configuration"]
    assert (configuration["defaults"]["audit"], configuration["defaults"]["enforce"]) == ("baseline", "baseline")
    assert configuration["exemptions"]["namespaces"] == ["kube-system", "cilium"]


def test_extra_args_are_overwritten_key_by_key_with_string_or_list_values() -> None:
    result = patched(
        "cluster: {apiServer: {extraArgs: {feature-gates: A=true, oidc-groups-claim: [groups]}}}",
        "cluster: {apiServer: {extraArgs: {feature-gates: [A=true, B=true], audit-log-maxage: '30'}}}",
    )
    assert v1(result)["cluster"]["apiServer"]["extraArgs"] == {
        "feature-gates": ["A=true", "B=true"],
        "oidc-groups-claim": ["groups"],
        "audit-log-maxage": "30",
    }


def test_zero_string_and_zero_number_do_not_overwrite_but_false_does() -> None:
    result = v1(patched("cluster: {clusterName: ''}\nmachine: {features: {kubePrism: {port: 0, enabled: false}}}"))
    assert result["cluster"]["clusterName"] == "prod"
    assert result["machine"]["features"]["kubePrism"] == {"enabled": False, "port": 7445}


def test_zero_values_are_not_added_to_structs_but_are_to_go_maps() -> None:
    machine = v1(
        patched("machine: {kubelet: {clusterDNS: [], nodeIP: {validSubnets: []}, image: ''}, sysctls: {a: ''}}")
    )["machine"]
    assert machine["kubelet"]["image"] == "ghcr.io/siderolabs/kubelet:v1.36.3"
    assert machine["sysctls"] == {"a": ""}
    assert (
        v1(patched("machine: {nodeLabels: {a: x}}", "machine: {nodeLabels: {a: ''}}"))["machine"]["nodeLabels"]["a"]
        == "x"
    )


def test_null_changes_nothing() -> None:
    assert patched("machine: {certSANs: null, install: null, kubelet: {image: null}}") == config()


def test_explicit_zero_overwrites_a_pointer_field() -> None:
    kubespan = v1(
        patched(
            "machine: {network: {kubespan: {enabled: true, mtu: 1420}}}", "machine: {network: {kubespan: {mtu: 0}}}"
        )
    )
    assert kubespan["machine"]["network"]["kubespan"] == {"enabled": True, "mtu": 0}


def test_free_form_maps_merge_deeply_and_append_lists() -> None:
    result = patched(
        "machine: {kubelet: {extraConfig: {a: 1, l: [x], s: v}}}",
        "machine: {kubelet: {extraConfig: {a: 0, l: [y], s: ''}}}",
    )
    assert v1(result)["machine"]["kubelet"]["extraConfig"] == {"a": 1, "l": ["x", "y"], "s": "v"}


def test_certificate_pair_is_replaced_whole_with_an_omitted_key_left_empty() -> None:
    assert v1(patched("machine: {ca: {crt: Zm9v}}"))["machine"]["ca"] == {"crt": "Zm9v", "key": ""}


def test_endpoint_merges_url_parts_keeping_a_path_the_patch_lacks() -> None:
    result = patched(
        "cluster: {controlPlane: {endpoint: 'https://a.example:6443/base'}}",
        "cluster: {controlPlane: {endpoint: 'https://b.example:443'}}",
    )
    assert v1(result)["cluster"]["controlPlane"]["endpoint"] == "https://b.example:443/base"


def test_disk_size_condition_can_replace_an_old_one_only_after_deleting_it() -> None:
    first = "machine: {install: {diskSelector: {size: '>= 100GB', model: 'SAMSUNG*'}}}"
    second = "machine: {install: {diskSelector: {size: '<= 2TB', serial: S1}}}"
    assert fails(first, second) == (
        "inline #2: machine.install.diskSelector.size: Talos cannot merge a disk size condition into an existing one "
        "(merge not possible); delete the old one first, in an earlier patch: `size: {$patch: delete}`"
    )
    result = patched(first, "machine: {install: {diskSelector: {size: {$patch: delete}}}}", second)
    assert v1(result)["machine"]["install"]["diskSelector"] == {"model": "SAMSUNG*", "serial": "S1", "size": "<= 2TB"}


def test_volume_config_patch_takes_min_size_and_match_from_the_patch_even_when_omitted() -> None:
    volume = (
        "apiVersion: v1alpha1\nkind: VolumeConfig\nname: EPHEMERAL\nprovisioning:\n"
        "  diskSelector: {match: 'disk.transport == \"nvme\"'}\n  minSize: 10GiB\n  maxSize: 50%\n  grow: true"
    )
    result = patched(volume, "apiVersion: v1alpha1\nkind: VolumeConfig\nname: EPHEMERAL\nmount: {secure: true}")
    assert by_id(result)["VolumeConfig/EPHEMERAL"]["provisioning"] == {"maxSize": "50%", "grow": True}


# --- $patch: delete -----------------------------------------------------------------------------------------


def test_delete_document_removes_it() -> None:
    assert [document_id(doc) for doc in patched("@drop-hostname-config.yaml")] == ["v1alpha1"]


def test_delete_document_that_is_not_there_is_refused_early() -> None:
    """Talos lets it through but writes an empty `{}` document that it then refuses to load."""
    message = fails("apiVersion: v1alpha1\nkind: KubeSpanConfig\n$patch: delete")
    assert message.startswith("inline #1: KubeSpanConfig: patch targets nothing: `$patch: delete` names a document")


def test_delete_then_add_in_one_patch_replaces_a_document() -> None:
    result = patched(
        "apiVersion: v1alpha1\nkind: HostnameConfig\n$patch: delete\n---\n"
        "apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: cp-1"
    )
    assert by_id(result)["HostnameConfig"] == {"apiVersion": "v1alpha1", "kind": "HostnameConfig", "hostname": "cp-1"}


def test_delete_key_removes_it_and_drops_its_sibling_keys_from_the_patch() -> None:
    result = v1(patched("machine: {features: {kubePrism: {port: 7000, $patch: delete}}}"))
    assert "kubePrism" not in result["machine"]["features"]


def test_delete_absent_key_of_a_struct_is_a_noop() -> None:
    delete_port = "machine: {features: {kubePrism: {port: {$patch: delete}}}}"
    assert v1(patched(delete_port, delete_port))["machine"]["features"]["kubePrism"] == {"enabled": True}


def test_delete_under_a_missing_parent_targets_nothing() -> None:
    assert fails("machine: {network: {hostname: {$patch: delete}}}") == (
        "inline #1: machine.network.hostname: patch targets nothing: `$patch: delete` found nothing there "
        "(Talos: lookup failed); drop the delete or fix the path"
    )


def test_delete_absent_key_of_a_go_map_targets_nothing() -> None:
    message = fails("cluster: {apiServer: {extraArgs: {nope: {$patch: delete}}}}")
    assert message.startswith("inline #1: cluster.apiServer.extraArgs.nope: patch targets nothing")


def test_delete_list_element_by_its_first_key_then_merge_the_rest() -> None:
    base = "machine: {network: {interfaces: [{interface: eth0}, {interface: eth1, dhcp: true}, {interface: eth2}]}}"
    change = "machine: {network: {interfaces: [{interface: eth1, $patch: delete}, {interface: eth1, mtu: 1400}]}}"
    interfaces = v1(patched(base, change))["machine"]["network"]["interfaces"]
    assert interfaces == [{"interface": "eth0"}, {"interface": "eth2"}, {"interface": "eth1", "mtu": 1400}]


def test_delete_list_element_removes_only_the_first_match() -> None:
    twice = "machine: {network: {interfaces: [{interface: eth0, mtu: 1}, {interface: eth0, mtu: 2}]}}"
    result = patched(twice, "machine: {network: {interfaces: [{interface: eth0, $patch: delete}]}}")
    assert v1(result)["machine"]["network"]["interfaces"] == [{"interface": "eth0", "mtu": 2}]


def test_delete_list_element_in_a_typed_document() -> None:
    head = "apiVersion: v1alpha1\nkind: LinkConfig\nname: eth0\n"
    link = head + "addresses: [{address: 10.0.42.136/24}]\nroutes: [{gateway: 10.0.42.1}]"
    change = head + "addresses:\n  - {address: 10.0.42.136/24, $patch: delete}\n  - address: 10.0.42.137/24"
    result = by_id(patched(link, change))["LinkConfig/eth0"]
    assert (result["addresses"], result["routes"]) == ([{"address": "10.0.42.137/24"}], [{"gateway": "10.0.42.1"}])


def test_delete_list_element_matches_text_only_so_a_number_key_targets_nothing() -> None:
    link = "apiVersion: v1alpha1\nkind: LinkConfig\nname: eth0\nroutes: [{metric: 10, gateway: 1.1.1.1}]"
    message = fails(link, "apiVersion: v1alpha1\nkind: LinkConfig\nname: eth0\nroutes: [{metric: 10, $patch: delete}]")
    assert message.startswith("inline #2: LinkConfig/eth0.routes[metric=10]: patch targets nothing")


def test_delete_admission_plugin_by_name() -> None:
    api_server = v1(patched("cluster: {apiServer: {admissionControl: [{name: PodSecurity, $patch: delete}]}}"))[
        "cluster"
    ]["apiServer"]
    assert api_server["admissionControl"] == []


# --- JSON patches -------------------------------------------------------------------------------------------


def test_json_patch_on_the_stock_multi_document_config_is_refused() -> None:
    message = fails("@labels.json")
    assert message.startswith(
        "labels.json: $: JSON6902 patches are not supported for multi-document machine configuration; "
        "the config has 2 documents (v1alpha1, HostnameConfig)"
    )


def test_json_patches_work_once_the_config_is_a_single_document() -> None:
    result = patched("@drop-hostname-config.yaml", "@labels.json", "@labels-ops.yaml")
    machine, cluster = result[0]["machine"], result[0]["cluster"]
    assert machine["nodeLabels"]["topology.kubernetes.io/zone"] == "fsn1-dc14"
    assert machine["nodeLabels"]["topology.kubernetes.io/region"] == "eu-central"
    assert machine["certSANs"] == ["cp-1.prod.example.com"]
    assert cluster["network"]["podSubnets"] == ["10.42.0.0/16"]
    assert "hostDNS" not in machine["features"]


@pytest.mark.parametrize(
    ("operations", "path", "expected"),
    [
        ([{"op": "add", "path": "/machine/certSANs/0", "value": "first"}], ("machine", "certSANs"), ["first"]),
        (
            [{"op": "add", "path": "/cluster/network/podSubnets/-1", "value": "b"}],
            ("cluster", "network", "podSubnets"),
            ["10.244.0.0/16", "b"],
        ),
        ([{"op": "remove", "path": "/cluster/network/podSubnets/-1"}], ("cluster", "network", "podSubnets"), []),
        (
            [{"op": "replace", "path": "/machine/nodeLabels", "value": {"a": "b"}}],
            ("machine", "nodeLabels"),
            {"a": "b"},
        ),
        ([{"op": "replace", "path": "/machine/sysctls", "value": {"x": "1"}}], ("machine", "sysctls"), {"x": "1"}),
        ([{"op": "add", "path": "/machine/sysctls"}], ("machine", "sysctls"), None),
        (
            [{"op": "copy", "from": "/cluster/clusterName", "path": "/machine/nodeLabels/cluster"}],
            ("machine", "nodeLabels", "cluster"),
            "prod",
        ),
        ([{"op": "copy", "from": "/machine/nope", "path": "/machine/sysfs"}], ("machine", "sysfs"), None),
        (
            [{"op": "move", "from": "/machine/certSANs", "path": "/cluster/apiServer/certSANs"}],
            ("cluster", "apiServer", "certSANs"),
            [],
        ),
        ([{"op": "add", "path": "/machine/nodeLabels/a~1b~0c", "value": "x"}], ("machine", "nodeLabels", "a/b~c"), "x"),
        (
            [
                {"op": "test", "path": "/machine/nope", "value": None},
                {"op": "test", "path": "/machine/features/kubePrism/port", "value": 7445},
            ],
            ("machine", "type"),
            "controlplane",
        ),
        ([{"op": "add", "path": "cluster/debug", "value": True}], ("debug",), True),
    ],
)
def test_json_patch_operations_follow_talos_json_patch_library(
    operations: list[dict[str, Any]], path: tuple[str, ...], expected: Any
) -> None:
    node: Any = apply_patches(single_document_config(), [load_patch(operations)])[0]
    for key in path:
        node = node[key]
    assert node == expected


def test_json_patch_replacing_the_document_with_a_list_is_refused() -> None:
    message = fails('[{"op": "replace", "path": "", "value": []}]', documents=single_document_config())
    assert message == "inline #1: $: the patched config is a list, not a mapping; replace it with a mapping"


# --- order and the runbook ----------------------------------------------------------------------------------


def test_later_patches_win_cluster_then_role_then_node() -> None:
    cluster = "cluster: {clusterName: from-cluster}\nmachine: {kubelet: {extraArgs: {v: '1'}}}"
    role = "cluster: {clusterName: from-role}\nmachine: {kubelet: {extraArgs: {v: '2'}}}"
    node = "machine: {kubelet: {extraArgs: {v: '3'}}}"
    result = v1(patched(cluster, role, node))
    assert (result["cluster"]["clusterName"], result["machine"]["kubelet"]["extraArgs"]) == ("from-role", {"v": "3"})
    assert v1(patched(node, role, cluster))["machine"]["kubelet"]["extraArgs"] == {"v": "1"}


def test_runbook_cluster_patch_allows_workloads_and_disables_cni_and_kube_proxy() -> None:
    cluster = v1(patched("@cluster.yaml"))["cluster"]
    assert cluster["allowSchedulingOnControlPlanes"] is True
    assert cluster["network"]["cni"] == {"name": "none"}
    assert cluster["proxy"] == {"image": "registry.k8s.io/kube-proxy:v1.36.3", "disabled": True}
    assert cluster["clusterName"] == "hetzner-prod"
    assert cluster["network"]["podSubnets"] == ["10.244.0.0/16"]


def test_runbook_node_patch_sets_hostname_disk_selector_and_static_32_network() -> None:
    result = patched("@cluster.yaml", "@controlplane-role.yaml", "@node-cp-1.yaml")
    machine = v1(result)["machine"]
    assert by_id(result)["HostnameConfig"] == {
        "apiVersion": "v1alpha1",
        "kind": "HostnameConfig",
        "auto": "off",
        "hostname": "cp-1",
    }
    assert machine["install"] == {
        "image": "ghcr.io/siderolabs/installer:v1.13.9",
        "wipe": False,
        "grubUseUKICmdline": True,
        "diskSelector": {"serial": "S5GXNX0T123456"},
    }
    assert machine["network"] == {
        "interfaces": [
            {
                "deviceSelector": {"hardwareAddr": "90:1b:0e:aa:bb:cc"},
                "addresses": ["203.0.113.10/32"],
                "routes": [{"network": "203.0.113.1/32"}, {"network": "0.0.0.0/0", "gateway": "203.0.113.1"}],
            }
        ],
        "nameservers": ["185.12.64.1", "185.12.64.2"],
    }
    assert machine["certSANs"] == ["api.prod.example.com"]
    assert machine["kubelet"]["extraArgs"] == {"rotate-server-certificates": "true"}


def test_runbook_static_32_network_as_a_link_config_document() -> None:
    result = patched("@cluster.yaml", "@node-cp-1-linkconfig.yaml")
    assert by_id(result)["LinkConfig/enp0s31f6"] == {
        "apiVersion": "v1alpha1",
        "kind": "LinkConfig",
        "name": "enp0s31f6",
        "addresses": [{"address": "203.0.113.10/32"}],
        "routes": [{"destination": "203.0.113.1/32"}, {"gateway": "203.0.113.1"}],
    }
    assert by_id(result)["HostnameConfig"]["hostname"] == "cp-1"


def test_per_node_patches_applied_to_one_config_stay_independent() -> None:
    base, node_patch = config(), load_patch("@node-cp-1.yaml", base_dir=DATA)
    before, raw = copy.deepcopy(base), copy.deepcopy(node_patch.documents)
    first = apply_patches(base, [node_patch])
    first[0]["machine"]["network"]["interfaces"][0]["addresses"].append("changed")
    second = apply_patches(base, [node_patch])
    assert (base, node_patch.documents) == (before, raw)
    assert second[0]["machine"]["network"]["interfaces"][0]["addresses"] == ["203.0.113.10/32"]


def test_yaml_error_in_a_patch_never_quotes_its_text() -> None:
    text = "machine:\n  registries:\n    config: {r.example: {auth: {password: SECRET-pw}\n"

    with pytest.raises(PatchError) as caught:
        load_patch(text)

    assert str(caught.value).startswith("inline: line 4: not valid YAML: ") and "SECRET" not in str(caught.value)


# --- malformed patches --------------------------------------------------------------------------------------

MALFORMED = [
    ("machine: {\n", "inline #1: line 2: not valid YAML: expected the node content"),
    (
        "machine:\n  type: worker\n  type: controlplane\n",
        'line 3: not valid YAML: mapping key "type" already defined at line 2',
    ),
    ("just some words", "inline #1: document 1: is a string; a patch document is a mapping"),
    ("hostname: cp-1", "inline #1: document 1: missing kind: a typed document needs apiVersion and kind"),
    (
        "kind: HostnameConfig\nhostname: cp-1",
        "document 1: missing apiVersion for kind HostnameConfig; add `apiVersion: v1alpha1`",
    ),
    ("{}", "inline #1: $: the patch has no documents (config not found)"),
    ("", "inline #1: $: an empty string is not a patch (talosctl reads it as a file name)"),
    ("machine: {network: {$patch: replace}}", "inline #1: machine.network: `$patch: replace` is not supported"),
    ("machine: {}\n$patch: delete", "inline #1: $: missing apiVersion in a document deleted with `$patch: delete`"),
    ("apiVersion: v1alpha1\nmachine: {network: {$patch: delete}}", "kind and apiVersion must be both set"),
    (
        "machine: {network: {interfaces: [{interface: eth0, dhcpOptions: {$patch: delete}}]}}",
        "machine.network.interfaces[0].dhcpOptions: cannot delete a key inside a list element",
    ),
    (
        "machine: {network: {interfaces: [{$patch: delete}]}}",
        "machine.network.interfaces[0]: a list element with only `$patch: delete` selects nothing",
    ),
    (
        "apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: a\n---\n"
        "apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: b",
        "inline #1: HostnameConfig: duplicate document",
    ),
    ('[{"op": "add", "path": "/a"', "inline #1: $: not a JSON patch: Expecting ',' delimiter"),
    ("[1, 2]", "inline #1: operation 1: is a number; an operation is a mapping"),
    (
        '[{"op": "merge", "path": "/a"}]',
        "inline #1: operation 1: unknown op 'merge'; use one of add, remove, replace, move, copy, test",
    ),
    ('[{"path": "/a"}]', "inline #1: operation 1: missing op"),
    ('[{"op": "add", "value": 1}]', "inline #1: operation 1: add: path is missing; give a JSON pointer"),
    ('[{"op": "move", "path": "/a"}]', "inline #1: operation 1: move: from is missing"),
    ('[{"op": "add", "path": 5, "value": 1}]', "inline #1: operation 1: add: path is a number, not a string"),
]


@pytest.mark.parametrize(("text", "message"), MALFORMED)
def test_malformed_patch_is_refused_when_loading(text: str, message: str) -> None:
    with pytest.raises(PatchError, match=re.escape(message)):
        load_patch(text, source="inline #1")


APPLY_ERRORS = [
    (
        ["machine: {certSANs: {a: b}}"],
        "machine.certSANs: type mismatch: cannot merge a mapping into the list the config has here; write a list",
    ),
    (
        ["cluster: {network: {podSubnets: 10.0.0.0/8}}"],
        "cluster.network.podSubnets: type mismatch: cannot merge a string into the list",
    ),
    (
        ["machine: {kubelet: {extraConfig: {a: 1}}}", "machine: {kubelet: {extraConfig: {a: '1'}}}"],
        "machine.kubelet.extraConfig.a: type mismatch: cannot merge a string into the number the config has here",
    ),
    (
        ["machine: {kubelet: {extraConfig: {a: 1}}}", "machine: {kubelet: {extraConfig: {a: null}}}"],
        "null cannot replace a value in a free-form map (Talos crashes on it)",
    ),
    (
        ["machine: {network: {nameservers: [1.1.1.1]}}", "machine: {network: {interfaces: [eth0]}}"],
        "machine.network.interfaces[0]: expected a mapping, got a string",
    ),
    (
        [
            "machine: {network: {interfaces: [{interface: eth0}]}}",
            "machine: {network: {interfaces: [{interface: eth9, $patch: delete}]}}",
        ],
        "inline #2: machine.network.interfaces[interface=eth9]: patch targets nothing",
    ),
    (
        [
            "machine: {network: {interfaces: [{interface: eth0, vlans: [{vlanId: 5}]}]}}",
            "machine: {network: {interfaces: [{interface: eth0, vlans: [{vlanId: 5, $patch: delete}]}]}}",
        ],
        "cannot delete inside a list nested in a list element",
    ),
    (
        ['[{"op": "remove", "path": "/machine/nope"}]'],
        "machine.nope: operation 1 (remove /machine/nope): patch targets nothing: there is no 'nope' to remove",
    ),
    (
        ['[{"op": "replace", "path": "/nope/x", "value": 1}]'],
        "nope.x: operation 1 (replace /nope/x): patch targets nothing: a parent of this path is not in the config",
    ),
    (
        ['[{"op": "add", "path": "/cluster/network/podSubnets/5", "value": "x"}]'],
        "(add /cluster/network/podSubnets/5): patch targets nothing: index 5 is outside the list of 1 items",
    ),
    (['[{"op": "remove", "path": "/cluster/network/podSubnets/-"}]'], "'-' is not a list index"),
    (
        ['[{"op": "test", "path": "/machine/features/kubePrism/port", "value": 7445.0}]'],
        "operation 1 (test /machine/features/kubePrism/port): test failed",
    ),
    (
        ['[{"op": "test", "path": "/machine/nope", "value": 1}]'],
        "machine.nope: operation 1 (test /machine/nope): test failed",
    ),
    (
        ['[{"op": "add", "path": "", "value": {}}]'],
        "$: operation 1 (add ): patch targets nothing: '' is not a JSON pointer",
    ),
]


@pytest.mark.parametrize(("patches", "message"), APPLY_ERRORS)
def test_patch_that_cannot_apply_names_the_source_the_path_and_the_fix(patches: list[str], message: str) -> None:
    documents = single_document_config() if patches[0].startswith("[") else None

    error = fails(*patches, documents=documents)

    assert message in error
    assert "; " in error.split(": ", 2)[2], f"no fix after '; ' in {error!r}"


def test_patch_is_a_frozen_value() -> None:
    patch = Patch("inline #1", "json6902", operations=({"op": "remove", "path": "/machine/certSANs"},))
    with pytest.raises(AttributeError):
        patch.source = "other"  # type: ignore[misc]
