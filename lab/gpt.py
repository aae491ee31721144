"""GUID partition tables: write them into image files and read them back from disks.

Standard library only: the rescue sandbox's `lsblk` shim uses it with the system interpreter.
Sector size is 512 bytes; 128 entries of 128 bytes, as every common tool writes them.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass
from typing import BinaryIO

SECTOR = 512
ENTRIES = 128
ENTRY_SIZE = 128
ENTRY_SECTORS = ENTRIES * ENTRY_SIZE // SECTOR
MIB = 1 << 20

EFI_SYSTEM = uuid.UUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
BIOS_BOOT = uuid.UUID("21686148-6449-6E6F-744E-656564454649")
LINUX_DATA = uuid.UUID("0FC63DAF-8483-4772-8E79-3D69D8477DE4")
LINUX_SWAP = uuid.UUID("0657FD6D-A4AB-43C4-84E5-0933C84B4F4F")
LEGACY_BIOS_BOOTABLE = 1 << 2

_HEADER = struct.Struct("<8sIIIIQQQQ16sQIII")
_ENTRY = struct.Struct("<16s16sQQQ72s")
_SIGNATURE = b"EFI PART"


@dataclass(frozen=True)
class PartitionSpec:
    """A partition to lay out: name, type and size in bytes."""

    name: str
    type_guid: uuid.UUID
    size: int
    attributes: int = 0


@dataclass(frozen=True)
class Partition:
    """A partition as it sits in the table."""

    number: int
    name: str
    type_guid: uuid.UUID
    guid: uuid.UUID
    first_lba: int
    last_lba: int
    attributes: int = 0

    @property
    def offset(self) -> int:
        return self.first_lba * SECTOR

    @property
    def size(self) -> int:
        return (self.last_lba - self.first_lba + 1) * SECTOR


@dataclass(frozen=True)
class PartitionTable:
    """A GPT read from a disk."""

    disk_guid: uuid.UUID
    partitions: tuple[Partition, ...]
    backup_lba: int
    backup_valid: bool
    """The backup header at `backup_lba` is intact: a cut-off image write destroys it."""

    def by_name(self, name: str) -> Partition | None:
        return next((p for p in self.partitions if p.name == name), None)


def layout(specs: list[PartitionSpec], *, seed: str, align: int = MIB) -> list[Partition]:
    """Place partitions one after another from 1 MiB on, each aligned; GUIDs derived from `seed`."""
    partitions = []
    lba = align // SECTOR
    for number, spec in enumerate(specs, start=1):
        sectors = -(-spec.size // SECTOR)
        guid = uuid.uuid5(uuid.NAMESPACE_URL, f"{seed}/{number}")
        partitions.append(Partition(number, spec.name, spec.type_guid, guid, lba, lba + sectors - 1, spec.attributes))
        lba += -(-sectors * SECTOR // align) * align // SECTOR
    return partitions


def table_size(partitions: list[Partition]) -> int:
    """Smallest disk size in bytes that holds `partitions` and the backup table, 1 MiB aligned."""
    end = (max(p.last_lba for p in partitions) + 1 + ENTRY_SECTORS + 1) * SECTOR
    return -(-end // MIB) * MIB


def write_gpt(f: BinaryIO, total_size: int, partitions: list[Partition], disk_guid: uuid.UUID) -> None:
    """Write a protective MBR, the primary and the backup GPT for a disk of `total_size` bytes."""
    last_lba = total_size // SECTOR - 1
    first_usable, last_usable = 2 + ENTRY_SECTORS, last_lba - ENTRY_SECTORS - 1
    for p in partitions:
        if p.first_lba < first_usable or p.last_lba > last_usable:
            raise ValueError(f"partition {p.number} ({p.name}) does not fit a {total_size}-byte disk")
    entries = b"".join(_pack_entry(p) for p in partitions).ljust(ENTRIES * ENTRY_SIZE, b"\0")
    entries_crc = zlib.crc32(entries)
    f.seek(0)
    f.write(_protective_mbr(last_lba))
    primary = _pack_header(1, last_lba, first_usable, last_usable, disk_guid, 2, entries_crc)
    f.seek(SECTOR)
    f.write(primary + entries)
    backup_entries_lba = last_lba - ENTRY_SECTORS
    f.seek(backup_entries_lba * SECTOR)
    f.write(entries)
    f.write(_pack_header(last_lba, 1, first_usable, last_usable, disk_guid, backup_entries_lba, entries_crc))


def read_gpt(f: BinaryIO, disk_size: int) -> PartitionTable | None:
    """The GPT of a disk, or None when there is no valid primary table."""
    header = _read_header(f, 1)
    if header is None:
        return None
    _, _, _, _, _, _, alternate, _, _, guid, entries_lba, count, entry_size, entries_crc = header
    if entry_size != ENTRY_SIZE or count > 1024:
        return None
    f.seek(entries_lba * SECTOR)
    entries = f.read(count * entry_size)
    if len(entries) != count * entry_size or zlib.crc32(entries) != entries_crc:
        return None
    partitions = []
    for number in range(1, count + 1):
        raw = entries[(number - 1) * entry_size : number * entry_size]
        type_guid, part_guid, first, last, attributes, name = _ENTRY.unpack(raw)
        if type_guid == bytes(16):
            continue
        label = name.decode("utf-16-le", "replace").split("\0", 1)[0]
        partitions.append(
            Partition(
                number, label, uuid.UUID(bytes_le=type_guid), uuid.UUID(bytes_le=part_guid), first, last, attributes
            )
        )
    backup = _read_header(f, alternate) if (alternate + 1) * SECTOR <= disk_size else None
    backup_valid = backup is not None and backup[5] == alternate
    return PartitionTable(uuid.UUID(bytes_le=guid), tuple(partitions), alternate, backup_valid)


def _read_header(f: BinaryIO, lba: int) -> tuple | None:
    f.seek(lba * SECTOR)
    raw = f.read(SECTOR)
    if len(raw) < _HEADER.size or raw[:8] != _SIGNATURE:
        return None
    fields = _HEADER.unpack(raw[: _HEADER.size])
    size, crc = fields[2], fields[3]
    if not _HEADER.size <= size <= SECTOR:
        return None
    blank = raw[:16] + b"\0\0\0\0" + raw[20:size]
    return fields if zlib.crc32(blank) == crc else None


def _pack_header(
    my_lba: int, alternate: int, first: int, last: int, guid: uuid.UUID, entries_lba: int, entries_crc: int
) -> bytes:
    fields = [_SIGNATURE, 0x00010000, _HEADER.size, 0, 0, my_lba, alternate, first, last, guid.bytes_le]
    fields += [entries_lba, ENTRIES, ENTRY_SIZE, entries_crc]
    raw = _HEADER.pack(*fields)
    raw = raw[:16] + struct.pack("<I", zlib.crc32(raw)) + raw[20:]
    return raw.ljust(SECTOR, b"\0")


def _pack_entry(p: Partition) -> bytes:
    name = p.name.encode("utf-16-le")[:72]
    return _ENTRY.pack(p.type_guid.bytes_le, p.guid.bytes_le, p.first_lba, p.last_lba, p.attributes, name)


def _protective_mbr(last_lba: int) -> bytes:
    sectors = min(last_lba, 0xFFFFFFFF)
    entry = struct.pack("<B3sB3sII", 0, b"\x00\x02\x00", 0xEE, b"\xff\xff\xff", 1, sectors)
    return bytes(446) + entry + bytes(48) + b"\x55\xaa"
