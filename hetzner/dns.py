"""DNS record sets in Hetzner Cloud zones, through the official `hcloud` zones client.

Pure helpers first: they normalise input the way the API requires (zone names lower case without the final
dot; record names lower case, relative to the zone, `@` for the apex; canonical IP addresses; TXT values as
quoted strings of at most 255 characters) and name the field and the fix when it cannot be done.

`DnsClient` then works on values, not whole sets: `claim` adds values with `add_records` and `release` removes
them with `remove_records`, so writers sharing a set (every control plane in the API name's A set) never
overwrite each other; the API deletes a set whose last value goes. A record's comment names the owner that
claimed it (`managed by <owner>`): a value present without an owner (made by hand, or by an interrupted run)
is adopted, a value another owner claimed is neither taken over nor removed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hcloud.actions import BoundAction
from hcloud.exp.zone import format_txt_record
from hcloud.zones import Zone, ZoneRecord, ZoneRRSet

from common.waiting import Progress, no_progress
from hetzner.cloud import CloudActionError, CloudClient, CloudError
from hetzner.errors import HetznerError

RECORD_TYPES = (
    *("A", "AAAA", "CAA", "CNAME", "DS", "HINFO", "HTTPS", "MX"),
    *("NS", "PTR", "RP", "SRV", "SVCB", "TLSA", "TXT"),
)
"""What a record set may hold: the API's types except SOA, which the API keeps itself."""
TTL_MIN, TTL_MAX = 60, 2147483647
OWNER_PREFIX = "managed by "
_LABEL = re.compile(r"^(\*|[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)$")
_ZONE_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_HOST_TYPES = ("CNAME", "NS", "PTR")


class DnsInputError(HetznerError):
    """A zone, name, type, value or TTL the DNS API would refuse."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


class DnsConflictError(HetznerError):
    """Values are claimed by another owner, vanished while being claimed, or a CNAME would share its name."""


# --- normalisation -------------------------------------------------------------------------------


def normalize_zone(zone: str) -> str:
    """`Example.COM.` -> `example.com`."""
    name = zone.strip().lower().removesuffix(".")
    if not name.isascii():
        raise DnsInputError("zone", f"{zone!r} is not ASCII (fix: write it in punycode, xn--...)")
    labels = name.split(".")
    if len(labels) < 2 or len(name) > 253 or not all(_ZONE_LABEL.match(label) for label in labels):
        raise DnsInputError("zone", f"{zone!r} is not a domain name (fix: a zone such as example.com)")
    return name


def relative_name(name: str, zone: str) -> str:
    """A record name as the API wants it: lower case, relative to `zone`, `@` for the apex.

    Accepts `@` or an empty name (the apex), a relative name (`api`), or a name within the zone written in
    full, with or without the final dot (`api.example.com.`). A full name ending in a dot must lie in the zone.
    """
    zone = normalize_zone(zone)
    full = name.strip().lower()
    if not full.isascii():
        raise DnsInputError("name", f"{name!r} is not ASCII (fix: write it in punycode, xn--...)")
    absolute = full.endswith(".")
    full = full.removesuffix(".")
    if full in ("", "@", zone):
        return "@"
    if full.endswith("." + zone):
        full = full[: -len(zone) - 1]
    elif absolute:
        raise DnsInputError("name", f"{name!r} is outside the zone {zone} (fix: a name ending in .{zone})")
    labels = full.split(".")
    if not all(_LABEL.match(label) for label in labels) or "*" in labels[1:]:
        reason = "labels of letters, digits, '-' and '_' (at most 63 each; '*' only first)"
        raise DnsInputError("name", f"{name!r} is not a record name (fix: {reason})")
    if len(full) + len(zone) + 1 > 253:
        raise DnsInputError("name", f"{name!r} makes a name longer than 253 characters")
    return full


def normalize_type(kind: str) -> str:
    upper = kind.strip().upper()
    if upper not in RECORD_TYPES:
        raise DnsInputError("type", f"{kind!r} is not a record type (fix: one of {', '.join(RECORD_TYPES)})")
    return upper


def normalize_value(kind: str, value: str) -> str:
    """A record value in the form the API stores: canonical addresses, quoted TXT, absolute host names.

    Host names (CNAME, NS, PTR, MX and SRV targets) containing a dot are taken as absolute and get the final
    dot; a single label stays relative to the zone.
    """
    text = value.strip()
    if not text or "\n" in text:
        raise DnsInputError("value", f"{value!r} is empty or spans lines")
    if kind in ("A", "AAAA"):
        return _address(kind, text)
    if kind == "TXT":
        return _txt(text)
    if kind in _HOST_TYPES:
        return _host(text)
    if kind == "MX":
        parts = text.split()
        if len(parts) != 2 or not _uint16(parts[0]):
            raise DnsInputError("value", f"{value!r} is not an MX value (fix: '<preference> <host>', e.g. 10 mx)")
        return f"{int(parts[0])} {_host(parts[1])}"
    if kind == "SRV":
        parts = text.split()
        if len(parts) != 4 or not all(_uint16(p) for p in parts[:3]):
            raise DnsInputError("value", f"{value!r} is not an SRV value (fix: '<priority> <weight> <port> <host>')")
        return " ".join([*(str(int(p)) for p in parts[:3]), _host(parts[3])])
    return text


def check_ttl(ttl: object) -> int | None:
    """A TTL in seconds within the API's range, or None for the zone's default."""
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl != int(ttl):
        raise DnsInputError("ttl", f"{ttl!r} is not a whole number of seconds")
    if not TTL_MIN <= int(ttl) <= TTL_MAX:
        raise DnsInputError("ttl", f"{int(ttl)} is out of range (fix: {TTL_MIN}..{TTL_MAX} seconds, or none)")
    return int(ttl)


def _address(kind: str, text: str) -> str:
    family = ipaddress.IPv4Address if kind == "A" else ipaddress.IPv6Address
    try:
        return str(family(text))
    except ValueError:
        pass
    other = "AAAA" if kind == "A" else "A"
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise DnsInputError("value", f"{text!r} is not an IPv{4 if kind == 'A' else 6} address") from None
    raise DnsInputError("value", f"{text!r} is an address for type {other}, not {kind} (fix: type {other})")


def _txt(text: str) -> str:
    """Quote a plain text (split into 255-character strings); check an already quoted one."""
    if not (text.startswith('"') and text.endswith('"')):
        return format_txt_record(text)
    chunks = _QUOTED.findall(text)
    if _QUOTED.sub("", text).strip() or any(len(re.sub(r"\\(.)", r"\1", chunk)) > 255 for chunk in chunks):
        raise DnsInputError("value", "quoted TXT must be strings of at most 255 characters (fix: give it unquoted)")
    return text


def _host(text: str) -> str:
    host = text.lower()
    bare = host.removesuffix(".")
    if not bare or not all(_LABEL.match(label) for label in bare.split(".")):
        raise DnsInputError("value", f"{text!r} is not a host name")
    return bare + "." if "." in bare else bare


def _uint16(text: str) -> bool:
    return text.isdigit() and int(text) < 65536


# --- record sets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordKey:
    """Which record set: zone, relative name, type (all normalised)."""

    zone: str
    name: str
    type: str

    @classmethod
    def of(cls, zone: str, name: str, kind: str) -> RecordKey:
        """Normalise and check the three parts."""
        zone = normalize_zone(zone)
        return cls(zone, relative_name(name, zone), normalize_type(kind))

    @property
    def fqdn(self) -> str:
        return self.zone if self.name == "@" else f"{self.name}.{self.zone}"

    def __str__(self) -> str:
        return f"{self.fqdn} {self.type}"


@dataclass(frozen=True)
class RecordSet:
    key: RecordKey
    ttl: int | None
    """None: the zone's default TTL."""
    comments: dict[str, str]
    """Value -> comment, in the API's order."""

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(self.comments)

    def owner_of(self, value: str) -> str | None:
        """Who claimed `value` (from its comment), or None when nobody did."""
        comment = self.comments.get(value) or ""
        return comment.removeprefix(OWNER_PREFIX) if comment.startswith(OWNER_PREFIX) else None


@dataclass(frozen=True)
class Claim:
    """What `claim` did."""

    added: tuple[str, ...]
    adopted: tuple[str, ...]
    """Values that were already there (made by hand, by an interrupted run, or by the previous owner)."""


class DnsClient(CloudClient):
    """Zones and record sets on CloudClient's transport.

    Its retry rules apply (423 `locked` and 429 retried with bounded backoff, within the deadline) and every
    change waits for its action.
    """

    def record_set(self, key: RecordKey) -> RecordSet | None:
        """The set, or None when the zone has none at that name and type (a missing zone is an error)."""
        zones = self._hcloud.zones
        try:
            found = self._call(f"GET {_path(key)}", lambda: zones.get_rrset(Zone(name=key.zone), key.name, key.type))
        except CloudError as error:
            if error.code != "not_found":
                raise
            self._call(f"GET /zones/{key.zone}", lambda: zones.get(key.zone))  # a missing zone stays an error
            return None
        comments = {record.value: record.comment or "" for record in found.records or []}
        return RecordSet(key, found.ttl, comments)

    def claim(
        self,
        key: RecordKey,
        values: Iterable[str],
        *,
        ttl: int | None,
        owner: str,
        previous_owner: str | None = None,
        progress: Progress = no_progress,
    ) -> Claim:
        """Make `values` present in the set, claimed by `owner`, and the set's TTL `ttl` (None: zone default).

        Missing values are added (creating the set with `ttl`); values without an owner, or claimed by
        `previous_owner`, are adopted and re-tagged. Raises DnsConflictError, changing nothing, when another
        owner claimed one of them.
        """
        wanted, tag = tuple(values), OWNER_PREFIX + owner
        current = self.record_set(key) or RecordSet(key, ttl, {})
        taken = [
            f"{v} (by {current.owner_of(v)})"
            for v in wanted
            if current.owner_of(v) not in (owner, previous_owner, None)
        ]
        if taken:
            raise DnsConflictError(
                f"{key}: {', '.join(taken)} already claimed (fix: give each resource its own values)"
            )
        added = tuple(v for v in wanted if v not in current.comments)
        adopted = tuple(v for v in wanted if v in current.comments and current.comments[v] != tag)
        zones = self._hcloud.zones
        if added:
            progress(f"{key}: adding {', '.join(added)}")
            create_ttl = None if current.comments else ttl  # an existing set's TTL is changed below
            records = [ZoneRecord(v, tag) for v in added]
            try:
                self._change(key, "add_records", lambda rrset: zones.add_rrset_records(rrset, records, ttl=create_ttl))
            except CloudError as error:
                conflict = None if current.comments else self._cname_conflict(key, error)  # new sets only
                raise conflict or error from None
        if adopted:
            progress(f"{key}: adopting {', '.join(adopted)} (already present)")
            records = [ZoneRecord(v, tag) for v in adopted]
            self._change(key, "update_records", lambda rrset: zones.update_rrset_records(rrset, records))
        final = self.record_set(key)
        lost = [v for v in wanted if final is None or final.owner_of(v) != owner]
        if final is None or lost:
            raise DnsConflictError(
                f"{key}: {', '.join(lost)} removed or claimed by someone else while being added (fix: find the "
                "other writer of this set - a stack, resource or person - give each its own values, and run up again)"
            )
        if final.ttl != ttl:
            self.change_ttl(key, ttl, progress=progress)
        return Claim(added, adopted)

    def release(self, key: RecordKey, values: Iterable[str], *, owner: str, progress: Progress = no_progress) -> None:
        """Remove those of `values` that `owner` claimed (or nobody did); the API deletes a set left empty.

        Values gone already, or claimed by another owner, are left alone.
        """
        current = self.record_set(key)
        mine = [v for v in values if current and v in current.comments and current.owner_of(v) in (owner, None)]
        if mine:
            progress(f"{key}: removing {', '.join(mine)}")
            records = [ZoneRecord(v) for v in mine]
            self._change(key, "remove_records", lambda rrset: self._hcloud.zones.remove_rrset_records(rrset, records))

    def change_ttl(self, key: RecordKey, ttl: int | None, *, progress: Progress = no_progress) -> None:
        """Set the set's TTL (None: the zone's default)."""
        progress(f"{key}: TTL {ttl if ttl is not None else 'of the zone'}")
        self._change(key, "change_ttl", lambda rrset: self._hcloud.zones.change_rrset_ttl(rrset, ttl))

    def _change(self, key: RecordKey, action: str, post: Callable[[ZoneRRSet], BoundAction]) -> None:
        """POST one RRSet action and wait for it; a failed action names the record set."""
        rrset = ZoneRRSet(name=key.name, type=key.type, zone=Zone(name=key.zone))
        try:
            self._act(f"POST {_path(key)}/actions/{action}", lambda: post(rrset))
        except CloudActionError as error:
            raise CloudActionError(error.command, error.action_id, f"{error.reason}, changing {key}") from None

    def _cname_conflict(self, key: RecordKey, refused: CloudError) -> DnsConflictError | None:
        """Why the API refused to create the set, when a CNAME would share its name with other types (RFC 1034).

        A resource cannot know this offline (the other sets belong to other resources or to nobody), so the name's
        sets are read only after the API refused; None when they do not explain the refusal (or cannot be read).
        """
        zones = self._hcloud.zones
        try:
            listed = self._call(
                f"GET /zones/{key.zone}/rrsets?name={key.name}",
                lambda: zones.get_rrset_all(Zone(name=key.zone), name=key.name),
            )
        except CloudError:
            return None
        others = sorted({rrset.type for rrset in listed if rrset.name == key.name and rrset.type} - {key.type})
        blocking = others if key.type == "CNAME" else [kind for kind in others if kind == "CNAME"]
        if not blocking:
            return None
        fix = (
            "remove them, or put the CNAME at another name"
            if key.type == "CNAME"
            else "remove the CNAME, or use another name"
        )
        return DnsConflictError(
            f"{key}: the name already holds {'/'.join(blocking)} records and a CNAME shares its name with no other "
            f"type (fix: {fix}); the API said: {refused.message} ({refused.code})"
        )


def _path(key: RecordKey) -> str:
    return f"/zones/{key.zone}/rrsets/{key.name}/{key.type}"
