"""DnsRecord through the SDK's dynamic-provider gRPC server against the lab's zones API: create, adopt, update,
replace, drift, import, delete, concurrent nodes, bad input, and a real resolver seeing the result."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.resolver
import pytest
from hcloud import Client
from hcloud.zones import ZoneRecord, ZoneRRSet

from lab.services import Lab
from providers.dns_record import DnsRecordArgs, DnsRecordProvider
from tests.providers.harness import UNKNOWN, ProviderCallError, ProviderServer, ResourceDriver, provider_server

TYPE = "pulumi-python:dynamic/hetzner:DnsRecord"
NODES = {"cp-1": "127.0.1.10", "cp-2": "127.0.1.11", "cp-3": "127.0.2.10"}


def inputs(node: str = "cp-1", **overrides: Any) -> dict[str, Any]:
    base = {
        "zone": "example.com",
        "name": "api",
        "type": "A",
        "values": [NODES[node]],
        "ttl": 60,
        "owner": f"pulumi test/{node}-api",
    }
    return {**base, **overrides}


@pytest.fixture
def hcloud_client(lab: Lab) -> Client:
    client = Client(token=lab.spec.cloud_token, api_endpoint=lab.cloud_url, poll_interval=0.01)
    client.zones.create(name="example.com", mode="primary", ttl=3600).action.wait_until_finished()
    return client


@pytest.fixture
def server(lab: Lab, tmp_path: Path, hcloud_client: Client) -> Iterator[ProviderServer]:
    config = {"hcloud:token": lab.spec.cloud_token, "hcloud:endpoint": lab.cloud_url}
    with provider_server(tmp_path / "provider.log", config, secrets=["hcloud:token"]) as started:
        yield started


@pytest.fixture(scope="module")
def checker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProviderServer]:
    """A provider server for offline checks (no API behind the endpoint)."""
    config = {"hcloud:token": "t" * 64, "hcloud:endpoint": "http://127.0.0.1:9/v1"}
    log = tmp_path_factory.mktemp("dns-record") / "provider.log"
    with provider_server(log, config, secrets=["hcloud:token"]) as started:
        yield started


def record(server: ProviderServer, node: str = "cp-1") -> ResourceDriver:
    return ResourceDriver(server, DnsRecordProvider(), f"{node}-api", TYPE)


def rrset(client: Client, name: str = "api", kind: str = "A") -> dict[str, tuple[int | None, str]] | None:
    """value -> (ttl, comment) of the set in the lab, None when there is none."""
    found = client.zones.get_rrset_list(client.zones.get("example.com"), name=name, type=[kind]).rrsets
    return {r.value: (found[0].ttl, r.comment) for r in found[0].records} if found else None


def test_create_adds_the_value_with_ttl_and_owner(server: ProviderServer, hcloud_client: Client) -> None:
    resource = record(server)

    step = resource.up(inputs())

    assert step.op == "create" and resource.id == "example.com/api/A/127.0.1.10"
    assert step.outputs["fqdn"] == "api.example.com" and step.outputs["adopted"] == []
    assert rrset(hcloud_client) == {"127.0.1.10": (60, "managed by pulumi test/cp-1-api")}
    assert "api.example.com A: adding 127.0.1.10" in server.stderr()


def test_check_normalises_name_values_and_ttl(checker: ProviderServer) -> None:
    resource = record(checker)
    checked, _ = resource.preview(
        inputs(zone="Example.COM.", name="API.example.com.", type="aaaa", values=["2001:DB8:0::10"], ttl=300.0)
    )
    assert checked.failures == []
    assert {k: checked.inputs[k] for k in ("zone", "name", "type", "values", "ttl")} == {
        "zone": "example.com",
        "name": "api",
        "type": "AAAA",
        "values": ["2001:db8::10"],
        "ttl": 300,
    }
    txt, _ = resource.preview(inputs(name="@", type="TXT", values=['v=lab "quoted"']))
    assert txt.inputs["values"] == ['"v=lab \\"quoted\\""'] and txt.inputs["name"] == "@"


def test_create_adopts_a_value_made_by_hand(server: ProviderServer, hcloud_client: Client) -> None:
    api = ZoneRRSet(name="api", type="A", zone=hcloud_client.zones.get("example.com"))
    hcloud_client.zones.add_rrset_records(api, [ZoneRecord("127.0.1.10")], ttl=60).wait_until_finished()

    step = record(server).up(inputs())

    assert step.op == "create" and step.outputs["adopted"] == ["127.0.1.10"]
    assert rrset(hcloud_client) == {"127.0.1.10": (60, "managed by pulumi test/cp-1-api")}


def test_create_after_an_interrupted_run_adopts_its_own_value(server: ProviderServer, hcloud_client: Client) -> None:
    first = record(server)
    first.up(inputs())
    rerun = record(server)  # the state lost the first create

    step = rerun.up(inputs())

    assert step.op == "create" and step.outputs["adopted"] == []
    assert list(rrset(hcloud_client) or {}) == ["127.0.1.10"]


def test_value_of_another_record_is_refused_and_kept(server: ProviderServer, hcloud_client: Client) -> None:
    record(server, "cp-2").up(inputs("cp-2"))

    with pytest.raises(ProviderCallError, match=r"127\.0\.1\.11 \(by pulumi test/cp-2-api\) already claimed"):
        record(server).up(inputs(values=["127.0.1.10", "127.0.1.11"]))

    assert list(rrset(hcloud_client) or {}) == ["127.0.1.11"]


def test_ttl_change_updates_in_place(server: ProviderServer, hcloud_client: Client) -> None:
    resource = record(server)
    resource.up(inputs())

    _, diff = resource.preview(inputs(ttl=300))
    step = resource.up(inputs(ttl=300))

    assert diff is not None and diff.changes == "some" and diff.replaces == []
    assert step.op == "update" and step.outputs["ttl"] == 300
    assert rrset(hcloud_client) == {"127.0.1.10": (300, "managed by pulumi test/cp-1-api")}


def test_value_change_updates_in_place_and_keeps_other_nodes(server: ProviderServer, hcloud_client: Client) -> None:
    resource = record(server)
    resource.up(inputs())
    record(server, "cp-2").up(inputs("cp-2"))

    step = resource.up(inputs(values=["127.0.1.12"]))

    assert step.op == "update" and resource.id == "example.com/api/A/127.0.1.10"  # ids never change in place
    assert sorted(rrset(hcloud_client) or {}) == ["127.0.1.11", "127.0.1.12"]


def test_same_inputs_change_nothing(server: ProviderServer) -> None:
    resource = record(server)
    resource.up(inputs())
    assert resource.up(inputs(name="api.example.com")).op == "same"


@pytest.mark.parametrize(("field", "value"), [("zone", "example.org"), ("name", "k8s"), ("type", "AAAA")])
def test_zone_name_or_type_change_replaces(
    server: ProviderServer, hcloud_client: Client, field: str, value: str
) -> None:
    hcloud_client.zones.create(name="example.org", mode="primary").action.wait_until_finished()
    resource = record(server)
    resource.up(inputs())
    values = ["2001:db8::10"] if field == "type" else ["127.0.1.10"]

    step = resource.up(inputs(**{field: value, "values": values}))

    assert step.op == "replace"
    assert rrset(hcloud_client) is None  # the old set went with its last value
    zone = hcloud_client.zones.get(step.outputs["zone"])
    new = hcloud_client.zones.get_rrset(zone, step.outputs["name"], step.outputs["type"])
    assert [r.value for r in new.records] == values


def test_preview_with_unknown_values_updates_and_unknown_zone_replaces(server: ProviderServer) -> None:
    resource = record(server)
    resource.up(inputs())

    checked, diff = resource.preview(inputs(values=[UNKNOWN]))
    assert checked.failures == [] and diff is not None and (diff.changes, diff.replaces) == ("some", [])
    _, diff = resource.preview(inputs(zone=UNKNOWN))
    assert diff is not None and diff.replaces == ["zone"]


def test_refresh_after_value_removed_out_of_band_drops_the_resource(
    server: ProviderServer, hcloud_client: Client
) -> None:
    resource = record(server)
    resource.up(inputs())
    api = ZoneRRSet(name="api", type="A", zone=hcloud_client.zones.get("example.com"))
    hcloud_client.zones.remove_rrset_records(api, [ZoneRecord("127.0.1.10")]).wait_until_finished()

    resource.refresh()

    assert resource.id == "" and set(resource.outputs) <= {"__provider"}


def test_refresh_shows_a_ttl_changed_out_of_band_and_up_restores_it(
    server: ProviderServer, hcloud_client: Client
) -> None:
    resource = record(server)
    resource.up(inputs())
    api = ZoneRRSet(name="api", type="A", zone=hcloud_client.zones.get("example.com"))
    hcloud_client.zones.change_rrset_ttl(api, 7200).wait_until_finished()

    resource.refresh()
    assert resource.outputs["ttl"] == 7200 and resource.id == "example.com/api/A/127.0.1.10"

    assert resource.up(inputs()).op == "update"
    assert rrset(hcloud_client) == {"127.0.1.10": (60, "managed by pulumi test/cp-1-api")}


def read_by_id(resource: ResourceDriver, id_: str) -> tuple[str, dict[str, Any]]:
    """Read with nothing but the id (and the provider), as an import does."""
    return resource.server.read(resource.urn, id_, {"__provider": resource.blob})


def test_import_by_id_reads_the_value_and_its_owner(server: ProviderServer) -> None:
    record(server).up(inputs())
    record(server, "cp-2").up(inputs("cp-2"))
    imported = record(server, "imported")

    found_id, outputs = read_by_id(imported, "example.com/api/A/127.0.1.10")
    assert found_id == "example.com/api/A/127.0.1.10"
    assert (outputs["values"], outputs["ttl"], outputs["owner"]) == (["127.0.1.10"], 60, "pulumi test/cp-1-api")

    _, whole = read_by_id(imported, "Example.com/API/a")
    assert sorted(whole["values"]) == ["127.0.1.10", "127.0.1.11"]
    assert read_by_id(imported, "example.com/api/A/127.0.9.9")[0] == ""
    with pytest.raises(ProviderCallError, match="is not zone/name/type"):
        read_by_id(imported, "example.com")


def test_import_of_a_hand_made_value_then_up_claims_it(server: ProviderServer, hcloud_client: Client) -> None:
    api = ZoneRRSet(name="api", type="A", zone=hcloud_client.zones.get("example.com"))
    hcloud_client.zones.add_rrset_records(api, [ZoneRecord("127.0.1.10")], ttl=60).wait_until_finished()
    resource = record(server)
    resource.id, resource.outputs = read_by_id(resource, "example.com/api/A/127.0.1.10")
    resource.inputs = {key: resource.outputs.get(key) for key in ("zone", "name", "type", "values", "ttl", "owner")}
    assert resource.inputs["owner"] is None  # nobody claimed it yet

    assert resource.up(inputs()).op == "update"
    assert rrset(hcloud_client) == {"127.0.1.10": (60, "managed by pulumi test/cp-1-api")}


def test_delete_removes_only_its_value_then_the_last_deletes_the_set(
    server: ProviderServer, hcloud_client: Client
) -> None:
    first, second = record(server), record(server, "cp-2")
    first.up(inputs())
    second.up(inputs("cp-2"))

    first.destroy()
    assert list(rrset(hcloud_client) or {}) == ["127.0.1.11"]
    second.destroy()
    assert rrset(hcloud_client) is None


def test_whole_set_in_one_resource_is_created_refreshed_restored_and_destroyed(
    server: ProviderServer, hcloud_client: Client
) -> None:
    both = ["127.0.1.10", "127.0.1.11"]
    resource = record(server, "all")

    step = resource.up(inputs(values=both, owner="pulumi test/all-api"))
    assert step.op == "create" and resource.id == "example.com/api/A"
    assert rrset(hcloud_client) == {value: (60, "managed by pulumi test/all-api") for value in both}

    api = ZoneRRSet(name="api", type="A", zone=hcloud_client.zones.get("example.com"))
    hcloud_client.zones.remove_rrset_records(api, [ZoneRecord("127.0.1.11")]).wait_until_finished()
    resource.refresh()
    assert resource.id == "example.com/api/A" and resource.outputs["values"] == ["127.0.1.10"]

    assert resource.up(inputs(values=both, owner="pulumi test/all-api")).op == "update"
    assert sorted(rrset(hcloud_client) or {}) == both

    resource.destroy()
    assert rrset(hcloud_client) is None


def test_three_nodes_adding_at_once_all_survive(server: ProviderServer, hcloud_client: Client) -> None:
    resources = {node: record(server, node) for node in NODES}
    failures: list[BaseException] = []

    def up(node: str) -> None:
        try:
            resources[node].up(inputs(node))
        except BaseException as error:  # reported below
            failures.append(error)

    threads = [threading.Thread(target=up, args=(node,)) for node in NODES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    got = rrset(hcloud_client) or {}
    assert sorted(got) == sorted(NODES.values()) and {ttl for ttl, _ in got.values()} == {60}


def test_a_real_resolver_sees_the_round_robin_addresses(lab: Lab, server: ProviderServer) -> None:
    for node in NODES:
        record(server, node).up(inputs(node))
    assert lab.dns is not None
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = [lab.dns.address[0]], lab.dns.address[1]

    answer = resolver.resolve("api.example.com", "A")

    assert sorted(r.address for r in answer) == sorted(NODES.values()) and answer.rrset is not None
    assert answer.rrset.ttl == 60


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"zone": "com"}, "zone", "is not a domain name (fix: a zone such as example.com)"),
        ({"zone": "exämple.com"}, "zone", "punycode"),
        ({"name": "api.example.org."}, "name", "outside the zone example.com (fix: a name ending in .example.com)"),
        ({"name": "bad name"}, "name", "is not a record name"),
        ({"type": "SPF"}, "type", "is not a record type (fix: one of A, AAAA"),
        ({"type": "SOA"}, "type", "is not a record type"),
        ({"values": ["2001:db8::1"]}, "values[0]", "is an address for type AAAA, not A (fix: type AAAA)"),
        ({"values": ["127.0.0.300"]}, "values[0]", "is not an IPv4 address"),
        ({"type": "AAAA", "values": ["127.0.1.10"]}, "values[0]", "is an address for type A, not AAAA"),
        ({"values": ["127.0.1.10", "127.000.1.10"]}, "values[1]", "is not an IPv4 address"),
        ({"values": ["127.0.1.10", " 127.0.1.10"]}, "values", "lists a value twice"),
        ({"values": []}, "values", "at least one value is required"),
        ({"ttl": 30}, "ttl", "out of range (fix: 60..2147483647 seconds, or none)"),
        ({"ttl": 60.5}, "ttl", "is not a whole number of seconds"),
        ({"type": "CNAME", "values": ["a.example.net", "b.example.net"]}, "values", "a CNAME has exactly one value"),
        ({"type": "CNAME", "name": "@", "values": ["lb.example.net"]}, "name", "cannot be at the zone apex"),
        ({"type": "TXT", "values": ['"' + "x" * 256 + '"']}, "values[0]", "at most 255 characters"),
        ({"zone": None}, "zone", "is required, as text (fix: set zone, e.g. example.com)"),
        ({"type": 28}, "type", "is required, as text (fix: set type, e.g. A)"),
        ({"owner": ""}, "owner", "must be a non-empty text"),
    ],
)
def test_check_rejects_bad_input_naming_the_field_and_fix(
    checker: ProviderServer, overrides: dict[str, Any], field: str, message: str
) -> None:
    checked, _ = record(checker).preview(inputs(**overrides))
    assert [name for name, _ in checked.failures] == [field]
    assert message in checked.failures[0][1]


def test_check_without_token_says_how_to_set_it(tmp_path: Path) -> None:
    with provider_server(tmp_path / "provider.log", {}) as bare:
        checked, _ = record(bare).preview(inputs())
    fix = "pulumi config set --secret hcloudToken <a Cloud project token>, or set hcloud:token"
    assert checked.failures == [("hcloudToken", f"the Cloud API token is not in the stack config (fix: {fix})")]


def test_token_never_in_outputs_state_or_log(lab: Lab, server: ProviderServer) -> None:
    resource = record(server)
    resource.up(inputs())
    resource.refresh()
    resource.destroy()
    texts = [str(resource.blob), str(resource.outputs), server.stderr()]
    assert all(lab.spec.cloud_token not in text for text in texts)


def test_cname_next_to_other_types_is_refused_by_the_api_with_its_reason(
    server: ProviderServer, hcloud_client: Client
) -> None:
    """`check` cannot know the name's other sets (other resources own them): the API refuses at create."""
    record(server).up(inputs(name="www"))
    cname = record(server, "cp-2")
    checked, _ = cname.preview(inputs("cp-2", name="www", type="CNAME", values=["lb.example.net"]))
    assert checked.failures == []

    with pytest.raises(ProviderCallError) as raised:
        cname.up(inputs("cp-2", name="www", type="CNAME", values=["lb.example.net"]))

    assert "pulumi test/cp-2-api: www.example.com CNAME: the name already holds A records" in raised.value.details
    assert "(fix: remove them, or put the CNAME at another name)" in raised.value.details
    assert "a CNAME cannot coexist with other records of the same name" in raised.value.details  # the API's words
    assert rrset(hcloud_client, "www", "CNAME") is None and list(rrset(hcloud_client, "www") or {}) == ["127.0.1.10"]


def test_args_take_one_value_or_several_and_default_the_owner_to_stack_and_name() -> None:
    props = DnsRecordArgs(zone="example.com", name="api", type="A", value="127.0.1.10").to_props("cp-1-api")
    assert props["values"] == ["127.0.1.10"] and props["owner"] == "pulumi stack/cp-1-api"  # `stack` outside a run
    several = DnsRecordArgs(zone="example.com", name="api", type="A", values=["127.0.1.10", "127.0.1.11"], owner="o")
    assert several.to_props("all")["values"] == ["127.0.1.10", "127.0.1.11"]
    for wrong in (DnsRecordArgs("example.com", "api", "A"), DnsRecordArgs("example.com", "api", "A", "x", ["y"])):
        with pytest.raises(ValueError, match="give exactly one of value and values"):
            wrong.to_props("cp-1-api")
