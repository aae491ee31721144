"""hetzner.dns: normalisation offline, then DnsClient against the lab's zones API (claims, adoption, release,
locked and rate-limited answers, concurrent writers)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from hcloud import Client
from hcloud.zones import ZoneRecord, ZoneRRSet

from common.retry import RetryPolicy
from common.waiting import Backoff
from hetzner.cloud import CloudActionError, CloudError
from hetzner.dns import (
    DnsClient,
    DnsConflictError,
    DnsInputError,
    RecordKey,
    check_ttl,
    normalize_value,
    normalize_zone,
    relative_name,
)
from lab.faults import Fault
from lab.services import Lab
from tests.hetzner.scripted_http import ScriptedServer, Sleeper

API = RecordKey("example.com", "api", "A")
NODES = ("127.0.1.10", "127.0.1.11", "127.0.2.10")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("api", "api"),
        ("API", "api"),
        ("api.example.com", "api"),
        ("Api.Example.Com.", "api"),
        ("@", "@"),
        ("", "@"),
        ("example.com.", "@"),
        ("_acme-challenge.k8s", "_acme-challenge.k8s"),
        ("*.apps", "*.apps"),
    ],
)
def test_relative_name_lower_case_relative_to_zone(name: str, expected: str) -> None:
    assert relative_name(name, "Example.COM.") == expected


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("api.example.org.", "outside the zone example.com"),
        ("api..x", "not a record name"),
        ("-api", "not a record name"),
        ("a.*", "'*' only first"),
        ("bücher", "punycode"),
        ("x" * 64, "not a record name"),
    ],
)
def test_relative_name_refuses_bad_names_with_the_fix(name: str, message: str) -> None:
    with pytest.raises(DnsInputError, match="name: ") as raised:
        relative_name(name, "example.com")
    assert message in str(raised.value)


@pytest.mark.parametrize("zone", ["com", "exa mple.com", "-x.com", "ex_ample.com", "a..b"])
def test_normalize_zone_refuses_what_is_not_a_domain(zone: str) -> None:
    with pytest.raises(DnsInputError, match=r"zone: .* is not a domain name"):
        normalize_zone(zone)


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("A", " 127.0.1.10 ", "127.0.1.10"),
        ("AAAA", "2001:DB8:0:0::10", "2001:db8::10"),
        ("TXT", 'hello "world"', '"hello \\"world\\""'),
        ("TXT", '"already" "quoted"', '"already" "quoted"'),
        ("TXT", "x" * 300, f'"{"x" * 255}" "{"x" * 45}"'),
        ("CNAME", "LB.example.net", "lb.example.net."),
        ("CNAME", "www", "www"),
        ("MX", "10 Mail.example.com.", "10 mail.example.com."),
        ("SRV", "0 5 6443 api.example.com", "0 5 6443 api.example.com."),
        ("CAA", '0 issue "letsencrypt.org"', '0 issue "letsencrypt.org"'),
    ],
)
def test_normalize_value_canonical_forms(kind: str, value: str, expected: str) -> None:
    assert normalize_value(kind, value) == expected


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("A", "2001:db8::1", "an address for type AAAA, not A (fix: type AAAA)"),
        ("A", "127.0.0.256", "not an IPv4 address"),
        ("A", "010.0.0.1", "not an IPv4 address"),
        ("AAAA", "127.0.0.1", "an address for type A, not AAAA"),
        ("TXT", '"' + "y" * 256 + '"', "at most 255 characters"),
        ("TXT", '"open" close"', "strings of at most 255"),
        ("CNAME", "bad host!", "not a host name"),
        ("MX", "mail.example.com", "'<preference> <host>'"),
        ("A", "   ", "empty"),
    ],
)
def test_normalize_value_refuses_with_the_reason(kind: str, value: str, message: str) -> None:
    with pytest.raises(DnsInputError, match="value: ") as raised:
        normalize_value(kind, value)
    assert message in str(raised.value)


def test_check_ttl_accepts_wire_floats_and_none_refuses_out_of_range() -> None:
    assert (check_ttl(60.0), check_ttl(None)) == (60, None)
    for bad, message in ((59, "out of range"), (2**31, "out of range"), (60.5, "whole number"), (True, "whole")):
        with pytest.raises(DnsInputError, match=message):
            check_ttl(bad)


def test_record_key_of_normalises_all_parts() -> None:
    key = RecordKey.of("Example.com.", "API.example.com", "aaaa")
    assert key == RecordKey("example.com", "api", "AAAA") and str(key) == "api.example.com AAAA"
    assert RecordKey.of("example.com", "@", "txt").fqdn == "example.com"


# --- against the lab -----------------------------------------------------------------------------


@pytest.fixture
def hcloud_client(lab: Lab) -> Client:
    client = Client(token=lab.spec.cloud_token, api_endpoint=lab.cloud_url, poll_interval=0.01)
    client.zones.create(name="example.com", mode="primary", ttl=3600).action.wait_until_finished()
    return client


@pytest.fixture
def pauses() -> list[float]:
    return []


@pytest.fixture
def dns_with(lab: Lab, hcloud_client: Client, pauses: list[float]) -> Callable[[RetryPolicy], DnsClient]:
    """A DnsClient on the lab with this retry policy; its pauses are recorded (and slept)."""

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        time.sleep(seconds)

    def make(retry: RetryPolicy) -> DnsClient:
        poll = Backoff(first=0.005, factor=2.0, cap=0.05)
        return DnsClient(lab.spec.cloud_token, endpoint=lab.cloud_url, poll=poll, retry=retry, sleep=sleep)

    return make


@pytest.fixture
def dns(dns_with: Callable[[RetryPolicy], DnsClient]) -> DnsClient:
    return dns_with(RetryPolicy(attempts=8, base=0.01, cap=0.05))


def test_claim_creates_the_set_with_its_ttl_and_tags_the_owner(dns: DnsClient) -> None:
    claim = dns.claim(API, ["127.0.1.10"], ttl=60, owner="cp-1")

    got = dns.record_set(API)
    assert claim.added == ("127.0.1.10",) and claim.adopted == ()
    assert got is not None and got.ttl == 60 and got.values == ("127.0.1.10",)
    assert got.owner_of("127.0.1.10") == "cp-1" and got.comments["127.0.1.10"] == "managed by cp-1"


def test_claim_again_changes_nothing(dns: DnsClient) -> None:
    dns.claim(API, ["127.0.1.10"], ttl=60, owner="cp-1")
    again = dns.claim(API, ["127.0.1.10"], ttl=60, owner="cp-1")
    assert (again.added, again.adopted) == ((), ())


def test_claim_adopts_a_value_made_by_hand_without_duplicating(dns: DnsClient, hcloud_client: Client) -> None:
    rrset = ZoneRRSet(name="api", type="A", zone=hcloud_client.zones.get("example.com"))
    hcloud_client.zones.add_rrset_records(rrset, [ZoneRecord("127.0.1.10", "by hand")], ttl=300)

    claim = dns.claim(API, ["127.0.1.10"], ttl=60, owner="cp-1")

    got = dns.record_set(API)
    assert claim.adopted == ("127.0.1.10",) and claim.added == ()
    assert got is not None and got.values == ("127.0.1.10",) and got.owner_of("127.0.1.10") == "cp-1"
    assert got.ttl == 60


def test_claim_refuses_a_value_of_another_owner_and_changes_nothing(dns: DnsClient) -> None:
    dns.claim(API, ["127.0.1.10"], ttl=60, owner="cp-1")

    with pytest.raises(DnsConflictError, match=r"127\.0\.1\.10 \(by cp-1\) already claimed"):
        dns.claim(API, ["127.0.1.10", "127.0.1.11"], ttl=60, owner="cp-2")

    assert dns.record_set(API).values == ("127.0.1.10",)  # type: ignore[union-attr]


def test_claim_with_previous_owner_retags(dns: DnsClient) -> None:
    dns.claim(API, ["127.0.1.10"], ttl=60, owner="cp-1")
    claim = dns.claim(API, ["127.0.1.10"], ttl=60, owner="cp-1b", previous_owner="cp-1")
    assert claim.adopted == ("127.0.1.10",)
    assert dns.record_set(API).owner_of("127.0.1.10") == "cp-1b"  # type: ignore[union-attr]


def test_claim_into_existing_set_keeps_others_and_sets_the_ttl(dns: DnsClient) -> None:
    dns.claim(API, ["127.0.1.10"], ttl=300, owner="cp-1")
    dns.claim(API, ["127.0.1.11"], ttl=60, owner="cp-2")

    got = dns.record_set(API)
    assert got is not None and got.values == ("127.0.1.10", "127.0.1.11") and got.ttl == 60


def test_release_removes_only_the_owners_values_then_the_set(dns: DnsClient) -> None:
    dns.claim(API, ["127.0.1.10"], ttl=60, owner="cp-1")
    dns.claim(API, ["127.0.1.11"], ttl=60, owner="cp-2")

    dns.release(API, ["127.0.1.10", "127.0.1.11"], owner="cp-1")
    assert dns.record_set(API).values == ("127.0.1.11",)  # type: ignore[union-attr]

    dns.release(API, ["127.0.1.11"], owner="cp-2")
    assert dns.record_set(API) is None
    dns.release(API, ["127.0.1.11"], owner="cp-2")  # gone already: nothing to do


def test_missing_zone_is_an_error_not_an_empty_set(dns: DnsClient) -> None:
    with pytest.raises(CloudError, match="zone not found") as raised:
        dns.record_set(RecordKey("example.org", "api", "A"))
    assert raised.value.code == "not_found"


def test_locked_changes_are_retried(lab: Lab, dns: DnsClient, pauses: list[float]) -> None:
    lab.faults.arm(Fault.CLOUD_LOCKED, times=2, target="/v1/zones/example.com/rrsets/api/A/actions/add_records")

    dns.claim(API, ["127.0.1.10"], ttl=60, owner="cp-1")

    assert lab.faults.fired(Fault.CLOUD_LOCKED) == 2
    assert dns.record_set(API).values == ("127.0.1.10",)  # type: ignore[union-attr]
    assert len(pauses) >= 2 and max(pauses) <= 0.05


def test_locked_for_longer_than_the_policy_allows_fails_with_the_code(lab: Lab, dns: DnsClient) -> None:
    lab.faults.arm(Fault.CLOUD_LOCKED, times=None, target="/v1/zones/example.com/rrsets")
    with pytest.raises(CloudError) as raised:
        dns.claim(API, ["127.0.1.10"], ttl=60, owner="cp-1")
    assert raised.value.code == "locked" and lab.faults.fired(Fault.CLOUD_LOCKED) == 9


@pytest.mark.slow
def test_rate_limited_change_waits_for_the_bucket_to_refill(
    lab: Lab, dns_with: Callable[[RetryPolicy], DnsClient]
) -> None:
    """The lab's rate-limit fault drains the bucket: requests succeed again as it refills (one per second)."""
    dns = dns_with(RetryPolicy(attempts=10, base=0.2, cap=0.5))
    lab.faults.arm(Fault.CLOUD_RATE_LIMIT, times=1, target="/v1/zones/example.com/rrsets/api/A/actions")

    dns.claim(API, ["127.0.1.10"], ttl=60, owner="cp-1")

    assert lab.faults.fired(Fault.CLOUD_RATE_LIMIT) == 1
    assert dns.record_set(API).values == ("127.0.1.10",)  # type: ignore[union-attr]


def test_concurrent_claims_by_three_nodes_all_survive(dns: DnsClient) -> None:
    failures: list[BaseException] = []

    def claim(node: int) -> None:
        try:
            dns.claim(API, [NODES[node]], ttl=60, owner=f"cp-{node}")
        except BaseException as error:  # reported below
            failures.append(error)

    threads = [threading.Thread(target=claim, args=(node,)) for node in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    got = dns.record_set(API)
    assert failures == []
    assert got is not None and sorted(got.values) == sorted(NODES) and got.ttl == 60


def test_two_owners_claiming_one_value_at_once_one_wins(dns: DnsClient) -> None:
    outcomes: dict[str, str] = {}

    def claim(owner: str) -> None:
        try:
            dns.claim(API, ["127.0.1.10"], ttl=60, owner=owner)
            outcomes[owner] = "claimed"
        except DnsConflictError as error:
            outcomes[owner] = str(error)

    threads = [threading.Thread(target=claim, args=(owner,)) for owner in ("cp-1", "cp-2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    got = dns.record_set(API)
    winner = got.owner_of("127.0.1.10") if got else None
    loser = "cp-2" if winner == "cp-1" else "cp-1"
    assert got is not None and got.values == ("127.0.1.10",) and outcomes[winner] == "claimed"  # type: ignore[index]
    assert "127.0.1.10" in outcomes[loser] and "claimed" in outcomes[loser]


# --- actions, against a scripted server (the lab applies a change at once) ---------------------------------------


def rrset_action(status: str, error: dict[str, str] | None = None) -> dict[str, Any]:
    resources = [{"id": 1, "type": "zone"}]
    started = "2026-08-20T10:00:00+00:00"
    return {"action": {"id": 7, "command": "add_rrset_records", "status": status, "progress": 0, "error": error,
                       "started": started, "finished": None, "resources": resources}}  # fmt: skip


def script_claim_until_the_action(http: ScriptedServer) -> None:
    """A new A set at api.example.com: not found, the zone exists, add_records answers an action still running."""
    http.answer(404, {"error": {"code": "not_found", "message": "rrset not found", "details": {}}})
    http.answer(200, {"zone": {"id": 1, "name": "example.com", "mode": "primary", "ttl": 3600}})
    http.answer(201, rrset_action("running"))
    http.answer(200, rrset_action("running"))


def scripted_dns(http: ScriptedServer, sleeper: Sleeper) -> DnsClient:
    return DnsClient("t" * 64, endpoint=http.url, sleep=sleeper)


def test_claim_waits_for_its_running_action_before_reading_back(http: ScriptedServer, sleeper: Sleeper) -> None:
    script_claim_until_the_action(http)
    http.answer(200, rrset_action("success"))
    record = {"value": "127.0.1.10", "comment": "managed by cp-1"}
    http.answer(200, {"rrset": {"id": "api/A", "name": "api", "type": "A", "ttl": 60, "records": [record], "zone": 1}})

    claim = scripted_dns(http, sleeper).claim(API, ["127.0.1.10"], ttl=60, owner="cp-1")

    assert claim.added == ("127.0.1.10",)
    assert [(seen.method, seen.path) for seen in http.seen] == [
        ("GET", "/zones/example.com/rrsets/api/A"),
        ("GET", "/zones/example.com"),
        ("POST", "/zones/example.com/rrsets/api/A/actions/add_records"),
        ("GET", "/actions/7"),
        ("GET", "/actions/7"),  # polled until success, and only then
        ("GET", "/zones/example.com/rrsets/api/A"),  # read back
    ]
    assert http.seen[2].json == {"records": [record], "ttl": 60}


def test_claim_whose_action_fails_names_the_action_and_the_record(http: ScriptedServer, sleeper: Sleeper) -> None:
    script_claim_until_the_action(http)
    http.answer(200, rrset_action("error", {"code": "action_failed", "message": "zone is being updated"}))

    with pytest.raises(CloudActionError) as raised:
        scripted_dns(http, sleeper).claim(API, ["127.0.1.10"], ttl=60, owner="cp-1")

    assert str(raised.value) == (
        "action add_rrset_records (7) failed: zone is being updated (action_failed), changing api.example.com A"
    )
    assert [seen.path for seen in http.seen[-2:]] == ["/actions/7", "/actions/7"]  # polled; nothing read back


# --- a CNAME shares its name with no other type ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "fix"),
    [
        (("A", "127.0.1.10"), ("CNAME", "lb.example.net."), "remove them, or put the CNAME at another name"),
        (("CNAME", "lb.example.net."), ("A", "127.0.1.10"), "remove the CNAME, or use another name"),
    ],
)
def test_claim_next_to_a_cname_conflict_names_the_types_the_fix_and_the_apis_reason(
    dns: DnsClient, first: tuple[str, str], second: tuple[str, str], fix: str
) -> None:
    dns.claim(RecordKey("example.com", "www", first[0]), [first[1]], ttl=60, owner="web")
    blocking = "A" if first[0] == "A" else "CNAME"

    with pytest.raises(DnsConflictError) as raised:
        dns.claim(RecordKey("example.com", "www", second[0]), [second[1]], ttl=60, owner="other")

    message = str(raised.value)
    assert message.startswith(f"www.example.com {second[0]}: the name already holds {blocking} records")
    assert f"(fix: {fix})" in message and "a CNAME cannot coexist" in message and "(invalid_input)" in message
    assert dns.record_set(RecordKey("example.com", "www", second[0])) is None


def test_a_refusal_next_to_other_types_but_no_cname_stays_the_apis_error(lab: Lab, dns: DnsClient) -> None:
    dns.claim(RecordKey("example.com", "api", "AAAA"), ["2001:db8::10"], ttl=60, owner="cp-1")
    lab.faults.arm(Fault.CLOUD_LOCKED, times=None, target="/v1/zones/example.com/rrsets/api/A/actions")
    with pytest.raises(CloudError) as raised:
        dns.claim(API, ["127.0.1.10"], ttl=60, owner="cp-1")
    assert raised.value.code == "locked"


def test_value_taken_by_another_writer_while_being_added_fails_with_the_fix(
    http: ScriptedServer, sleeper: Sleeper
) -> None:
    script_claim_until_the_action(http)
    http.answer(200, rrset_action("success"))
    record = {"value": "127.0.1.10", "comment": "managed by cp-2"}  # another writer re-tagged it meanwhile
    http.answer(200, {"rrset": {"id": "api/A", "name": "api", "type": "A", "ttl": 60, "records": [record], "zone": 1}})

    with pytest.raises(DnsConflictError) as raised:
        scripted_dns(http, sleeper).claim(API, ["127.0.1.10"], ttl=60, owner="cp-1")

    assert str(raised.value) == (
        "api.example.com A: 127.0.1.10 removed or claimed by someone else while being added (fix: find the other "
        "writer of this set - a stack, resource or person - give each its own values, and run up again)"
    )
