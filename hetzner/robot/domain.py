"""Robot webservice objects, parsed from the documented JSON shapes.

Robot's shapes flip types (`os` is a list while rescue is inactive and a string once active; `subnet` may be
null), so each `from_dict` accepts both and keeps only what callers use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ResetType = Literal["sw", "hw", "man", "power", "power_long"]


@dataclass(frozen=True)
class Server:
    """A dedicated server (`GET /server/{number}`)."""

    number: int
    name: str
    ip: str | None
    ipv6_net: str | None
    product: str
    dc: str
    status: str
    cancelled: bool

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Server:
        return cls(
            number=int(data["server_number"]),
            name=str(data.get("server_name") or ""),
            ip=data.get("server_ip"),
            ipv6_net=data.get("server_ipv6_net"),
            product=str(data.get("product") or ""),
            dc=str(data.get("dc") or ""),
            status=str(data.get("status") or ""),
            cancelled=bool(data.get("cancelled")),
        )


@dataclass(frozen=True)
class HostKey:
    """One SSH host key of a rescue system as Robot reports it (shape documented for orders only)."""

    fingerprint: str
    type: str = ""
    size: int | None = None

    @classmethod
    def from_value(cls, value: Any) -> HostKey | None:
        """Parse `{"key": {"fingerprint", "type", "size"}}`, a bare key dict or a fingerprint string."""
        if isinstance(value, str):
            return cls(fingerprint=value) if value else None
        if isinstance(value, dict):
            key = value.get("key", value)
            if isinstance(key, dict) and key.get("fingerprint"):
                size = key.get("size")
                return cls(str(key["fingerprint"]), str(key.get("type") or ""), int(size) if size else None)
        return None


@dataclass(frozen=True)
class Rescue:
    """The rescue boot configuration of a server (`/boot/{number}/rescue`)."""

    server_number: int
    active: bool
    os: str | None
    """The active OS, or None while inactive (Robot then lists the available ones)."""
    available_os: tuple[str, ...]
    authorized_keys: tuple[str, ...]
    """Fingerprints of the SSH keys the rescue system accepts."""
    host_keys: tuple[HostKey, ...]
    password: str | None = field(default=None, repr=False)
    """Root password of the activated rescue system: only in the activation answer. Secret."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rescue:
        os_value = data.get("os")
        keys = []
        for item in data.get("authorized_key") or ():
            key = item.get("key", item) if isinstance(item, dict) else {"fingerprint": item}
            if isinstance(key, dict) and key.get("fingerprint"):
                keys.append(str(key["fingerprint"]))
        host_keys = (HostKey.from_value(item) for item in data.get("host_key") or ())
        return cls(
            server_number=int(data["server_number"]),
            active=bool(data.get("active")),
            os=os_value if isinstance(os_value, str) else None,
            available_os=tuple(os_value) if isinstance(os_value, list) else (),
            authorized_keys=tuple(keys),
            host_keys=tuple(key for key in host_keys if key is not None),
            password=data.get("password") or None,
        )


@dataclass(frozen=True)
class ResetOptions:
    """Which reset types a server supports and whether it is running (`GET /reset/{number}`)."""

    server_number: int
    types: tuple[str, ...]
    operating_status: str | None
    """`running`, `shut off` or `not supported` (None when Robot does not say)."""

    @property
    def is_off(self) -> bool:
        return self.operating_status == "shut off"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResetOptions:
        types = data.get("type") or ()
        return cls(
            server_number=int(data["server_number"]),
            types=(types,) if isinstance(types, str) else tuple(types),
            operating_status=data.get("operating_status"),
        )


@dataclass(frozen=True)
class Key:
    """An SSH public key stored in Robot (`/key`); rescue activations name keys by `fingerprint`."""

    name: str
    fingerprint: str
    type: str
    size: int | None
    data: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Key:
        size = data.get("size")
        return cls(
            name=str(data.get("name") or ""),
            fingerprint=str(data["fingerprint"]),
            type=str(data.get("type") or ""),
            size=int(size) if size else None,
            data=str(data.get("data") or ""),
        )


@dataclass(frozen=True)
class IpAddress:
    """Details of one IPv4 address (`GET /ip/{ip}`): what a static network config needs."""

    ip: str
    gateway: str
    mask: int
    """Prefix length of the subnet (Robot sends an int here, unlike `server.subnet[].mask`)."""
    broadcast: str
    server_number: int | None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IpAddress:
        number = data.get("server_number")
        return cls(
            ip=str(data["ip"]),
            gateway=str(data.get("gateway") or ""),
            mask=int(data.get("mask") or 32),
            broadcast=str(data.get("broadcast") or ""),
            server_number=int(number) if number is not None else None,
        )
