"""Synthetic Talos disk images: a real GPT with Talos' partitions plus a marker the lab's boot reads.

The layout follows a metal amd64 image (talos.md §9): EFI, BIOS (legacy bootable), BOOT, META, sized in
the same proportions as the real 4.2 GiB image but scaled to the configured size. The first sector of
BOOT carries the marker (schematic, version, platform, arch). A fraction of the image is pseudo-random
payload standing in for kernels and initramfs, so the compressed artifacts are not trivially small.
Images are written to sparse files in chunks: 1 GiB never sits in memory.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from lab import gpt

MARKER = b"LAB-TALOS-IMAGE 1\n"
DEFAULT_SCHEMATIC = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"
_CHUNK = 1 << 20
_REAL_EFI_MIB, _REAL_BOOT_MIB = 2101, 2000
MIN_SIZE = 16 * gpt.MIB


@dataclass(frozen=True)
class TalosImage:
    """What an image is: it decides what the machine boots."""

    version: str
    schematic: str = DEFAULT_SCHEMATIC
    platform: str = "metal"
    arch: str = "amd64"

    @property
    def filename_stem(self) -> str:
        return f"{self.platform}-{self.arch}"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class ImageProfile:
    """How big the synthetic raw image is, and which share of it is incompressible payload."""

    raw_size: int = 64 * gpt.MIB
    payload_fraction: float = 0.05

    def __post_init__(self) -> None:
        if self.raw_size < MIN_SIZE or self.raw_size % gpt.MIB:
            raise ValueError(f"image raw_size {self.raw_size} must be a multiple of 1 MiB and >= 16 MiB")
        if not 0 <= self.payload_fraction <= 0.5:
            raise ValueError(f"image payload_fraction {self.payload_fraction} must be within 0..0.5")


def talos_partitions(image: TalosImage, raw_size: int) -> list[gpt.Partition]:
    """Talos' four partitions, EFI and BOOT scaled so the table fills `raw_size`."""
    room = raw_size // gpt.MIB - 5
    efi = room * _REAL_EFI_MIB // (_REAL_EFI_MIB + _REAL_BOOT_MIB)
    specs = [
        gpt.PartitionSpec("EFI", gpt.EFI_SYSTEM, efi * gpt.MIB),
        gpt.PartitionSpec("BIOS", gpt.BIOS_BOOT, gpt.MIB, gpt.LEGACY_BIOS_BOOTABLE),
        gpt.PartitionSpec("BOOT", gpt.LINUX_DATA, (room - efi) * gpt.MIB),
        gpt.PartitionSpec("META", gpt.LINUX_DATA, gpt.MIB),
    ]
    return gpt.layout(specs, seed=json.dumps(image.to_dict(), sort_keys=True))


def write_raw_image(path: Path, image: TalosImage, profile: ImageProfile) -> None:
    """Write the raw image to `path` (sparse), chunk by chunk."""
    partitions = talos_partitions(image, profile.raw_size)
    seed = json.dumps(image.to_dict(), sort_keys=True)
    rng = random.Random(seed)
    with open(path, "wb") as f:
        f.truncate(profile.raw_size)
        gpt.write_gpt(f, profile.raw_size, partitions, uuid.uuid5(uuid.NAMESPACE_URL, seed))
        efi, boot = partitions[0], partitions[2]
        payload = int(profile.raw_size * profile.payload_fraction)
        _write_payload(f, rng, efi.offset, min(payload // 2, efi.size))
        _write_payload(f, rng, boot.offset + gpt.SECTOR, min(payload - payload // 2, boot.size - gpt.SECTOR))
        write_marker(f, boot.offset, image)


def write_marker(f: BinaryIO, offset: int, image: TalosImage) -> None:
    """Write the boot marker sector at `offset` (the start of BOOT)."""
    body = MARKER + json.dumps(image.to_dict(), sort_keys=True).encode() + b"\n"
    f.seek(offset)
    f.write(body.ljust(gpt.SECTOR, b"\0"))


def read_marker(f: BinaryIO, offset: int) -> TalosImage | None:
    """The image a BOOT partition starting at `offset` belongs to, or None."""
    f.seek(offset)
    sector = f.read(gpt.SECTOR)
    if not sector.startswith(MARKER):
        return None
    try:
        fields = json.loads(sector[len(MARKER) :].split(b"\n", 1)[0])
        return TalosImage(**{k: str(fields[k]) for k in ("version", "schematic", "platform", "arch")})
    except (ValueError, KeyError, TypeError):
        return None


def _write_payload(f: BinaryIO, rng: random.Random, offset: int, size: int) -> None:
    f.seek(offset)
    while size > 0:
        chunk = min(size, _CHUNK)
        f.write(rng.randbytes(chunk))
        size -= chunk
