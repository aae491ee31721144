"""DnsRecord: one owner's values in a Hetzner DNS record set, e.g. one control plane's address in the API name's A set.

Each node owns its own value: creating adds it to the set (creating the set), deleting removes only it (the API deletes
the set when its last value goes), and values of other owners are never touched. A resource may also hold several
values, up to a whole set. Changes go through `hetzner.dns.DnsClient` (the rrset add_records/remove_records actions,
so concurrent writers all survive; every change awaited; 423/429 retried with bounded backoff). Each value's record
comment names its owner, so a value already present without an owner (made by hand, or by an interrupted run) is
adopted and a value claimed by another resource is refused.

The Cloud API token comes from stack config (`hcloudToken`, or the hcloud provider's `hcloud:token`; the endpoint
from `hcloudEndpoint` or `hcloud:endpoint`) in `configure()`, never pickled. `check` normalises and validates
offline; `diff` replaces on zone/name/type and updates values, TTL and owner in place; `read` reports drift (all
values gone: the resource is gone; another TTL or missing values: shown) and imports by id
(`zone/name/type/value` for one value, `zone/name/type` for every value of the set).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from common.waiting import Deadline, Progress
from hetzner.cloud import CLOUD_URL
from hetzner.dns import (
    RECORD_TYPES,
    Claim,
    DnsClient,
    DnsInputError,
    RecordKey,
    check_ttl,
    normalize_type,
    normalize_value,
    normalize_zone,
    relative_name,
)
from hetzner.errors import HetznerError
from providers.inputs import is_unknown

INPUTS = ("zone", "name", "type", "values", "ttl", "owner")
REPLACING = ("zone", "name", "type")
"""Inputs naming another record set: a change means a new resource."""
TIMEOUT = 300.0
"""Seconds one operation may take, retries and action waits included."""
T = TypeVar("T")
_REQUIRED = {"zone": "example.com", "name": "api (or @ for the apex)", "type": "A"}
"""Inputs without a default, with an example value for the fix."""


@dataclass
class DnsRecordArgs:
    """Inputs of one DnsRecord; every field may be a Pulumi Output."""

    zone: pulumi.Input[str]
    """The zone in the project, e.g. `example.com`."""
    name: pulumi.Input[str]
    """The record name: relative (`api`), in full (`api.example.com`) or `@` for the apex."""
    type: pulumi.Input[str]
    """A, AAAA, CNAME, TXT, MX, SRV, CAA, NS, PTR, ..."""
    value: pulumi.Input[str] | None = None
    """This resource's single value (e.g. one node's address); or give `values`."""
    values: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None
    """Several values owned together (up to a whole set)."""
    ttl: pulumi.Input[int] | None = None
    """Seconds, 60..2147483647, for the whole set; None: the zone's default."""
    owner: str | None = None
    """Written to each value's record comment (`managed by <owner>`); default `pulumi <stack>/<resource name>`."""

    def to_props(self, name: str) -> dict[str, Any]:
        if (self.value is None) == (self.values is None):
            raise ValueError(f"DnsRecord {name}: give exactly one of value and values")
        return {
            "zone": self.zone,
            "name": self.name,
            "type": self.type,
            "values": [self.value] if self.value is not None else self.values,
            "ttl": self.ttl,
            "owner": self.owner or f"pulumi {pulumi.get_stack()}/{name}",
        }


class DnsRecord(pulumi.dynamic.Resource, module="hetzner", name="DnsRecord"):
    """Values in a Hetzner DNS record set, owned by this resource."""

    fqdn: pulumi.Output[str]
    values: pulumi.Output[list[str]]
    ttl: pulumi.Output[int | None]
    adopted: pulumi.Output[list[str]]
    """Values that were present already when this resource claimed them."""

    def __init__(self, name: str, args: DnsRecordArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(DnsRecordProvider(), name, {**args.to_props(name), "fqdn": None, "adopted": None}, opts)


@dataclass(frozen=True)
class Target:
    """Checked inputs of one resource."""

    key: RecordKey
    values: tuple[str, ...]
    ttl: int | None
    owner: str

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> Target:
        key = RecordKey.of(props["zone"], props["name"], props["type"])
        values = tuple(normalize_value(key.type, str(value)) for value in props["values"])
        return cls(key, values, check_ttl(props.get("ttl")), str(props.get("owner") or ""))

    def resource_id(self) -> str:
        """`zone/name/type/value` for one value, `zone/name/type` for several."""
        parts = [self.key.zone, self.key.name, self.key.type, *self.values[:1]]
        return "/".join(parts if len(self.values) == 1 else parts[:3])

    def outputs(self, adopted: Sequence[str]) -> dict[str, Any]:
        inputs = {"zone": self.key.zone, "name": self.key.name, "type": self.key.type, "values": list(self.values)}
        return {**inputs, "ttl": self.ttl, "owner": self.owner, "fqdn": self.key.fqdn, "adopted": list(adopted)}


class DnsRecordProvider(ResourceProvider):
    """Claims and releases values through DnsClient. Thread-safe: no per-call state."""

    serialize_as_secret_always = False  # the token comes from configure(), nothing secret is captured
    token: str | None = None
    endpoint: str = CLOUD_URL

    def configure(self, req: ConfigureRequest) -> None:
        self.token = req.config.get("hcloudToken") or req.config.get("hcloud:token")
        self.endpoint = req.config.get("hcloudEndpoint") or req.config.get("hcloud:endpoint") or CLOUD_URL

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs, problems = _checked(news)
        if not self.token:
            fix = "pulumi config set --secret hcloudToken <a Cloud project token>, or set hcloud:token"
            problems.append(("hcloudToken", f"the Cloud API token is not in the stack config (fix: {fix})"))
        return CheckResult(inputs, [CheckFailure(name, reason) for name, reason in problems])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [key for key in REPLACING if _differs(olds.get(key), news.get(key))]
        changed = replaces or [key for key in INPUTS if _differs(olds.get(key), news.get(key))]
        return DiffResult(changes=bool(changed), replaces=replaces)

    def create(self, props: dict[str, Any]) -> CreateResult:
        target = Target.from_props(props)
        claim = self._run(target.owner, lambda dns, progress: _claim(dns, target, None, progress))
        return CreateResult(target.resource_id(), target.outputs(claim.adopted))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """The values still present and the set's TTL; gone when none is left. With no props: an import by id."""
        key, values, owner = _identity(id_, props)
        found = self._run(owner or id_, lambda dns, _progress: dns.record_set(key))
        present = tuple(v for v in values or (found.values if found else ()) if found and v in found.values)
        if found is None or not present:
            return ReadResult("", {})
        owner = owner or found.owner_of(present[0])
        outputs = Target(key, present, found.ttl, owner or "").outputs(props.get("adopted") or [])
        outputs["owner"] = owner  # None after an import of values nobody claimed: the program's owner claims them
        return ReadResult(id_, outputs, {name: outputs[name] for name in INPUTS})

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Claim the new values (and TTL, and owner), then release the values no longer wanted."""
        target, previous = Target.from_props(news), olds.get("owner")

        def change(dns: DnsClient, progress: Progress) -> Claim:
            claim = _claim(dns, target, previous, progress)
            dropped = [v for v in olds.get("values") or [] if v not in target.values]
            dns.release(target.key, dropped, owner=previous or target.owner, progress=progress)
            return claim

        return UpdateResult(target.outputs(self._run(target.owner, change).adopted))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Remove this resource's values (never another owner's); the set goes with its last value."""
        target = Target.from_props(props)
        self._run(
            target.owner,
            lambda dns, progress: dns.release(target.key, target.values, owner=target.owner, progress=progress),
        )

    def _run(self, who: str, work: Callable[[DnsClient, Progress], T]) -> T:
        """`work(client, progress)` with a client for this call only; library errors are prefixed with `who`."""
        dns = DnsClient(self.token or "", endpoint=self.endpoint, deadline=Deadline.after(TIMEOUT))
        try:
            return work(dns, _stderr(who))
        except HetznerError as error:
            raise RuntimeError(f"{who}: {error}") from None


def _claim(dns: DnsClient, target: Target, previous_owner: str | None, progress: Progress) -> Claim:
    values, ttl, owner = target.values, target.ttl, target.owner
    return dns.claim(target.key, values, ttl=ttl, owner=owner, previous_owner=previous_owner, progress=progress)


def _identity(id_: str, props: dict[str, Any]) -> tuple[RecordKey, tuple[str, ...], str | None]:
    """Record set, values and owner from the last outputs, or from the id alone (an import)."""
    if props.get("values"):
        key = RecordKey.of(props["zone"], props["name"], props["type"])
        return key, tuple(props["values"]), props.get("owner") or None
    parts = id_.split("/", 3)
    if len(parts) < 3:
        raise RuntimeError(f"import id {id_!r} is not zone/name/type[/value] (e.g. example.com/api/A/192.0.2.10)")
    try:
        key = RecordKey.of(*parts[:3])
        return key, tuple(normalize_value(key.type, value) for value in parts[3:]), None
    except DnsInputError as error:
        raise RuntimeError(f"import id {id_!r}: {error}") from None


def _checked(news: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Normalised inputs and (property, reason with the fix) for each bad one; unknown values are skipped."""
    inputs, problems = dict(news), []
    for name, example in _REQUIRED.items():
        if not is_unknown(news.get(name)) and not isinstance(news.get(name), str):
            problems.append((name, f"is required, as text (fix: set {name}, e.g. {example})"))
    normalisers: list[tuple[str, Callable[..., Any], tuple[Any, ...]]] = [
        ("zone", normalize_zone, (news.get("zone"),)),
        ("type", normalize_type, (news.get("type"),)),
        ("name", relative_name, (news.get("name"), news.get("zone"))),
        ("ttl", check_ttl, (news.get("ttl"),)),
    ]
    for name, normalise, args in normalisers:
        blocked = {name, "zone"} if name == "name" else {name}  # the name is checked against a valid zone
        if any(is_unknown(arg) for arg in args) or any(problem[0] in blocked for problem in problems):
            continue  # not known yet, or already reported
        try:
            inputs[name] = normalise(*args)
        except DnsInputError as error:
            problems.append((name, error.reason))
    problems += _check_values(inputs, news.get("values"))
    owner = news.get("owner")
    if not is_unknown(owner) and (not isinstance(owner, str) or not owner.strip() or len(owner) > 200):
        problems.append(("owner", "must be a non-empty text of at most 200 characters"))
    return inputs, problems


def _check_values(inputs: dict[str, Any], values: Any) -> list[tuple[str, str]]:
    """Check (and normalise in `inputs`) the values for the record type, once the type is known and valid."""
    if is_unknown(values):
        return []
    if not isinstance(values, list) or not values:
        return [("values", "at least one value is required (fix: set value or values)")]
    kind = inputs.get("type")
    if kind not in RECORD_TYPES:
        return []
    problems, normalised = [], []
    for index, value in enumerate(values):
        try:
            normalised.append(value if is_unknown(value) else normalize_value(kind, str(value)))
        except DnsInputError as error:
            problems.append((f"values[{index}]", error.reason))
    known = [v for v in normalised if not is_unknown(v)]
    if len(set(known)) != len(known):
        problems.append(("values", "lists a value twice (fix: each value once)"))
    if kind == "CNAME" and len(values) > 1:
        problems.append(("values", "a CNAME has exactly one value (fix: one target, or A/AAAA records)"))
    if kind == "CNAME" and inputs.get("name") == "@":
        problems.append(("name", "a CNAME cannot be at the zone apex, next to its SOA and NS (fix: A/AAAA records)"))
    if not problems:
        inputs["values"] = normalised
    return problems


def _differs(old: Any, new: Any) -> bool:
    if is_unknown(new) or (isinstance(new, list) and any(is_unknown(item) for item in new)):
        return True  # conservative during preview: a value not known yet may differ
    return old != new


def _stderr(who: str) -> Progress:
    def progress(line: str) -> None:
        print(f"{who}: {line}", file=sys.stderr, flush=True)

    return progress
