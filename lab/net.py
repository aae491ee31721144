"""Loopback addresses: one distinct 127.x.y.z per service and per server.

Linux routes all of 127.0.0.0/8 to `lo`, so any such address can be bound without configuration. A lab
instance owns one second octet (its "net"); several labs (parallel test sessions) coexist by claiming
different nets.
"""

from __future__ import annotations

import errno
import random
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address

SERVICES = ("robot", "cloud", "factory", "cdn", "dns")
"""Service hosts, in the order of their last octet on 127.<net>.0.x."""

_CLAIM_HOST_OCTET = 254
_CLAIM_PORT = 47999
ROBOT_PREFIX = 26
"""Dedicated servers sit in a /26, as Hetzner's do (hetzner.md §5): gateway .1, broadcast .63."""


@dataclass(frozen=True)
class LabNetwork:
    """The addresses of one lab instance."""

    net: int

    def __post_init__(self) -> None:
        if not 1 <= self.net <= 254:
            raise ValueError(f"lab net {self.net} is outside 1..254 (fix: pick another second octet)")

    def service(self, name: str) -> str:
        """Address of a service host (`robot`, `cloud`, `factory`, `cdn`, `dns`)."""
        return f"127.{self.net}.0.{SERVICES.index(name) + 1}"

    @property
    def robot_subnet(self) -> IPv4Network:
        return IPv4Network(f"127.{self.net}.1.0/{ROBOT_PREFIX}")

    @property
    def robot_gateway(self) -> str:
        return str(self.robot_subnet.network_address + 1)

    def robot_server(self, slot: int) -> str:
        """Main IPv4 of the dedicated server in `slot` (0-based)."""
        address = self.robot_subnet.network_address + 10 + slot
        if address >= self.robot_subnet.broadcast_address:
            raise ValueError(f"robot slot {slot} does not fit the /{ROBOT_PREFIX} (fix: fewer dedicated servers)")
        return str(address)

    def cloud_server(self, slot: int) -> str:
        """Public IPv4 of the Cloud server in `slot` (0-based)."""
        if not 0 <= slot < 240:
            raise ValueError(f"cloud slot {slot} is outside 0..239")
        return str(IPv4Address(f"127.{self.net}.2.10") + slot)

    def ipv6_net(self, kind: str, slot: int) -> str:
        """The /64 of a server (documentation prefix; never bound)."""
        block = slot if kind == "robot" else 0x100 + slot
        return str(IPv6Address(f"2001:db8:{self.net:x}:{block:x}::"))


def claim_network(preferred: int | None = None) -> tuple[LabNetwork, socket.socket]:
    """Claim a free net by binding a marker socket in it; keep the socket open for the lab's lifetime."""
    candidates = [preferred] if preferred is not None else random.sample(range(20, 250), 230)
    for net in candidates:
        marker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            marker.bind((f"127.{net}.0.{_CLAIM_HOST_OCTET}", _CLAIM_PORT))
        except OSError as err:
            marker.close()
            if err.errno != errno.EADDRINUSE:
                raise
            continue
        return LabNetwork(net), marker
    wanted = f"net {preferred}" if preferred is not None else "any net in 20..249"
    raise RuntimeError(f"no free lab network ({wanted} is taken by another lab; fix: stop it or choose another)")
