"""What a lab Talos node keeps across reboots: its block devices, the Talos it boots, STATE, EPHEMERAL and META.

`NodeStorage` is the node's whole view of its disks. `MemoryStorage` holds it in memory, for a node started
on its own (a fixture with a fake disk); the datacenter adapts its machines' disk files to the same shape.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field, replace
from typing import Protocol

from lab.images.raw import DEFAULT_SCHEMATIC, TalosImage

_INSTALLER = re.compile(
    r"^(?:ghcr\.io/siderolabs/installer"
    r"|factory\.talos\.dev/(?:metal-)?installer(?:-secureboot)?/(?P<schematic>[0-9a-f]{64}))"
    r":(?P<version>v\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)$"
)


@dataclass(frozen=True)
class BlockDevice:
    """One disk as Talos' block controllers see it (Disks.block.talos.dev)."""

    name: str
    """Kernel name: `sda`, `nvme0n1`, `vda`."""
    size: int
    model: str = ""
    serial: str = ""
    wwid: str = ""
    transport: str = "sata"
    """`nvme`, `sata`, `virtio`, `mmc`, `usb`."""
    rotational: bool = False
    bus_path: str = ""
    readonly: bool = False
    cdrom: bool = False
    symlinks: tuple[str, ...] = ()

    @property
    def dev_path(self) -> str:
        return f"/dev/{self.name}"


class NodeStorage(Protocol):
    """The persistent side of a lab Talos machine."""

    def devices(self) -> list[BlockDevice]:
        """Every block device of the machine."""
        ...

    def boot_image(self) -> tuple[str, TalosImage] | None:
        """(system disk kernel name, Talos image) the firmware boots, or None when nothing boots."""
        ...

    def read_state(self) -> bytes | None:
        """The machine config saved on the STATE partition, if any."""
        ...

    def write_state(self, config: bytes | None) -> None:
        """Save (or, None, wipe) the STATE partition's machine config."""
        ...

    def etcd_data(self) -> bool:
        """Whether EPHEMERAL holds an etcd data directory."""
        ...

    def set_etcd_data(self, present: bool) -> None: ...

    def install(self, image: TalosImage) -> None:
        """Write `image` onto the system disk's boot partitions (install or upgrade); STATE and EPHEMERAL stay."""
        ...

    def wipe_system_disk(self) -> None:
        """Wipe the whole system disk: nothing bootable, no STATE, no EPHEMERAL, no META."""
        ...

    def read_meta(self) -> dict[int, bytes]:
        """The META partition's keys (uint8 tags) and values; kept by upgrades and STATE/EPHEMERAL wipes."""
        ...

    def write_meta(self, tags: dict[int, bytes]) -> None:
        """Replace the META partition's keys and values."""
        ...


@dataclass
class MemoryStorage:
    """A fake machine's disks in memory: a Talos image on `system_disk`, partitions as plain fields."""

    image: TalosImage | None
    disks: tuple[BlockDevice, ...] = (BlockDevice("sda", 512 * 10**9, model="LAB SSD", serial="LAB0001"),)
    system_disk: str = "sda"
    state: bytes | None = field(default=None, repr=False)
    etcd: bool = False
    meta: dict[int, bytes] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def devices(self) -> list[BlockDevice]:
        return list(self.disks)

    def boot_image(self) -> tuple[str, TalosImage] | None:
        with self._lock:
            return (self.system_disk, self.image) if self.image is not None else None

    def read_state(self) -> bytes | None:
        with self._lock:
            return self.state

    def write_state(self, config: bytes | None) -> None:
        with self._lock:
            self.state = config

    def etcd_data(self) -> bool:
        with self._lock:
            return self.etcd

    def set_etcd_data(self, present: bool) -> None:
        with self._lock:
            self.etcd = present

    def install(self, image: TalosImage) -> None:
        with self._lock:
            self.image = image

    def wipe_system_disk(self) -> None:
        with self._lock:
            self.image, self.state, self.etcd = None, None, False
            self.meta = {}

    def read_meta(self) -> dict[int, bytes]:
        with self._lock:
            return dict(self.meta)

    def write_meta(self, tags: dict[int, bytes]) -> None:
        with self._lock:
            self.meta = dict(tags)


def image_from_installer(reference: str, current: TalosImage) -> TalosImage | None:
    """The Talos image an installer reference installs (ghcr.io or Image Factory), or None if unknown."""
    match = _INSTALLER.match(reference.strip())
    if match is None:
        return None
    return replace(current, version=match["version"], schematic=match["schematic"] or DEFAULT_SCHEMATIC)
