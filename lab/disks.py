"""Disks: sparse backing files with the identity a rescue system shows (model, serial, WWN, by-id names),
and what the firmware finds on them when it boots.

A disk holds a Talos install (a GPT with Talos' partitions, the BOOT marker and an intact backup header:
a write cut short leaves no backup header, so it never boots), an installed OS (a partition starting
with the lab's OS marker), or nothing bootable.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from lab import gpt
from lab.images.raw import TalosImage, read_marker

OS_MARKER = b"LAB-OS 1\n"


@dataclass(frozen=True)
class DiskSpec:
    """A disk's hardware identity, as `lsblk` and `/dev/disk/by-id` show it."""

    name: str
    """Kernel name: `nvme0n1`, `sda`."""
    size: int
    model: str
    serial: str
    wwn: str | None
    """lsblk's WWN column: `eui.…` for NVMe, `0x5…` for SATA, None for a virtual disk."""
    transport: str
    """`nvme`, `sata` or `virtio` (a Cloud server's QEMU disk)."""
    rotational: bool = False

    @property
    def by_id(self) -> tuple[str, ...]:
        """The `/dev/disk/by-id` names udev gives this disk."""
        model = self.model.replace(" ", "_")
        if self.transport == "nvme":
            names = [f"nvme-{model}_{self.serial}"] + ([f"nvme-{self.wwn}"] if self.wwn else [])
        elif self.transport == "sata":
            names = [f"ata-{model}_{self.serial}"] + ([f"wwn-{self.wwn}"] if self.wwn else [])
        else:
            names = [f"scsi-0QEMU_QEMU_HARDDISK_{self.serial}"]
        return tuple(names)

    @property
    def partition_prefix(self) -> str:
        """`nvme0n1` -> `nvme0n1p`, `sda` -> `sda`."""
        return f"{self.name}p" if self.name[-1].isdigit() else self.name


@dataclass(frozen=True)
class TalosInstall:
    """A disk holding a Talos image."""

    image: TalosImage


@dataclass(frozen=True)
class InstalledOs:
    """A disk holding some other installed system (the OS a server was delivered with)."""

    hostname: str


DiskContent = TalosInstall | InstalledOs | None


class Disk:
    """One disk of a machine: its spec and its backing file."""

    def __init__(self, spec: DiskSpec, path: Path) -> None:
        self.spec, self.path = spec, path

    def __repr__(self) -> str:
        return f"Disk({self.spec.name}, {self.spec.model}, {self.path})"

    def blank(self) -> None:
        """A new, all-zero disk (sparse)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "wb") as f:
            f.truncate(self.spec.size)

    def inspect(self) -> DiskContent:
        """What the firmware would boot from this disk."""
        with open(self.path, "rb") as f:
            table = gpt.read_gpt(f, self.spec.size)
            if table is None:
                return None
            boot = table.by_name("BOOT")
            if boot is not None:
                image = read_marker(f, boot.offset)
                return TalosInstall(image) if image is not None and table.backup_valid else None
            for partition in table.partitions:
                f.seek(partition.offset)
                sector = f.read(gpt.SECTOR)
                if sector.startswith(OS_MARKER):
                    fields = json.loads(sector[len(OS_MARKER) :].split(b"\n", 1)[0])
                    return InstalledOs(str(fields["hostname"]))
        return None

    def install_os(self, hostname: str) -> None:
        """Put an installed Linux on the disk: GPT with a swap and an ext4 root partition, both detectable."""
        swap_size = min(1 << 30, self.spec.size // 16)
        specs = [
            gpt.PartitionSpec("swap", gpt.LINUX_SWAP, swap_size),
            gpt.PartitionSpec("root", gpt.LINUX_DATA, self.spec.size - swap_size - 4 * gpt.MIB),
        ]
        partitions = gpt.layout(specs, seed=f"{self.path}/{hostname}")
        with open(self.path, "r+b") as f:
            gpt.write_gpt(f, self.spec.size, partitions, uuid.uuid5(uuid.NAMESPACE_URL, str(self.path)))
            _write_swap_signature(f, partitions[0])
            _copy_sparse(_ext4_template(), f, partitions[1].offset)
            f.seek(partitions[1].offset)
            f.write((OS_MARKER + json.dumps({"hostname": hostname}).encode() + b"\n").ljust(gpt.SECTOR, b"\0"))


def _write_swap_signature(f: BinaryIO, partition: gpt.Partition) -> None:
    """The header `mkswap` writes: version 1, last page, no bad pages, then the magic at the page's end."""
    pages = partition.size // 4096
    header = struct.pack("<III16s16s", 1, pages - 1, 0, uuid.uuid4().bytes, b"swap")
    f.seek(partition.offset + 1024)
    f.write(header)
    f.seek(partition.offset + 4096 - 10)
    f.write(b"SWAPSPACE2")


_template_lock = threading.Lock()
_template: bytes | None = None


def _ext4_template() -> bytes:
    """A small ext4 file system made once by the real `mkfs.ext4` (its blocks carry no data)."""
    global _template
    with _template_lock:
        if _template is None:
            mkfs = shutil.which("mkfs.ext4") or "/usr/sbin/mkfs.ext4"
            with tempfile.TemporaryDirectory(prefix="lab-ext4-") as tmp:
                image = os.path.join(tmp, "root.ext4")
                with open(image, "wb") as f:
                    f.truncate(8 * gpt.MIB)
                subprocess.run(
                    [mkfs, "-q", "-F", "-L", "root", "-E", "lazy_itable_init=1,lazy_journal_init=1", image],
                    check=True,
                    capture_output=True,
                )
                with open(image, "rb") as f:
                    _template = f.read()
        return _template


def _copy_sparse(data: bytes, f: BinaryIO, offset: int, block: int = 65536) -> None:
    """Write the non-zero blocks of `data` at `offset`: the target stays sparse."""
    zero = bytes(block)
    for start in range(0, len(data), block):
        chunk = data[start : start + block]
        if chunk != zero[: len(chunk)]:
            f.seek(offset + start)
            f.write(chunk)
