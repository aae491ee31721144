"""DNS in the Cloud API: `/zones` and their RRSets (hetzner.md §3.2; Hetzner's OpenAPI descriptions).

A zone is created with an SOA and three NS records at `@`. Every change answers with an action and is
visible at once (the action then runs for the lab's action delay). RRSet names are lower case, relative
to the zone, `@` for the apex; TXT values are quoted strings of at most 255 characters; TTLs lie in
60..2147483647. `add_records` creates a missing RRSet, `remove_records` deletes an RRSet left empty,
`set_records` needs an existing one. Actions are named like the API's (`create_rrset`,
`add_rrset_records`, `remove_rrset_records`, `set_rrset_records`; the other RRSet commands follow that
pattern) and list the zone as their resource. Protected RRSets answer 423 protected; the lab's locked fault
makes any change answer 423 locked; secondary zones answer 422 incorrect_zone_mode to RRSet changes.

Lab choices where the documentation is silent: adding a value already present keeps it once; removing
an absent value is ignored; a CNAME next to other types at one name is 422 invalid_input; zone file
import is not implemented (422 unsupported_error).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lab.cloud.core import (
    Actions,
    CloudError,
    Ids,
    body,
    invalid_input,
    label_filter,
    not_found,
    paginate,
    register_action_routes,
    sort_items,
    timestamp,
    uniqueness_error,
)
from lab.cloud.ssh_keys import check_labels
from lab.delays import Delays
from lab.faults import Fault, Faults
from lab.httpserver import Request, Response, Router

TYPES = (
    "A",
    "AAAA",
    "CAA",
    "CNAME",
    "DS",
    "HINFO",
    "HTTPS",
    "MX",
    "NS",
    "PTR",
    "RP",
    "SOA",
    "SRV",
    "SVCB",
    "TLSA",
    "TXT",
)
ASSIGNED_NAMESERVERS = ("hydrogen.ns.hetzner.com.", "oxygen.ns.hetzner.com.", "helium.ns.hetzner.de.")
TTL_MIN, TTL_MAX = 60, 2147483647
_LABEL = r"[a-z0-9_*]([a-z0-9_-]*[a-z0-9_])?"
_RR_NAME = re.compile(rf"^(@|{_LABEL}(\.{_LABEL})*)$")
_ZONE_NAME = re.compile(r"^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z][a-z0-9-]*[a-z0-9]$")
_HOST = re.compile(r"^([A-Za-z0-9_*]([A-Za-z0-9_-]*[A-Za-z0-9])?\.)*[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9])?\.?$|^@$")
_TXT = re.compile(r'^("(?:[^"\\]|\\.){0,255}"\s*)+$')


@dataclass
class RRSet:
    name: str
    type: str
    records: list[dict[str, str]]
    ttl: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    protected: bool = False

    def to_dict(self, zone_id: int) -> dict[str, Any]:
        return {
            "id": f"{self.name}/{self.type}",
            "name": self.name,
            "type": self.type,
            "ttl": self.ttl,
            "labels": dict(self.labels),
            "protection": {"change": self.protected},
            "records": [dict(r) for r in self.records],
            "zone": zone_id,
        }


@dataclass
class Zone:
    id: int
    name: str
    mode: str
    ttl: int
    labels: dict[str, str] = field(default_factory=dict)
    primary_nameservers: list[dict[str, Any]] = field(default_factory=list)
    protected: bool = False
    created: float = field(default_factory=time.time)
    serial: int = 0
    rrsets: dict[tuple[str, str], RRSet] = field(default_factory=dict)

    def touch(self) -> None:
        """A change: the SOA serial goes up."""
        self.serial += 1
        soa = self.rrsets.get(("@", "SOA"))
        if soa is not None:
            value = f"{ASSIGNED_NAMESERVERS[0]} dns.hetzner.com. {self.serial} 86400 10800 3600000 3600"
            soa.records = [{"value": value, "comment": ""}]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "created": timestamp(self.created),
            "mode": self.mode,
            "primary_nameservers": list(self.primary_nameservers),
            "labels": dict(self.labels),
            "protection": {"delete": self.protected},
            "ttl": self.ttl,
            "status": "ok",
            "record_count": sum(len(r.records) for r in self.rrsets.values()),
            "authoritative_nameservers": {
                "assigned": list(ASSIGNED_NAMESERVERS),
                "delegated": [],
                "delegation_last_check": None,
                "delegation_status": "unknown",
            },
            "registrar": "other",
        }


Change = Callable[[Zone, RRSet | None, dict[str, Any], tuple[str, str]], None]
"""One RRSet action's effect: (zone, the RRSet or None, request body, (name, type))."""


@dataclass(frozen=True)
class NameRecords:
    """What a zone holds at one name (copies, safe to read without the lock)."""

    zone: Zone
    relative: str
    rrsets: list[RRSet]
    soa: RRSet | None


class Zones:
    """The project's DNS zones."""

    def __init__(self, ids: Ids, actions: Actions, delays: Delays, faults: Faults) -> None:
        self.ids, self.actions, self.delays, self.faults = ids, actions, delays, faults
        self.zones: dict[int, Zone] = {}
        self._lock = threading.RLock()

    def register(self, router: Router) -> None:
        register_action_routes(router, self.actions, "zone", "zones", "zone", lambda r: self._zone(r).id)
        router.add("GET", "/zones", self.list)
        router.add("POST", "/zones", self.create)
        router.add("GET", "/zones/{zone}", self.get)
        router.add("PUT", "/zones/{zone}", self.update)
        router.add("DELETE", "/zones/{zone}", self.delete)
        router.add("GET", "/zones/{zone}/zonefile", self.export_zonefile)
        router.add("POST", "/zones/{zone}/actions/change_ttl", self.change_zone_ttl)
        router.add("POST", "/zones/{zone}/actions/change_protection", self.change_zone_protection)
        router.add("POST", "/zones/{zone}/actions/change_primary_nameservers", self.change_primary_nameservers)
        router.add("POST", "/zones/{zone}/actions/import_zonefile", self.import_zonefile)
        router.add("GET", "/zones/{zone}/rrsets", self.list_rrsets)
        router.add("POST", "/zones/{zone}/rrsets", self.create_rrset)
        base = "/zones/{zone}/rrsets/{name}/{type}"
        router.add("GET", base, self.get_rrset)
        router.add("PUT", base, self.update_rrset)
        router.add("DELETE", base, self.delete_rrset)
        changes: dict[str, tuple[str, Change]] = {
            "add_records": ("add_rrset_records", self._add_records),
            "remove_records": ("remove_rrset_records", self._remove_records),
            "set_records": ("set_rrset_records", self._set_records),
            "update_records": ("update_rrset_records", self._update_records),
            "change_ttl": ("change_rrset_ttl", self._change_rrset_ttl),
            "change_protection": ("change_rrset_protection", self._change_rrset_protection),
        }
        for path, (command, change) in changes.items():
            router.add("POST", f"{base}/actions/{path}", self._rrset_action(command, change))

    def reset(self) -> None:
        with self._lock:
            self.zones.clear()

    def records_at(self, fqdn: str) -> NameRecords | None:
        """The RRSets at `fqdn` in the zone holding it (longest match), or None outside every zone."""
        with self._lock:
            matches = [z for z in self.zones.values() if fqdn == z.name or fqdn.endswith("." + z.name)]
            if not matches:
                return None
            zone = max(matches, key=lambda z: len(z.name))
            relative = "@" if fqdn == zone.name else fqdn[: -len(zone.name) - 1]
            rrsets = [_copy(r) for (name, _), r in zone.rrsets.items() if name == relative]
            soa = zone.rrsets.get(("@", "SOA"))
            return NameRecords(zone, relative, rrsets, None if soa is None else _copy(soa))

    # --- zones ------------------------------------------------------------------------------------

    def _zone(self, request: Request) -> Zone:
        ref = request.params["zone"]
        with self._lock:
            for zone in self.zones.values():
                if str(zone.id) == ref or zone.name == ref:
                    return zone
        raise not_found("zone")

    def _changing(self, request: Request) -> Zone:
        """The zone a change is asked for; 423 locked when the lab's locked fault is armed for this path."""
        zone = self._zone(request)
        if self.faults.take(Fault.CLOUD_LOCKED, request.path):
            raise CloudError(423, "locked", "zone is locked: another action is running")
        return zone

    def _action(self, command: str, zone: Zone) -> dict[str, Any]:
        return self.actions.start(command, [("zone", zone.id)], self.delays.action).to_dict()

    def list(self, request: Request) -> Response:
        name, mode = request.arg("name"), request.arg("mode")
        labels = label_filter(request.arg("label_selector"))
        with self._lock:
            items = [
                z.to_dict()
                for z in sorted(self.zones.values(), key=lambda z: z.id)
                if (name is None or z.name == name) and (mode is None or z.mode == mode) and labels(z.labels)
            ]
        return paginate(request, "zones", sort_items(items, request, ("id", "name", "created")))

    def create(self, request: Request) -> Response:
        data = body(request)
        name, mode = data.get("name"), data.get("mode")
        if not isinstance(name, str) or not _ZONE_NAME.match(name):
            raise invalid_input({"name": "must be a lower-case domain name without a trailing dot"})
        if mode not in ("primary", "secondary"):
            raise invalid_input({"mode": "must be primary or secondary"})
        ttl = _ttl(data.get("ttl", 3600), "ttl", allow_none=False)
        nameservers = data.get("primary_nameservers") or []
        if mode == "secondary" and not nameservers:
            raise invalid_input({"primary_nameservers": "are required for a secondary zone"})
        if data.get("zonefile"):
            raise CloudError(422, "unsupported_error", "zone file import is not supported by the lab")
        with self._lock:
            if any(z.name == name for z in self.zones.values()):
                raise uniqueness_error("zone name is already used", "name")
            zone = Zone(self.ids.next("zone"), name, mode, ttl, check_labels(data.get("labels")), list(nameservers))
            ns = [{"value": host, "comment": ""} for host in ASSIGNED_NAMESERVERS]
            zone.rrsets[("@", "NS")] = RRSet("@", "NS", ns)
            zone.rrsets[("@", "SOA")] = RRSet("@", "SOA", [])
            for item in data.get("rrsets") or []:
                rrset = self._new_rrset(zone, item)
                zone.rrsets[(rrset.name, rrset.type)] = rrset
            zone.touch()
            self.zones[zone.id] = zone
        return Response.json(201, {"zone": zone.to_dict(), "action": self._action("create_zone", zone)})

    def get(self, request: Request) -> Response:
        return Response.json(200, {"zone": self._zone(request).to_dict()})

    def update(self, request: Request) -> Response:
        zone, data = self._zone(request), body(request)
        if "labels" in data:
            zone.labels = check_labels(data["labels"])
        return Response.json(200, {"zone": zone.to_dict()})

    def delete(self, request: Request) -> Response:
        zone = self._changing(request)
        if zone.protected:
            raise CloudError(423, "protected", "zone is delete protected")
        with self._lock:
            self.zones.pop(zone.id, None)
        return Response.json(201, {"action": self._action("delete_zone", zone)})

    def export_zonefile(self, request: Request) -> Response:
        zone = self._zone(request)
        lines = [f"$ORIGIN {zone.name}.", f"$TTL {zone.ttl}"]
        for rrset in sorted(zone.rrsets.values(), key=lambda r: (r.name != "@", r.name, r.type)):
            ttl = "" if rrset.ttl is None else f"{rrset.ttl} "
            lines += [f"{rrset.name} {ttl}IN {rrset.type} {record['value']}" for record in rrset.records]
        return Response.json(200, {"zonefile": "\n".join(lines) + "\n"})

    def change_zone_ttl(self, request: Request) -> Response:
        zone, data = self._changing(request), body(request)
        zone.ttl = _ttl(data.get("ttl"), "ttl", allow_none=False)
        zone.touch()
        return Response.json(201, {"action": self._action("change_ttl", zone)})

    def change_zone_protection(self, request: Request) -> Response:
        zone, data = self._changing(request), body(request)
        if not isinstance(data.get("delete"), bool):
            raise invalid_input({"delete": "must be a boolean"})
        zone.protected = data["delete"]
        return Response.json(201, {"action": self._action("change_protection", zone)})

    def change_primary_nameservers(self, request: Request) -> Response:
        zone, data = self._changing(request), body(request)
        if zone.mode != "secondary":
            raise CloudError(422, "incorrect_zone_mode", "this operation is not supported for this zone's mode")
        zone.primary_nameservers = list(data.get("primary_nameservers") or [])
        return Response.json(201, {"action": self._action("change_primary_nameservers", zone)})

    def import_zonefile(self, request: Request) -> Response:
        self._changing(request)
        raise CloudError(422, "unsupported_error", "zone file import is not supported by the lab")

    # --- rrsets -----------------------------------------------------------------------------------

    def _new_rrset(self, zone: Zone, data: dict[str, Any]) -> RRSet:
        name, kind = _rr_name(zone, data.get("name")), data.get("type")
        if kind not in TYPES:
            raise invalid_input({"type": f"must be one of {', '.join(TYPES)}"})
        records = _records(kind, data.get("records"))
        _check_cname(zone, name, kind)
        ttl = _ttl(data.get("ttl"), "ttl", allow_none=True)
        return RRSet(name, kind, records, ttl, check_labels(data.get("labels")))

    def _rrset(self, zone: Zone, request: Request) -> RRSet:
        rrset = zone.rrsets.get((request.params["name"], request.params["type"]))
        if rrset is None:
            raise not_found("rrset")
        return rrset

    def list_rrsets(self, request: Request) -> Response:
        zone = self._zone(request)
        name, types = request.arg("name"), request.query.get("type")
        labels = label_filter(request.arg("label_selector"))
        with self._lock:
            items = [
                r.to_dict(zone.id)
                for r in sorted(zone.rrsets.values(), key=lambda r: (r.name, r.type))
                if (name is None or r.name == name) and (not types or r.type in types) and labels(r.labels)
            ]
        return paginate(request, "rrsets", sort_items(items, request, ("id", "name")))

    def create_rrset(self, request: Request) -> Response:
        zone, data = self._changing(request), body(request)
        _primary(zone)
        with self._lock:
            rrset = self._new_rrset(zone, data)
            if (rrset.name, rrset.type) in zone.rrsets:
                raise uniqueness_error("rrset with the same name and type already exists", "name")
            zone.rrsets[(rrset.name, rrset.type)] = rrset
            zone.touch()
        reply = {"rrset": rrset.to_dict(zone.id), "action": self._action("create_rrset", zone)}
        return Response.json(201, reply)

    def get_rrset(self, request: Request) -> Response:
        zone = self._zone(request)
        return Response.json(200, {"rrset": self._rrset(zone, request).to_dict(zone.id)})

    def update_rrset(self, request: Request) -> Response:
        zone, data = self._zone(request), body(request)
        rrset = self._rrset(zone, request)
        if "labels" in data:
            rrset.labels = check_labels(data["labels"])
        return Response.json(200, {"rrset": rrset.to_dict(zone.id)})

    def delete_rrset(self, request: Request) -> Response:
        zone = self._changing(request)
        _primary(zone)
        with self._lock:
            rrset = self._rrset(zone, request)
            if rrset.protected:
                raise CloudError(423, "protected", "rrset is change protected")
            del zone.rrsets[(rrset.name, rrset.type)]
            zone.touch()
        return Response.json(201, {"action": self._action("delete_rrset", zone)})

    def _rrset_action(self, command: str, change: Change) -> Callable[[Request], Response]:
        def handler(request: Request) -> Response:
            zone, data = self._changing(request), body(request)
            _primary(zone)
            key = (request.params["name"], request.params["type"])
            with self._lock:
                rrset = zone.rrsets.get(key)
                if rrset is not None and rrset.protected and command != "change_protection":
                    raise CloudError(423, "protected", "rrset is change protected")
                change(zone, rrset, data, key)
                zone.touch()
            return Response.json(201, {"action": self._action(command, zone)})

        return handler

    def _add_records(self, zone: Zone, rrset: RRSet | None, data: dict[str, Any], key: tuple[str, str]) -> None:
        name, kind = _rr_name(zone, key[0]), key[1]
        if kind not in TYPES:
            raise invalid_input({"type": f"must be one of {', '.join(TYPES)}"})
        records = _records(kind, data.get("records"))
        ttl = _ttl(data.get("ttl"), "ttl", allow_none=True)
        if rrset is None:
            _check_cname(zone, name, kind)
            zone.rrsets[key] = RRSet(name, kind, records, ttl)
            return
        if ttl is not None and rrset.ttl is not None and ttl != rrset.ttl:
            raise invalid_input({"ttl": "must equal the TTL of the existing RRSet"})
        present = {r["value"] for r in rrset.records}
        rrset.records += [r for r in records if r["value"] not in present]
        if rrset.ttl is None:
            rrset.ttl = ttl

    def _remove_records(self, zone: Zone, rrset: RRSet | None, data: dict[str, Any], key: tuple[str, str]) -> None:
        if rrset is None:
            raise not_found("rrset")
        gone = {r["value"] for r in _records(rrset.type, data.get("records"))}
        rrset.records = [r for r in rrset.records if r["value"] not in gone]
        if not rrset.records:
            del zone.rrsets[key]

    def _set_records(self, zone: Zone, rrset: RRSet | None, data: dict[str, Any], key: tuple[str, str]) -> None:
        if rrset is None:
            raise not_found("rrset")
        rrset.records = _records(rrset.type, data.get("records"))

    def _update_records(self, zone: Zone, rrset: RRSet | None, data: dict[str, Any], key: tuple[str, str]) -> None:
        if rrset is None:
            raise not_found("rrset")
        comments = {r["value"]: r.get("comment", "") for r in _records(rrset.type, data.get("records"))}
        if not set(comments) <= {r["value"] for r in rrset.records}:
            raise invalid_input({"records": "every value must already be in the RRSet"})
        rrset.records = [{**r, "comment": comments.get(r["value"], r["comment"])} for r in rrset.records]

    def _change_rrset_ttl(self, zone: Zone, rrset: RRSet | None, data: dict[str, Any], key: tuple[str, str]) -> None:
        if rrset is None:
            raise not_found("rrset")
        if "ttl" not in data:
            raise invalid_input({"ttl": "is required (null for the zone's default)"})
        rrset.ttl = _ttl(data["ttl"], "ttl", allow_none=True)

    def _change_rrset_protection(
        self, zone: Zone, rrset: RRSet | None, data: dict[str, Any], key: tuple[str, str]
    ) -> None:
        if rrset is None:
            raise not_found("rrset")
        if not isinstance(data.get("change"), bool):
            raise invalid_input({"change": "must be a boolean"})
        rrset.protected = data["change"]


def _copy(rrset: RRSet) -> RRSet:
    return dataclasses.replace(rrset, records=[dict(r) for r in rrset.records], labels=dict(rrset.labels))


def _primary(zone: Zone) -> None:
    if zone.mode != "primary":
        raise CloudError(422, "incorrect_zone_mode", "this operation is not supported for this zone's mode")


def _rr_name(zone: Zone, name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise invalid_input({"name": "is required"})
    if name != name.lower() or name.endswith(".") or not _RR_NAME.match(name):
        raise invalid_input(
            {"name": "must be lower case, relative to the zone, without a trailing dot ('@' for the apex)"}
        )
    if name == zone.name or name.endswith("." + zone.name):
        raise invalid_input({"name": "must not end with the zone name"})
    return name


def _ttl(value: Any, name: str, *, allow_none: bool) -> Any:
    if value is None and allow_none:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not TTL_MIN <= value <= TTL_MAX:
        raise invalid_input({name: f"must be an integer within {TTL_MIN}..{TTL_MAX}"})
    return value


def _records(kind: str, records: Any) -> list[dict[str, str]]:
    if not isinstance(records, list) or not records:
        raise invalid_input({"records": "must not be empty"})
    out, seen = [], set()
    for record in records:
        value = record.get("value") if isinstance(record, dict) else None
        if not isinstance(value, str) or not value:
            raise invalid_input({"records": "every record needs a value"})
        if value in seen:
            raise invalid_input({"records": f"duplicate value {value!r}"})
        _check_value(kind, value)
        seen.add(value)
        out.append({"value": value, "comment": str(record.get("comment") or "")})
    return out


def _check_value(kind: str, value: str) -> None:
    checks: dict[str, Callable[[str], bool]] = {
        "A": lambda v: _is_ip(v, ipaddress.IPv4Address),
        "AAAA": lambda v: _is_ip(v, ipaddress.IPv6Address),
        "CNAME": lambda v: bool(_HOST.match(v)),
        "NS": lambda v: bool(_HOST.match(v)),
        "PTR": lambda v: bool(_HOST.match(v)),
        "TXT": lambda v: bool(_TXT.match(v)),
        "MX": lambda v: len(v.split()) == 2 and v.split()[0].isdigit(),
        "SRV": lambda v: len(v.split()) == 4 and all(p.isdigit() for p in v.split()[:3]),
    }
    check = checks.get(kind)
    if check is not None and not check(value):
        raise invalid_input({"records": f"invalid {kind} value {value!r}"})


def _is_ip(value: str, kind: type) -> bool:
    try:
        return isinstance(ipaddress.ip_address(value), kind)
    except ValueError:
        return False


def _check_cname(zone: Zone, name: str, kind: str) -> None:
    others = {t for (n, t) in zone.rrsets if n == name}
    if (kind == "CNAME" and others - {"CNAME"}) or (kind != "CNAME" and "CNAME" in others):
        raise invalid_input({"type": "a CNAME cannot coexist with other records of the same name"})
