"""The stack-config model: both stacks parse; every mistake is named by its key path, with the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components.stack import DECLARED_KEYS, StackConfig, StackConfigError
from tools.env import PROJECT_DIR

ROBOT = {"name": "cp-1", "role": "controlplane", "robot": 2100001, "address": "203.0.113.10", "disk": {"serial": "S1"}}


def stack_values(stack: str) -> dict[str, Any]:
    config = yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]
    values = {key.split(":", 1)[1]: value for key, value in config.items() if key.startswith("talos-hetzner:")}
    return {"robotUser": "#ws+lab", **values}


def minimal(**overrides: Any) -> dict[str, Any]:
    base = {"clusterName": "prod", "endpoint": "https://api.example.com:6443", "robotUser": "#ws+x", "nodes": [ROBOT]}
    return {**base, **overrides}


def problems(values: dict[str, Any], base_dir: Path = PROJECT_DIR) -> list[str]:
    with pytest.raises(StackConfigError) as raised:
        StackConfig.parse(values, base_dir=base_dir)
    return list(raised.value.problems)


def test_pulumi_yaml_declares_exactly_the_keys_the_model_reads() -> None:
    declared = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())["config"]

    assert set(declared) == DECLARED_KEYS


@pytest.mark.parametrize("stack", ["lab", "prod"])
def test_committed_stack_files_carry_no_credentials(stack: str) -> None:
    """Credentials are set per checkout (`make lab` sets the lab's in a copy), never committed, not even encrypted."""
    config = yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]

    assert [key for key, value in config.items() if isinstance(value, dict) and "secure" in value] == []
    assert not {"talos-hetzner:robotPassword", "talos-hetzner:rescueSshKey", "hcloud:token"} & set(config)


def test_lab_stack_is_three_control_planes_and_two_workers_robot_and_cloud() -> None:
    stack = StackConfig.parse(stack_values("lab"))

    layout = [(node.name, node.role, node.kind) for node in stack.nodes]
    assert layout == [
        ("cp-1", "controlplane", "robot"),
        ("cp-2", "controlplane", "robot"),
        ("cp-3", "controlplane", "cloud"),
        ("worker-1", "worker", "robot"),
        ("worker-2", "worker", "cloud"),
    ]
    assert stack.dns is not None and stack.dns.create_zone and stack.dns.api_fqdn == "api.lab.example"
    assert stack.nodes[2].cloud is not None and stack.nodes[2].cloud.server_type == "cx23"


def test_prod_stack_pins_versions_and_uses_static_networking() -> None:
    stack = StackConfig.parse(stack_values("prod"))

    assert stack.talos_version == "v1.13.9" and stack.installer_image and stack.installer_image.endswith(":v1.13.9")
    assert stack.protect and all(node.kind == "robot" and node.network for node in stack.nodes)
    assert stack.dns is not None and stack.dns.api_fqdn == "api.k8s.example.com"
    assert stack.cluster_options["additionalSans"] == ["api.k8s.example.com"]
    assert [p.source for p in stack.patches["controlplane"]] == ["controlplane #1"]


def test_unknown_key_named_with_the_closest_known_one() -> None:
    found = problems(minimal(talosVersoin="v1.13.9", nodes=[{**ROBOT, "wip": "any"}]))

    assert "talosVersoin: is not a setting this program knows (fix: did you mean talosVersion?)" in found
    assert "nodes[0].wip: is not a setting this program knows (fix: did you mean nodes[0].wipe?)" in found


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({**ROBOT, "cloud": {}}, "nodes.cp-1: needs exactly one of robot (a server number) and cloud"),
        ({**ROBOT, "robot": "abc"}, "nodes.cp-1.robot: 'abc' is not a Robot server number"),
        ({**ROBOT, "address": "nowhere"}, "nodes.cp-1.address: 'nowhere' is not an IPv4 address"),
        ({**ROBOT, "role": "boss"}, "nodes.cp-1.role: 'boss' is not one of controlplane, worker"),
        ({**ROBOT, "wipe": "always"}, "nodes.cp-1.wipe: 'always' is not one of refuse, talos, any"),
        ({**ROBOT, "name": "CP_1"}, "nodes[0].name: 'CP_1' is not a node name"),
        ({"name": "cp-1", "role": "controlplane", "cloud": {"location": "fsn1"}}, "nodes.cp-1.cloud: needs serverType"),
        (
            {
                "name": "cp-1",
                "role": "controlplane",
                "cloud": {"serverType": "cx23", "location": "fsn1"},
                "network": {"interface": "eth0", "gateway": "10.0.0.1"},
            },
            "nodes.cp-1.network: static /32 networking is for dedicated servers",
        ),
    ],
)
def test_bad_node_named_by_its_path(node: dict[str, Any], expected: str) -> None:
    assert any(problem.startswith(expected) for problem in problems(minimal(nodes=[node]))), expected


def test_duplicates_and_no_control_plane_refused() -> None:
    worker = {**ROBOT, "role": "worker"}

    found = problems(minimal(nodes=[worker, worker]))

    assert any("nodes.cp-1: name cp-1 is used by cp-1 too" in p for p in found)
    assert any(p.startswith("nodes: has no control plane") for p in found)


def test_bad_patch_named_by_its_path_and_source() -> None:
    found = problems(minimal(patches={"cluster": ["machine: [unclosed"]}))

    assert len(found) == 1 and found[0].startswith("patches.cluster[0]: cluster #1: ")


def test_patch_file_is_read_at_program_time(tmp_path: Path) -> None:
    (tmp_path / "labels.yaml").write_text("machine:\n  nodeLabels:\n    tier: gold\n")

    stack = StackConfig.parse(minimal(patches={"worker": ["@labels.yaml"]}), base_dir=tmp_path)
    missing = problems(minimal(patches={"worker": ["@nope.yaml"]}), base_dir=tmp_path)

    assert stack.patches["worker"][0].source == "labels.yaml" and "tier: gold" in stack.patches["worker"][0].text
    assert missing[0].startswith("patches.worker[0]: cannot read")


def test_objects_arrive_as_json_text_from_the_engine() -> None:
    stack = StackConfig.parse(
        minimal(
            nodes='[{"name": "cp-1", "role": "controlplane", "robot": 7, "address": "1.2.3.4", "disk": {"wwn": "0x1"}}]'
        )
    )

    assert stack.nodes[0].robot == 7


def test_missing_required_and_robot_user_named_with_the_command() -> None:
    found = problems({"nodes": [ROBOT]})

    assert "clusterName: is not set (fix: pulumi config set clusterName ...)" in found
    assert any(p.startswith("robotUser: is required for dedicated servers") for p in found)


def test_dedicated_server_without_a_named_disk_refused() -> None:
    found = problems(minimal(nodes=[{**ROBOT, "disk": {"minSize": "400GB"}}]))

    assert found[0].startswith("nodes.cp-1.disk: a dedicated server needs its install disk named")


SCHEMATIC = "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515"


def test_installer_keeps_the_disk_images_schematic_unless_one_is_named() -> None:
    vanilla = StackConfig.parse(minimal(talosVersion="v1.13.8"))
    factory = StackConfig.parse(minimal(image={"schematic": SCHEMATIC}))
    named = StackConfig.parse(minimal(installerImage="registry.example/talos/installer:v1.13.9"))

    assert vanilla.installer == "ghcr.io/siderolabs/installer:v1.13.8"
    assert factory.installer == f"factory.talos.dev/metal-installer/{SCHEMATIC}:v1.13.9"
    assert named.installer == named.cluster_options["installerImage"] == "registry.example/talos/installer:v1.13.9"


def test_removal_policy_defaults_keep_the_server_and_reset_only_the_config() -> None:
    default = StackConfig.parse(minimal()).removal
    chosen = StackConfig.parse(minimal(removal={"drain": False, "reset": "none", "deleteCloudServers": True})).removal

    assert default.to_input() == {"drain": True, "reset": "config", "reboot": True}
    assert not default.delete_cloud_servers
    assert chosen.to_input() == {"drain": False, "reset": "none", "reboot": True} and chosen.delete_cloud_servers


def test_bad_removal_policy_named_with_the_fix() -> None:
    found = problems(minimal(removal={"reset": "everything", "drain": "yes", "wipe": True}))

    assert "removal.reset: 'everything' is not one of none, config, system-disk (fix: write reset: config)" in found
    assert "removal.drain: must be true or false, not 'yes' (fix: write drain: true)" in found
    assert any(problem.startswith("removal.wipe: is not a setting this program knows") for problem in found)


NETWORK = {"interface": "eth0", "gateway": "203.0.113.1"}


def test_ipv6_of_a_dedicated_node_is_canonical_and_dns_ipv6_is_off_by_default() -> None:
    node = {**ROBOT, "ipv6": "2A01:4F8:111:4221:0::1", "network": NETWORK}

    stack = StackConfig.parse(minimal(nodes=[node], dns={"zone": "example.com"}))

    assert stack.nodes[0].ipv6 == "2a01:4f8:111:4221::1"
    assert stack.dns is not None and stack.dns.ipv6 is False
    assert StackConfig.parse(minimal()).nodes[0].ipv6 is None


@pytest.mark.parametrize(
    ("node", "dns", "expected"),
    [
        (
            {"ipv6": "203.0.113.10"},
            {},
            "nodes.cp-1.ipv6: '203.0.113.10' is not an IPv6 address a node can own (fix: an address",
        ),
        ({"ipv6": "fe80::1"}, {}, "nodes.cp-1.ipv6: 'fe80::1' is not an IPv6 address a node can own"),
        ({"ipv6": "ff02::1"}, {}, "nodes.cp-1.ipv6: 'ff02::1' is not an IPv6 address a node can own"),
        ({"ipv6": ["2a01:4f8::1"]}, {}, "nodes.cp-1.ipv6: ['2a01:4f8::1'] is not an IPv6 address a node can own"),
        (
            {"ipv6": "2a01:4f8:111:4221::1", "network": None},
            {},
            "nodes.cp-1.ipv6: needs the node's static network (fix: add network: {interface, gateway}",
        ),
        ({}, {"ipv6": True}, "nodes.cp-1.ipv6: is required: dns.ipv6 publishes an AAAA value for it (fix: set its"),
        ({}, {"ipv6": "yes"}, "dns.ipv6: must be true or false, not 'yes' (fix: write ipv6: true or false under dns)"),
    ],
)
def test_bad_ipv6_named_by_its_path_with_the_fix(node: dict[str, Any], dns: dict[str, Any], expected: str) -> None:
    robot = {**ROBOT, "network": NETWORK, **node}
    found = problems(minimal(nodes=[{k: v for k, v in robot.items() if v is not None}], dns={"zone": "x.com", **dns}))
    assert [problem for problem in found if problem.startswith(expected)] != [], found


def test_ipv6_refused_on_a_cloud_node_and_when_two_nodes_share_it() -> None:
    cloud = {"name": "cp-2", "role": "controlplane", "cloud": {"serverType": "cx23", "location": "fsn1"}}
    twin = {**ROBOT, "name": "cp-3", "robot": 2100003, "address": "203.0.113.12"}
    nodes = [{**ROBOT, "ipv6": "2a01:4f8::1", "network": NETWORK}, {**cloud, "ipv6": "2a01:4f8::2"}]
    nodes.append({**twin, "ipv6": "2a01:4f8:0::1", "network": NETWORK})

    found = problems(minimal(nodes=nodes))

    assert "nodes.cp-2.ipv6: is for dedicated servers (fix: drop it: a Cloud server's IPv6 comes from the API)" in found
    assert any(problem.startswith("nodes.cp-3: ipv6 2a01:4f8::1 is used by cp-1 too") for problem in found)


def test_dns_ipv6_needs_no_address_from_workers_without_node_records_nor_from_cloud_nodes() -> None:
    worker = {**ROBOT, "name": "worker-1", "role": "worker", "robot": 2100004, "address": "203.0.113.13"}
    cloud = {"name": "cp-2", "role": "controlplane", "cloud": {"serverType": "cx23", "location": "fsn1"}}
    nodes = [{**ROBOT, "ipv6": "2a01:4f8::1", "network": NETWORK}, cloud, worker]

    stack = StackConfig.parse(minimal(nodes=nodes, dns={"zone": "x.com", "ipv6": True, "nodeRecords": False}))

    assert stack.dns is not None and stack.dns.ipv6
    assert problems(minimal(nodes=nodes, dns={"zone": "x.com", "ipv6": True})) == [
        "nodes.worker-1.ipv6: is required: dns.ipv6 publishes an AAAA value for it (fix: set its ipv6 (an address of "
        "its /64 in Robot, e.g. 2a01:4f8:111:4221::1), or dns.ipv6: false)"
    ]
