"""NodeStorage over a datacenter machine's disk files, so a lab Talos node's state survives power cycles.

As on a real disk, Talos adds its data partitions after the image's four on its first configured boot:
STATE (the machine config) and EPHEMERAL (here: whether etcd has data), both in the GPT where a rescue
system's `lsblk` sees them. Writing a new image over the disk (`dd` from rescue) replaces the table and so
forgets both; an upgrade rewrites the BOOT partition's image marker. META (the image's fourth partition) holds
Talos' key-value tags: it survives upgrades and STATE/EPHEMERAL wipes, and goes with a new image.
"""

from __future__ import annotations

import struct
import threading
import uuid
from collections.abc import Sequence
from typing import BinaryIO

from lab import gpt
from lab.disks import Disk, TalosInstall
from lab.images.raw import TalosImage, write_marker
from lab.talos.storage import BlockDevice

STATE_SIZE = 100 * gpt.MIB
_STATE_MAGIC = b"LAB-TALOS-STATE 1\n"
_EPHEMERAL_MAGIC = b"LAB-TALOS-EPHEMERAL 1\n"
_META_MAGIC = b"LAB-TALOS-META 1\n"
_META_TAG = struct.Struct("<BI")
_LENGTH = struct.Struct("<Q")
_TRANSPORTS = {"nvme": "nvme", "sata": "sata", "virtio": "virtio"}


class DiskStorage:
    """The node's view of a machine: all its disks, Talos on `system`, STATE/EPHEMERAL partitions there."""

    def __init__(self, disks: Sequence[Disk], system: Disk) -> None:
        self._disks, self._system = list(disks), system
        self._lock = threading.Lock()

    def devices(self) -> list[BlockDevice]:
        return [
            BlockDevice(
                name=disk.spec.name,
                size=disk.spec.size,
                model=disk.spec.model,
                serial=disk.spec.serial,
                wwid=disk.spec.wwn or "",
                transport=_TRANSPORTS.get(disk.spec.transport, disk.spec.transport),
                rotational=disk.spec.rotational,
                symlinks=tuple(f"/dev/disk/by-id/{name}" for name in disk.spec.by_id),
            )
            for disk in self._disks
        ]

    def boot_image(self) -> tuple[str, TalosImage] | None:
        with self._lock:
            content = self._system.inspect()
        return (self._system.spec.name, content.image) if isinstance(content, TalosInstall) else None

    def read_state(self) -> bytes | None:
        with self._lock, open(self._system.path, "rb") as f:
            partition = self._partition(f, "STATE")
            return _read_record(f, partition, _STATE_MAGIC) if partition else None

    def write_state(self, config: bytes | None) -> None:
        with self._lock, open(self._system.path, "r+b") as f:
            state, _ = self._data_partitions(f)
            _write_record(f, state, _STATE_MAGIC, config)

    def etcd_data(self) -> bool:
        with self._lock, open(self._system.path, "rb") as f:
            partition = self._partition(f, "EPHEMERAL")
            return bool(partition and _read_record(f, partition, _EPHEMERAL_MAGIC))

    def set_etcd_data(self, present: bool) -> None:
        with self._lock, open(self._system.path, "r+b") as f:
            _, ephemeral = self._data_partitions(f)
            _write_record(f, ephemeral, _EPHEMERAL_MAGIC, b"etcd" if present else None)

    def install(self, image: TalosImage) -> None:
        with self._lock, open(self._system.path, "r+b") as f:
            boot = self._partition(f, "BOOT")
            if boot is None:
                raise OSError(f"{self._system.path}: no BOOT partition to install Talos {image.version} to")
            write_marker(f, boot.offset, image)

    def wipe_system_disk(self) -> None:
        with self._lock:
            self._system.blank()

    def read_meta(self) -> dict[int, bytes]:
        with self._lock, open(self._system.path, "rb") as f:
            partition = self._partition(f, "META")
            record = _read_record(f, partition, _META_MAGIC) if partition else None
        return _unpack_tags(record or b"")

    def write_meta(self, tags: dict[int, bytes]) -> None:
        with self._lock, open(self._system.path, "r+b") as f:
            partition = self._partition(f, "META")
            if partition is None:
                raise OSError(f"{self._system.path}: no META partition: Talos is not installed")
            _write_record(f, partition, _META_MAGIC, _pack_tags(tags))

    def _partition(self, f: BinaryIO, name: str) -> gpt.Partition | None:
        table = gpt.read_gpt(f, self._system.spec.size)
        return table.by_name(name) if table else None

    def _data_partitions(self, f: BinaryIO) -> tuple[gpt.Partition, gpt.Partition]:
        """STATE and EPHEMERAL, created after the image's partitions when missing (Talos' first boot)."""
        size = self._system.spec.size
        table = gpt.read_gpt(f, size)
        if table is None:
            raise OSError(f"{self._system.path}: no partition table: Talos is not installed")
        state, ephemeral = table.by_name("STATE"), table.by_name("EPHEMERAL")
        if state and ephemeral:
            return state, ephemeral
        align = gpt.MIB // gpt.SECTOR
        start = -(-(max(p.last_lba for p in table.partitions) + 1) // align) * align
        last_usable = size // gpt.SECTOR - gpt.ENTRY_SECTORS - 2
        end = (last_usable + 1) // align * align - 1
        state_end = start + STATE_SIZE // gpt.SECTOR - 1
        if state_end + align >= end:
            raise OSError(f"{self._system.path}: the disk is too small for STATE and EPHEMERAL")
        number = max(p.number for p in table.partitions)
        seed = f"{table.disk_guid}/data"
        state = gpt.Partition(
            number + 1, "STATE", gpt.LINUX_DATA, uuid.uuid5(uuid.NAMESPACE_URL, seed + "/state"), start, state_end
        )
        ephemeral = gpt.Partition(
            number + 2,
            "EPHEMERAL",
            gpt.LINUX_DATA,
            uuid.uuid5(uuid.NAMESPACE_URL, seed + "/ephemeral"),
            state_end + 1,
            end,
        )
        gpt.write_gpt(f, size, [*table.partitions, state, ephemeral], table.disk_guid)
        for partition in (state, ephemeral):
            _write_record(f, partition, b"", None)
        return state, ephemeral


def _read_record(f: BinaryIO, partition: gpt.Partition, magic: bytes) -> bytes | None:
    f.seek(partition.offset)
    head = f.read(len(magic) + _LENGTH.size)
    if not head.startswith(magic) or len(head) < len(magic) + _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(head[len(magic) :])
    data = f.read(length)
    return data if len(data) == length else None


def _write_record(f: BinaryIO, partition: gpt.Partition, magic: bytes, data: bytes | None) -> None:
    f.seek(partition.offset)
    if data is None:
        f.write(bytes(gpt.SECTOR))
        return
    if len(magic) + _LENGTH.size + len(data) > partition.size:
        raise OSError(f"{partition.name}: {len(data)} bytes do not fit the partition")
    f.write(magic + _LENGTH.pack(len(data)) + data)


def _pack_tags(tags: dict[int, bytes]) -> bytes:
    return b"".join(_META_TAG.pack(tag, len(value)) + value for tag, value in sorted(tags.items()))


def _unpack_tags(data: bytes) -> dict[int, bytes]:
    tags, offset = {}, 0
    while offset + _META_TAG.size <= len(data):
        tag, length = _META_TAG.unpack_from(data, offset)
        offset += _META_TAG.size
        tags[tag] = data[offset : offset + length]
        offset += length
    return tags
