"""A tiny authoritative DNS responder (UDP) for the zones in the lab's Cloud project.

Answers A, AAAA, CNAME, NS, PTR, MX, TXT and SOA queries (and ANY) from the live RRSets, authoritatively
(AA), with the RRSet's TTL or the zone's default; a name without records is NXDOMAIN, a name outside the
lab's zones REFUSED. No recursion, no TCP, no DNSSEC: enough for a real resolver to see what the API
holds, e.g. the round-robin addresses of a cluster's API name.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import struct
import threading
from collections.abc import Callable

from lab.cloud.zones import RRSet, Zone, Zones

TYPE_CODES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28}
ANY = 255
NOERROR, NXDOMAIN, NOTIMP, REFUSED = 0, 3, 4, 5
_HEADER = struct.Struct(">HHHHHH")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


class DnsResponder:
    """Serves `zones` on `host:port` (UDP) until stopped."""

    def __init__(self, zones: Zones, host: str, port: int = 53) -> None:
        self.zones = zones
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._socket.bind((host, port))
        except OSError:
            self._socket.close()
            raise
        self._socket.settimeout(0.2)
        self.address = self._socket.getsockname()[:2]
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"dns-{host}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._closing.set()
        self._thread.join(timeout=2)
        self._socket.close()

    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                query, client = self._socket.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = self.answer(query)
            if reply:
                self._socket.sendto(reply, client)

    def answer(self, query: bytes) -> bytes:
        """The reply to one query message (empty when the message cannot be parsed)."""
        try:
            ident, flags, qdcount, _, _, _ = _HEADER.unpack_from(query)
            name, offset = _read_name(query, _HEADER.size)
            qtype, _ = struct.unpack_from(">HH", query, offset)
        except (struct.error, IndexError, UnicodeDecodeError):
            return b""
        question = query[_HEADER.size : offset + 4]
        opcode, recursion = (flags >> 11) & 0xF, flags & 0x0100
        if opcode != 0 or qdcount != 1:
            return _HEADER.pack(ident, 0x8000 | recursion | NOTIMP, 0, 0, 0, 0)
        rcode, answers, authority = self._lookup(name.lower().rstrip("."), qtype)
        authoritative = 0x0400 if rcode != REFUSED else 0
        header = _HEADER.pack(ident, 0x8000 | authoritative | recursion | rcode, 1, len(answers), len(authority), 0)
        return header + question + b"".join(answers) + b"".join(authority)

    def _lookup(self, name: str, qtype: int) -> tuple[int, list[bytes], list[bytes]]:
        found = self.zones.records_at(name)
        if found is None:
            return REFUSED, [], []
        zone = found.zone
        authority = [] if found.soa is None else _records(zone, f"{zone.name}.", found.soa)
        if not found.rrsets:
            return NXDOMAIN, [], authority
        wanted = [r for r in found.rrsets if qtype == ANY or TYPE_CODES.get(r.type) == qtype]
        if not wanted:
            wanted = [r for r in found.rrsets if r.type == "CNAME"]
        answers = [record for r in wanted for record in _records(zone, f"{name}.", r)]
        return NOERROR, answers, ([] if answers else authority)


def _records(zone: Zone, owner: str, rrset: RRSet) -> list[bytes]:
    code = TYPE_CODES.get(rrset.type)
    if code is None:
        return []
    ttl = rrset.ttl if rrset.ttl is not None else zone.ttl
    out = []
    for record in rrset.records:
        rdata = _RDATA[rrset.type](record["value"], zone)
        out.append(_name(owner) + struct.pack(">HHIH", code, 1, ttl, len(rdata)) + rdata)
    return out


def _absolute(value: str, zone: Zone) -> str:
    if value == "@":
        return f"{zone.name}."
    return value if value.endswith(".") else f"{value}.{zone.name}."


def _name(fqdn: str) -> bytes:
    labels = [label for label in fqdn.rstrip(".").split(".") if label]
    return b"".join(bytes([len(label)]) + label.encode() for label in labels) + b"\0"


def _txt(value: str, zone: Zone) -> bytes:
    chunks = [m.group(1).replace('\\"', '"').replace("\\\\", "\\").encode() for m in _QUOTED.finditer(value)]
    return b"".join(bytes([len(c)]) + c for c in chunks)


def _mx(value: str, zone: Zone) -> bytes:
    preference, host = value.split()
    return struct.pack(">H", int(preference)) + _name(_absolute(host, zone))


def _soa(value: str, zone: Zone) -> bytes:
    mname, rname, *numbers = value.split()
    return _name(mname) + _name(rname) + struct.pack(">IIIII", *(int(n) for n in numbers))


_RDATA: dict[str, Callable[[str, Zone], bytes]] = {
    "A": lambda v, z: ipaddress.IPv4Address(v).packed,
    "AAAA": lambda v, z: ipaddress.IPv6Address(v).packed,
    "CNAME": lambda v, z: _name(_absolute(v, z)),
    "NS": lambda v, z: _name(_absolute(v, z)),
    "PTR": lambda v, z: _name(_absolute(v, z)),
    "MX": _mx,
    "TXT": _txt,
    "SOA": _soa,
}


def _read_name(message: bytes, offset: int) -> tuple[str, int]:
    """A (question) name, uncompressed as queries send it."""
    labels = []
    while True:
        length = message[offset]
        offset += 1
        if length == 0:
            return ".".join(labels), offset
        labels.append(message[offset : offset + length].decode("ascii"))
        offset += length
