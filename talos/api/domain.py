"""Plain data the Talos API client returns, built from the reply messages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from talos.api.gen.machine import machine_pb2
from talos.api.gen.storage import storage_pb2

ApplyMode = Literal["reboot", "auto", "no-reboot", "staged", "try"]
"""talosctl's `apply-config --mode` names for ApplyConfigurationRequest.Mode."""

_MODES: dict[str, int] = {
    "reboot": machine_pb2.ApplyConfigurationRequest.REBOOT,
    "auto": machine_pb2.ApplyConfigurationRequest.AUTO,
    "no-reboot": machine_pb2.ApplyConfigurationRequest.NO_REBOOT,
    "staged": machine_pb2.ApplyConfigurationRequest.STAGED,
    "try": machine_pb2.ApplyConfigurationRequest.TRY,
}
_DISK_TYPES = {value: name.lower() for name, value in storage_pb2.Disk.DiskType.items()}


def apply_mode_value(mode: ApplyMode) -> int:
    """The wire value of an apply mode; a clear error for anything else."""
    if mode not in _MODES:
        raise ValueError(f"apply mode {mode!r} is not one of {', '.join(_MODES)} (fix: pick one of them)")
    return _MODES[mode]


def apply_mode_name(value: int) -> ApplyMode:
    """The talosctl name of a wire apply mode."""
    for name, number in _MODES.items():
        if number == value:
            return name  # type: ignore[return-value]
    raise ValueError(f"unknown apply mode value {value}")


@dataclass(frozen=True)
class NodeVersion:
    """What Version tells: the Talos release and whether the node has a machine config."""

    tag: str
    sha: str
    arch: str
    platform: str
    platform_mode: str
    configured: bool
    """Version.features is set: the node runs with a machine config (apid with mTLS), not in maintenance."""

    @classmethod
    def from_message(cls, message: Any) -> NodeVersion:
        return cls(
            tag=message.version.tag,
            sha=message.version.sha,
            arch=message.version.arch,
            platform=message.platform.name,
            platform_mode=message.platform.mode,
            configured=message.HasField("features"),
        )


@dataclass(frozen=True)
class ApplyResult:
    """How the node took a machine config: the mode it used and its own summary."""

    mode: ApplyMode
    details: str
    warnings: tuple[str, ...]

    @property
    def rebooting(self) -> bool:
        return self.mode == "reboot"


@dataclass(frozen=True)
class Disk:
    """A block device as storage.StorageService/Disks reports it."""

    dev_path: str
    size: int
    model: str
    serial: str
    wwid: str
    bus_path: str
    type: str
    """`ssd`, `hdd`, `nvme`, `sd`, `cd` or `unknown`."""
    system_disk: bool
    readonly: bool

    @classmethod
    def from_message(cls, disk: Any) -> Disk:
        return cls(
            dev_path=disk.device_name,
            size=disk.size,
            model=disk.model,
            serial=disk.serial,
            wwid=disk.wwid,
            bus_path=disk.bus_path,
            type=_DISK_TYPES.get(disk.type, "unknown"),
            system_disk=disk.system_disk,
            readonly=disk.readonly,
        )


@dataclass(frozen=True)
class ServiceStatus:
    """One system service from ServiceList."""

    id: str
    state: str
    """Initialized, Starting, Preparing, Waiting, Running, Stopping, Finished, Failed or Skipped."""
    healthy: bool | None
    """None when the service has no health check or its health is unknown yet."""
    message: str

    @classmethod
    def from_message(cls, info: Any) -> ServiceStatus:
        health = info.health
        healthy = None if health.unknown else health.healthy
        last = info.events.events[-1].msg if info.events.events else ""
        return cls(id=info.id, state=info.state, healthy=healthy, message=health.last_message or last)


@dataclass(frozen=True)
class EtcdMemberStatus:
    """The local etcd member's view from EtcdStatus."""

    member_id: int
    leader: int
    protocol_version: str
    is_learner: bool
    errors: tuple[str, ...]

    @classmethod
    def from_message(cls, status: Any) -> EtcdMemberStatus:
        return cls(
            member_id=status.member_id,
            leader=status.leader,
            protocol_version=status.protocol_version,
            is_learner=status.is_learner,
            errors=tuple(status.errors),
        )


@dataclass(frozen=True)
class EtcdMember:
    """One member of the etcd cluster from EtcdMemberList."""

    id: int
    hostname: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    is_learner: bool

    @classmethod
    def from_message(cls, member: Any) -> EtcdMember:
        return cls(
            id=member.id,
            hostname=member.hostname,
            peer_urls=tuple(member.peer_urls),
            client_urls=tuple(member.client_urls),
            is_learner=member.is_learner,
        )


@dataclass(frozen=True)
class MachineStatus:
    """MachineStatuses.runtime.talos.dev: the boot stage and whether the node is ready."""

    stage: str
    """`booting`, `installing`, `maintenance`, `running`, `rebooting`, `shutting down`, `resetting`, ..."""
    ready: bool
    unmet_conditions: tuple[str, ...]
