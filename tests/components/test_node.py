"""TalosNode's DNS values under Pulumi's mocks: A values as before, and with `dns.ipv6` an AAAA value next to each A
value (a dedicated node's `ipv6`, a Cloud server's IPv6 address), put on the link by the node's static network."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pulumi.output import Unknown

from providers.talos_machine_config import check_inputs
from tests.components.program import PROJECT, ProgramRun, run_program, stack_config

DNS = "pulumi-python:dynamic/hetzner:DnsRecord"
CONFIG = "pulumi-python:dynamic/talos:TalosMachineConfig"
RECORD_INPUTS = ("zone", "name", "type", "values", "ttl", "owner")
PROD_IPV6 = {f"cp-{n}": f"2a01:4f8:111:42{n}0::1" for n in (1, 2, 3)} | {
    f"worker-{n}": f"2a01:4f8:111:43{n}0::1" for n in (1, 2)
}


def with_ipv6(stack: str, dns: dict[str, Any], addresses: dict[str, str]) -> dict[str, str]:
    """The stack's config with `dns` merged into its dns setting and `addresses` as the nodes' ipv6."""
    config = stack_config(stack)
    key = f"{PROJECT}:dns"
    config[key] = json.dumps({**json.loads(config[key]), **dns})
    nodes = json.loads(config[f"{PROJECT}:nodes"])
    config[f"{PROJECT}:nodes"] = json.dumps([{**node, "ipv6": addresses.get(node["name"])} for node in nodes])
    return config


def records(run: ProgramRun) -> dict[str, dict[str, Any]]:
    return {r.name: {key: r.inputs.get(key) for key in RECORD_INPUTS} for r in run.of_type(DNS)}


@pytest.fixture(scope="module")
def prod() -> ProgramRun:
    return run_program("prod")


@pytest.fixture(scope="module")
def prod_ipv6() -> ProgramRun:
    return run_program("prod", config=with_ipv6("prod", {"ipv6": True}, PROD_IPV6))


def test_without_dns_ipv6_each_node_has_its_a_values_only(prod: ProgramRun) -> None:
    found = records(prod)

    assert sorted(found) == sorted(
        [f"cp-{n}-api" for n in (1, 2, 3)] + [f"{node}-dns" for node in [*PROD_IPV6]]  # one per node
    )
    assert found["cp-1-api"] == {
        "zone": "k8s.example.com",
        "name": "api",
        "type": "A",
        "values": ["203.0.113.10"],
        "ttl": 60,
        "owner": "pulumi prod/cp-1-api",
    }
    assert found["cp-1-dns"]["name"] == "cp-1" and {r["type"] for r in found.values()} == {"A"}


def test_dns_ipv6_adds_an_aaaa_value_next_to_each_a_value_and_keeps_the_a_values(
    prod: ProgramRun, prod_ipv6: ProgramRun
) -> None:
    before, after = records(prod), records(prod_ipv6)

    assert {name: after[name] for name in before} == before  # the A values, byte for byte
    added = {name: record for name, record in after.items() if name not in before}
    assert sorted(added) == sorted(f"{name}6" for name in before)
    assert added["cp-2-api6"] == {
        "zone": "k8s.example.com",
        "name": "api",
        "type": "AAAA",
        "values": [PROD_IPV6["cp-2"]],
        "ttl": 60,
        "owner": "pulumi prod/cp-2-api6",
    }
    assert added["worker-1-dns6"]["values"] == [PROD_IPV6["worker-1"]] and added["worker-1-dns6"]["name"] == "worker-1"


def test_aaaa_values_wait_for_the_nodes_config_like_the_a_values(prod_ipv6: ProgramRun) -> None:
    for node in ("cp-1", "worker-2"):
        config = prod_ipv6.named(f"{node}-config").urn
        a, aaaa = prod_ipv6.named(f"{node}-dns"), prod_ipv6.named(f"{node}-dns6")
        assert config in aaaa.dependencies and aaaa.dependencies == a.dependencies and aaaa.parent == a.parent


def test_cloud_control_plane_publishes_its_servers_ipv6_address() -> None:
    addresses = {"cp-1": "2a01:4f8:1::1", "cp-2": "2a01:4f8:2::1"}
    lab = run_program("lab", config=with_ipv6("lab", {"ipv6": True, "nodeRecords": False}, addresses))

    found = records(lab)

    assert sorted(found) == ["cp-1-api", "cp-1-api6", "cp-2-api", "cp-2-api6", "cp-3-api", "cp-3-api6"]
    assert found["cp-1-api6"]["values"] == ["2a01:4f8:1::1"]
    [cloud] = found["cp-3-api6"]["values"]
    assert re.fullmatch(r"2001:db8:99:\d+::1", cloud)  # the mocked server's ipv6Address
    assert re.fullmatch(r"127\.99\.2\.\d+", found["cp-3-api"]["values"][0])  # its A value: the ipv4Address


def static_network(run: ProgramRun, node: str) -> tuple[str, dict[str, Any]]:
    """The node's static network patch text, and its TalosMachineConfig inputs."""
    config = run.named(f"{node}-config").inputs
    [patch] = [p["patch"] for p in config["patches"] if p["source"] == f"node {node} static network"]
    return patch, config


def test_static_network_without_ipv6_is_unchanged(prod: ProgramRun) -> None:
    patch, _ = static_network(prod, "cp-1")

    assert patch.split("---")[0] == (
        "apiVersion: v1alpha1\nkind: LinkConfig\nname: enp0s31f6\naddresses:\n    - address: 203.0.113.10/32\n"
        "routes:\n    - destination: 203.0.113.1/32\n    - gateway: 203.0.113.1\n"
    )


def test_static_network_puts_the_ipv6_address_on_the_link_with_the_hetzner_gateway(prod_ipv6: ProgramRun) -> None:
    patch, config = static_network(prod_ipv6, "cp-1")

    assert "    - address: 203.0.113.10/32\n    - address: 2a01:4f8:111:4210::1/64\nroutes:\n" in patch
    assert patch.split("---")[0].endswith("    - gateway: 203.0.113.1\n    - gateway: fe80::1\n")
    problems, _ = check_inputs({**config, "secretsYaml": Unknown()})  # Talos' rules, offline
    assert problems == []
