"""DNS zones and RRSets in the lab's Cloud API, through the official `hcloud` zones client."""

from __future__ import annotations

import threading

import dns.flags
import dns.resolver
import pytest
from hcloud import APIException, Client
from hcloud.zones import BoundZone, ZonePrimaryNameserver, ZoneRecord, ZoneRRSet

from lab.services import Lab


@pytest.fixture
def client(lab: Lab) -> Client:
    return Client(token=lab.spec.cloud_token, api_endpoint=lab.cloud_url, poll_interval=0.02)


@pytest.fixture
def zone(client: Client) -> BoundZone:
    response = client.zones.create(name="example.com", mode="primary", ttl=3600)
    response.action.wait_until_finished()
    return response.zone


def _values(client: Client, zone: BoundZone, name: str, kind: str) -> list[str]:
    return [r.value for r in client.zones.get_rrset(zone, name, kind).records]


def _code(call: object) -> str:
    with pytest.raises(APIException) as err:
        call()  # type: ignore[operator]
    return str(err.value.code)


def test_new_zone_has_soa_and_the_assigned_nameservers(client: Client, zone: BoundZone) -> None:
    assert zone.authoritative_nameservers.assigned == [
        "hydrogen.ns.hetzner.com.",
        "oxygen.ns.hetzner.com.",
        "helium.ns.hetzner.de.",
    ]
    types = sorted(r.type for r in client.zones.get_rrset_all(zone))
    assert types == ["NS", "SOA"]
    assert client.zones.get("example.com").id == zone.id


def test_add_records_creates_the_rrset_then_appends(client: Client, zone: BoundZone) -> None:
    rrset = client.zones.get_rrset_list(zone, name="api").rrsets
    assert rrset == []
    target = ZoneRRSet(name="api", type="A", zone=zone)
    client.zones.add_rrset_records(target, [ZoneRecord("127.0.1.10")], ttl=60).wait_until_finished()
    client.zones.add_rrset_records(target, [ZoneRecord("127.0.1.11")]).wait_until_finished()
    assert _values(client, zone, "api", "A") == ["127.0.1.10", "127.0.1.11"]
    assert client.zones.get_rrset(zone, "api", "A").ttl == 60


def test_concurrent_adds_keep_every_value(client: Client, zone: BoundZone) -> None:
    target = ZoneRRSet(name="api", type="A", zone=zone)
    threads = [
        threading.Thread(
            target=lambda ip=ip: client.zones.add_rrset_records(target, [ZoneRecord(ip)]).wait_until_finished()
        )
        for ip in ("127.0.1.10", "127.0.1.11", "127.0.2.10")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(_values(client, zone, "api", "A")) == ["127.0.1.10", "127.0.1.11", "127.0.2.10"]


def test_removing_the_last_value_deletes_the_rrset(client: Client, zone: BoundZone) -> None:
    created = client.zones.create_rrset(
        zone, name="api", type="A", ttl=60, records=[ZoneRecord("127.0.1.10"), ZoneRecord("127.0.1.11")]
    )
    created.action.wait_until_finished()
    client.zones.remove_rrset_records(created.rrset, [ZoneRecord("127.0.1.10")]).wait_until_finished()
    assert _values(client, zone, "api", "A") == ["127.0.1.11"]
    client.zones.remove_rrset_records(created.rrset, [ZoneRecord("127.0.1.11")]).wait_until_finished()
    assert _code(lambda: client.zones.get_rrset(zone, "api", "A")) == "not_found"


def test_change_ttl_and_set_records(client: Client, zone: BoundZone) -> None:
    rrset = client.zones.create_rrset(zone, name="api", type="AAAA", records=[ZoneRecord("2001:db8::1")]).rrset
    client.zones.change_rrset_ttl(rrset, 300).wait_until_finished()
    client.zones.set_rrset_records(rrset, [ZoneRecord("2001:db8::2")]).wait_until_finished()
    fetched = client.zones.get_rrset(zone, "api", "AAAA")
    assert fetched.ttl == 300 and [r.value for r in fetched.records] == ["2001:db8::2"]


def test_duplicate_rrset_is_uniqueness_error(client: Client, zone: BoundZone) -> None:
    client.zones.create_rrset(zone, name="api", type="A", records=[ZoneRecord("127.0.1.10")])
    assert (
        _code(lambda: client.zones.create_rrset(zone, name="api", type="A", records=[ZoneRecord("127.0.1.11")]))
        == "uniqueness_error"
    )


@pytest.mark.parametrize(
    ("name", "kind", "value", "ttl", "field"),
    [
        ("API", "A", "127.0.0.1", None, "name"),
        ("api.", "A", "127.0.0.1", None, "name"),
        ("api.example.com", "A", "127.0.0.1", None, "name"),
        ("api", "A", "::1", None, "records"),
        ("api", "AAAA", "127.0.0.1", None, "records"),
        ("api", "TXT", "unquoted", None, "records"),
        ("api", "TXT", '"' + "x" * 256 + '"', None, "records"),
        ("api", "A", "127.0.0.1", 59, "ttl"),
    ],
)
def test_invalid_rrsets_name_the_field(
    client: Client, zone: BoundZone, name: str, kind: str, value: str, ttl: int | None, field: str
) -> None:
    with pytest.raises(APIException) as err:
        client.zones.create_rrset(zone, name=name, type=kind, ttl=ttl, records=[ZoneRecord(value)])
    assert err.value.code == "invalid_input"
    assert err.value.details["fields"][0]["name"] == field


def test_cname_does_not_coexist_with_other_types(client: Client, zone: BoundZone) -> None:
    client.zones.create_rrset(zone, name="api", type="A", records=[ZoneRecord("127.0.1.10")])
    assert (
        _code(
            lambda: client.zones.create_rrset(zone, name="api", type="CNAME", records=[ZoneRecord("lb.example.net.")])
        )
        == "invalid_input"
    )


def test_protected_rrset_refuses_changes(client: Client, zone: BoundZone) -> None:
    rrset = client.zones.create_rrset(zone, name="api", type="A", records=[ZoneRecord("127.0.1.10")]).rrset
    client.zones.change_rrset_protection(rrset, change=True).wait_until_finished()
    assert _code(lambda: client.zones.add_rrset_records(rrset, [ZoneRecord("127.0.1.11")])) == "protected"
    assert _code(lambda: client.zones.delete_rrset(rrset)) == "protected"


def test_secondary_zone_refuses_rrset_changes(client: Client) -> None:
    zone = client.zones.create(
        name="example.org", mode="secondary", primary_nameservers=[ZonePrimaryNameserver("192.0.2.53")]
    ).zone
    assert (
        _code(lambda: client.zones.create_rrset(zone, name="api", type="A", records=[ZoneRecord("127.0.0.1")]))
        == "incorrect_zone_mode"
    )


def test_zonefile_export_lists_the_records(client: Client, zone: BoundZone) -> None:
    client.zones.create_rrset(zone, name="api", type="TXT", records=[ZoneRecord('"hello world"')])
    text = client.zones.export_zonefile(zone).zonefile
    assert "$ORIGIN example.com." in text and 'api IN TXT "hello world"' in text


def test_delete_zone_and_protected_zone(client: Client, zone: BoundZone) -> None:
    client.zones.change_protection(zone, delete=True).wait_until_finished()
    assert _code(lambda: client.zones.delete(zone)) == "protected"
    client.zones.change_protection(zone, delete=False).wait_until_finished()
    client.zones.delete(zone).action.wait_until_finished()
    assert _code(lambda: client.zones.get("example.com")) == "not_found"


def _resolver(lab: Lab) -> dns.resolver.Resolver:
    assert lab.dns is not None
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = [lab.dns.address[0]], lab.dns.address[1]
    return resolver


def test_real_resolver_sees_the_round_robin_addresses(lab: Lab, client: Client, zone: BoundZone) -> None:
    target = ZoneRRSet(name="api", type="A", zone=zone)
    for ip in ("127.0.1.10", "127.0.1.11", "127.0.2.10"):
        client.zones.add_rrset_records(target, [ZoneRecord(ip)], ttl=60).wait_until_finished()
    answer = _resolver(lab).resolve("api.example.com", "A")
    assert sorted(r.address for r in answer) == ["127.0.1.10", "127.0.1.11", "127.0.2.10"]
    assert answer.rrset.ttl == 60 and answer.response.flags & dns.flags.AA


def test_real_resolver_reads_txt_aaaa_and_nameservers(lab: Lab, client: Client, zone: BoundZone) -> None:
    client.zones.create_rrset(zone, name="api", type="AAAA", records=[ZoneRecord("2001:db8::10")])
    client.zones.create_rrset(zone, name="@", type="TXT", records=[ZoneRecord('"v=lab" "two parts"')])
    resolver = _resolver(lab)
    assert [r.address for r in resolver.resolve("api.example.com", "AAAA")] == ["2001:db8::10"]
    assert [r.strings for r in resolver.resolve("example.com", "TXT")] == [(b"v=lab", b"two parts")]
    assert sorted(str(r.target) for r in resolver.resolve("example.com", "NS")) == [
        "helium.ns.hetzner.de.",
        "hydrogen.ns.hetzner.com.",
        "oxygen.ns.hetzner.com.",
    ]


def test_unknown_name_is_nxdomain_and_foreign_zone_refused(lab: Lab, zone: BoundZone) -> None:
    resolver = _resolver(lab)
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve("nothing.example.com", "A")
    with pytest.raises(dns.resolver.NoNameservers):
        resolver.resolve("example.net", "A")
