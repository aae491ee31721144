"""The lab's zones API through the official `hcloud` client: action names and resources, lookups by id and
name, paging and filters, the documented error codes (404, 409, 422, 423) and record comments.

tests/lab/test_zones.py covers the records life cycle, validation and the DNS responder.
"""

from __future__ import annotations

import pytest
import requests
from hcloud import APIException, Client
from hcloud.zones import BoundZone, ZoneRecord, ZoneRRSet

from lab.faults import Fault
from lab.services import Lab


@pytest.fixture
def client(lab: Lab) -> Client:
    return Client(token=lab.spec.cloud_token, api_endpoint=lab.cloud_url, poll_interval=0.01)


@pytest.fixture
def zone(client: Client) -> BoundZone:
    response = client.zones.create(name="example.com", mode="primary", ttl=3600)
    response.action.wait_until_finished()
    return response.zone


def _api(zone: BoundZone) -> ZoneRRSet:
    return ZoneRRSet(name="api", type="A", zone=zone)


def _error(call: object) -> APIException:
    with pytest.raises(APIException) as raised:
        call()  # type: ignore[operator]
    return raised.value


def test_rrset_actions_carry_the_api_command_names_and_the_zone(client: Client, zone: BoundZone) -> None:
    created = client.zones.create_rrset(zone, name="api", type="A", records=[ZoneRecord("127.0.1.10")])
    actions = [
        created.action,
        client.zones.add_rrset_records(_api(zone), [ZoneRecord("127.0.1.11")]),
        client.zones.set_rrset_records(_api(zone), [ZoneRecord("127.0.1.12")]),
        client.zones.change_rrset_ttl(_api(zone), 60),
        client.zones.remove_rrset_records(_api(zone), [ZoneRecord("127.0.1.12")]),
    ]
    for action in actions:
        action.wait_until_finished()

    commands = [client.zones.actions.get_by_id(a.id).command for a in actions]
    assert commands == [
        "create_rrset",
        "add_rrset_records",
        "set_rrset_records",
        "change_rrset_ttl",
        "remove_rrset_records",
    ]
    assert all(a.resources == [{"id": zone.id, "type": "zone"}] for a in actions)
    assert {a.id for a in client.zones.get_actions(zone)} >= {a.id for a in actions}


def test_zone_found_by_id_and_by_name_and_listed_by_name(client: Client, zone: BoundZone) -> None:
    assert client.zones.get(str(zone.id)).name == "example.com"
    assert client.zones.get("example.com").id == zone.id
    assert [z.id for z in client.zones.get_all(name="example.com")] == [zone.id]
    assert client.zones.get_all(name="example.org") == []


def test_rrsets_page_and_filter_by_name_and_type(client: Client, zone: BoundZone) -> None:
    for index in range(4):
        client.zones.create_rrset(zone, name=f"n{index}", type="A", records=[ZoneRecord(f"127.0.1.{index}")])
    client.zones.create_rrset(zone, name="n0", type="AAAA", records=[ZoneRecord("2001:db8::1")])

    page = client.zones.get_rrset_list(zone, page=2, per_page=3)
    assert page.meta.pagination.total_entries == 7 and len(page.rrsets) == 3  # with SOA and NS at @
    assert sorted(r.type for r in client.zones.get_rrset_all(zone, name="n0")) == ["A", "AAAA"]
    assert [r.name for r in client.zones.get_rrset_all(zone, type=["AAAA"])] == ["n0"]


def test_rrset_labels_update_and_select(client: Client, zone: BoundZone) -> None:
    rrset = client.zones.create_rrset(zone, name="api", type="A", records=[ZoneRecord("127.0.1.10")]).rrset
    client.zones.update_rrset(rrset, labels={"role": "api"})
    assert [r.name for r in client.zones.get_rrset_all(zone, label_selector="role=api")] == ["api"]


def test_update_records_changes_comments_of_present_values_only(client: Client, zone: BoundZone) -> None:
    client.zones.add_rrset_records(_api(zone), [ZoneRecord("127.0.1.10", "old")]).wait_until_finished()
    client.zones.update_rrset_records(_api(zone), [ZoneRecord("127.0.1.10", "new")]).wait_until_finished()
    assert [r.comment for r in client.zones.get_rrset(zone, "api", "A").records] == ["new"]
    error = _error(lambda: client.zones.update_rrset_records(_api(zone), [ZoneRecord("127.0.1.99", "x")]))
    assert error.code == "invalid_input" and error.details["fields"][0]["name"] == "records"


def test_change_ttl_to_none_falls_back_to_the_zone_default(client: Client, zone: BoundZone) -> None:
    client.zones.add_rrset_records(_api(zone), [ZoneRecord("127.0.1.10")], ttl=60).wait_until_finished()
    client.zones.change_rrset_ttl(_api(zone), None).wait_until_finished()
    assert client.zones.get_rrset(zone, "api", "A").ttl is None


def test_missing_zone_rrset_and_action_are_not_found(client: Client, zone: BoundZone) -> None:
    assert _error(lambda: client.zones.get("example.org")).code == "not_found"
    assert _error(lambda: client.zones.get_rrset(zone, "api", "A")).code == "not_found"
    assert _error(lambda: client.zones.set_rrset_records(_api(zone), [ZoneRecord("127.0.1.1")])).code == "not_found"
    assert _error(lambda: client.zones.change_rrset_ttl(_api(zone), 60)).code == "not_found"
    assert _error(lambda: client.zones.actions.get_by_id(1)).code == "not_found"


def test_duplicate_zone_is_uniqueness_error_naming_the_field(client: Client, zone: BoundZone) -> None:
    error = _error(lambda: client.zones.create(name="example.com", mode="primary"))
    assert error.code == "uniqueness_error" and error.details["fields"] == [{"name": "name"}]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Example.com", "mode": "primary"}, "name"),
        ({"name": "example.com.", "mode": "primary"}, "name"),
        ({"name": "example.net", "mode": "tertiary"}, "mode"),
        ({"name": "example.net", "mode": "primary", "ttl": 30}, "ttl"),
        ({"name": "example.net", "mode": "secondary"}, "primary_nameservers"),
    ],
)
def test_invalid_zone_is_422_naming_the_field(lab: Lab, body: dict[str, object], field: str) -> None:
    headers = {"Authorization": f"Bearer {lab.spec.cloud_token}"}
    response = requests.post(f"{lab.cloud_url}/zones", json=body, headers=headers, timeout=5)
    error = response.json()["error"]
    assert response.status_code == 422 and error["code"] == "invalid_input"
    assert error["details"]["fields"][0]["name"] == field


@pytest.mark.parametrize(
    ("records", "ttl", "message"),
    [
        ([], None, "must not be empty"),
        ([ZoneRecord("127.0.1.10"), ZoneRecord("127.0.1.10")], None, "duplicate value"),
        ([ZoneRecord("127.0.1.11")], 300, "must equal the TTL"),
    ],
)
def test_add_records_refusals_are_invalid_input(
    client: Client, zone: BoundZone, records: list[ZoneRecord], ttl: int | None, message: str
) -> None:
    client.zones.add_rrset_records(_api(zone), [ZoneRecord("127.0.1.10")], ttl=60).wait_until_finished()
    error = _error(lambda: client.zones.add_rrset_records(_api(zone), records, ttl=ttl))
    assert error.code == "invalid_input" and message in error.message


def test_locked_fault_refuses_changes_but_not_reads(lab: Lab, client: Client, zone: BoundZone) -> None:
    lab.faults.arm(Fault.CLOUD_LOCKED, times=2, target=f"/v1/zones/{zone.id}")

    assert _error(lambda: client.zones.add_rrset_records(_api(zone), [ZoneRecord("127.0.1.10")])).code == "locked"
    assert client.zones.get("example.com").id == zone.id
    assert _error(lambda: client.zones.delete(zone)).code == "locked"
    client.zones.add_rrset_records(_api(zone), [ZoneRecord("127.0.1.10")]).wait_until_finished()
    assert [r.value for r in client.zones.get_rrset(zone, "api", "A").records] == ["127.0.1.10"]
