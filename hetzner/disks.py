"""Disk inventory of a rescue system and the selector that picks the one install disk.

Pure data and functions: `parse_inventory` reads what `INVENTORY_COMMAND` prints in the rescue system,
`select_install_disk` resolves a `DiskSelector` to exactly one disk, `check_wipe` applies the wipe policy.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from hetzner.errors import HetznerError

_INVENTORY_SEPARATOR = "--- by-id ---"
INVENTORY_COMMAND = (
    "lsblk --json --bytes --tree --output NAME,PATH,TYPE,SIZE,MODEL,SERIAL,WWN,FSTYPE,PTTYPE,PARTLABEL,LABEL,MOUNTPOINT"
    f" && echo '{_INVENTORY_SEPARATOR}'"
    " && for link in /dev/disk/by-id/*; do"
    ' [ -L "$link" ] && printf "%s %s\\n" "$link" "$(readlink -f "$link")"; done; true'
)
"""Prints lsblk's tree as JSON, then one `by-id-link target` line per /dev/disk/by-id entry."""

TALOS_PARTITION_LABELS = frozenset({"EFI", "BIOS", "BOOT", "META", "STATE", "EPHEMERAL"})
_BY_ID_PREFERENCE = ("wwn-", "nvme-eui.", "nvme-", "ata-", "scsi-")
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}
_SIZE = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[kmgtp]?)(?P<binary>i?)b?\s*$", re.IGNORECASE)


class DiskError(HetznerError):
    """The install disk cannot be chosen or must not be written."""


class WipePolicy(StrEnum):
    """What may be overwritten on the install disk."""

    REFUSE = "refuse"
    """Only a disk without partitions or filesystems (the default)."""
    TALOS = "talos"
    """Also a disk that holds only Talos' own partitions (a reinstall)."""
    ANY = "any"
    """Whatever the disk holds."""


@dataclass(frozen=True)
class Partition:
    name: str
    size: int
    fstype: str | None
    partlabel: str | None
    label: str | None
    mountpoint: str | None


@dataclass(frozen=True)
class Disk:
    """One whole disk seen by the rescue system."""

    name: str
    path: str
    size: int
    model: str | None
    serial: str | None
    wwn: str | None
    by_id: str | None
    """The preferred stable /dev/disk/by-id path (WWN first), which the image is written to."""
    by_id_links: tuple[str, ...]
    fstype: str | None
    """A filesystem or RAID signature on the whole disk."""
    pttype: str | None
    partitions: tuple[Partition, ...]
    holders: tuple[str, ...]
    """Devices built on the disk or its partitions (RAID arrays, LVM volumes): `md0`, `vg-root`."""
    mountpoint: str | None

    @property
    def holds_data(self) -> bool:
        """Partitions or a filesystem signature: something the default wipe policy refuses to overwrite."""
        return bool(self.partitions or self.fstype)

    @property
    def holds_only_talos(self) -> bool:
        labels = {p.partlabel or p.label for p in self.partitions}
        return bool(self.partitions) and not self.fstype and labels <= TALOS_PARTITION_LABELS

    @property
    def mounted(self) -> tuple[str, ...]:
        points = [self.mountpoint, *(p.mountpoint for p in self.partitions)]
        return tuple(point for point in points if point)

    def describe(self) -> str:
        """One line naming the disk for error messages and progress: path, size, model, serial, WWN, contents."""
        parts = [self.by_id or self.path, format_size(self.size)]
        parts += [f"{label} {value}" for label, value in self.identity() if value and label != "by-id"]
        contents = [f"{len(self.partitions)} partition(s)"] if self.partitions else []
        contents += [f"{self.fstype} signature"] if self.fstype else []
        contents += [f"in use by {', '.join(self.holders)}"] if self.holders else []
        return " ".join(parts) + (f" [{'; '.join(contents)}]" if contents else " [empty]")

    def identity(self) -> list[tuple[str, str | None]]:
        return [("model", self.model), ("serial", self.serial), ("wwn", self.wwn), ("by-id", self.by_id)]


@dataclass(frozen=True)
class DiskSelector:
    """Which disk to install on; every given criterion must match, and exactly one disk may match."""

    wwn: str | None = None
    serial: str | None = None
    model: str | None = None
    """A glob (`SAMSUNG MZ7*`) matched against the model reported by the disk."""
    min_size: int | None = None
    max_size: int | None = None
    by_id: str | None = None
    """A /dev/disk/by-id link name or path."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiskSelector:
        """Build from provider inputs (`minSize`/`maxSize` may be byte counts or strings like `400GB`)."""
        return cls(
            wwn=_text(data.get("wwn")),
            serial=_text(data.get("serial")),
            model=_text(data.get("model")),
            min_size=parse_size(data["minSize"]) if data.get("minSize") is not None else None,
            max_size=parse_size(data["maxSize"]) if data.get("maxSize") is not None else None,
            by_id=_text(data.get("byId")),
        )

    def matches(self, disk: Disk) -> bool:
        links = {link.rsplit("/", 1)[-1] for link in disk.by_id_links}
        return all(
            (
                self.wwn is None or (disk.wwn is not None and _same_wwn(self.wwn, disk.wwn)),
                self.serial is None or disk.serial == self.serial,
                self.model is None or fnmatch.fnmatchcase(disk.model or "", self.model),
                self.min_size is None or disk.size >= self.min_size,
                self.max_size is None or disk.size <= self.max_size,
                self.by_id is None or self.by_id.rsplit("/", 1)[-1] in links,
            )
        )

    def describe(self) -> str:
        given = {
            "wwn": self.wwn,
            "serial": self.serial,
            "model": self.model,
            "minSize": format_size(self.min_size) if self.min_size is not None else None,
            "maxSize": format_size(self.max_size) if self.max_size is not None else None,
            "byId": self.by_id,
        }
        text = ", ".join(f"{key}={value}" for key, value in given.items() if value is not None)
        return f"selector {{{text}}}" if text else "an empty selector (any disk)"


def validate_selector(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Offline checks of selector inputs: (field, reason with the fix) for each problem."""
    known = {"wwn", "serial", "model", "minSize", "maxSize", "byId"}
    fix = f"fix: use one of {', '.join(sorted(known))}"
    problems = [(key, f"unknown selector field ({fix})") for key in data if key not in known]
    sizes: dict[str, int] = {}
    for key in ("minSize", "maxSize"):
        if data.get(key) is None:
            continue
        try:
            sizes[key] = parse_size(data[key])
        except ValueError as error:
            problems.append((key, str(error)))
    if len(sizes) == 2 and sizes["minSize"] > sizes["maxSize"]:
        problems.append(("maxSize", "is smaller than minSize (fix: swap them or widen the range)"))
    wwn = data.get("wwn")
    if wwn is not None and not re.fullmatch(r"(0x)?[0-9a-fA-F]{8,32}|(eui|naa|nvme)\.[0-9a-zA-Z.-]+", str(wwn)):
        fix = "fix: copy it from `lsblk -o NAME,WWN`, e.g. 0x5002538e40a1b2c3"
        problems.append(("wwn", f"{wwn!r} is not a WWN ({fix})"))
    by_id = data.get("byId")
    if by_id is not None and (not str(by_id) or ("/" in str(by_id) and not str(by_id).startswith("/dev/disk/by-id/"))):
        problems.append(("byId", f"{by_id!r} is not a /dev/disk/by-id link (fix: give the link name or its full path)"))
    return problems


def parse_size(value: Any) -> int:
    """Bytes from an int or a string like `480GB`, `1.5TB`, `2TiB` (decimal units; `i` for binary)."""
    if isinstance(value, bool):
        raise ValueError(f"size {value!r} is not a number of bytes or a size like '480GB'")
    if isinstance(value, (int, float)):
        if value < 0 or value != int(value):
            raise ValueError(f"size {value!r} must be a whole number of bytes >= 0")
        return int(value)
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"size {value!r} is not a number of bytes or a size like '480GB' or '2TiB'")
    unit = match["unit"].lower()
    factor = 1024 ** ("kmgtp".index(unit) + 1) if match["binary"] and unit else _UNITS[unit]
    return int(float(match["number"]) * factor)


def format_size(size: int) -> str:
    """Decimal size as disks are sold: `480.1GB`, `2.0TB`."""
    for unit, factor in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6)):
        if size >= factor:
            return f"{size / factor:.1f}{unit}"
    return f"{size}B"


def parse_inventory(output: str) -> list[Disk]:
    """The whole disks in the output of INVENTORY_COMMAND, sorted by device name."""
    lsblk_text, _, by_id_text = output.partition(_INVENTORY_SEPARATOR)
    try:
        devices = json.loads(lsblk_text)["blockdevices"]
    except (ValueError, KeyError, TypeError) as error:
        raise DiskError(f"cannot read the disk inventory from lsblk: {error}") from None
    links: dict[str, list[str]] = {}
    for line in by_id_text.splitlines():
        link, _, target = line.strip().partition(" ")
        if link and target:
            links.setdefault(target, []).append(link)
    disks = [_disk(device, links) for device in devices if device.get("type") == "disk"]
    return sorted(disks, key=lambda disk: disk.name)


def select_install_disk(disks: list[Disk], selector: DiskSelector) -> Disk:
    """The one disk the selector matches; zero or several matches raise DiskError listing every disk."""
    matching = [disk for disk in disks if selector.matches(disk)]
    if len(matching) == 1:
        return matching[0]
    listing = "\n".join(f"  - {disk.describe()}" for disk in disks) or "  (no disks found)"
    if not matching:
        problem = f"no disk matches {selector.describe()}"
        fix = "fix: adjust the selector to one of the disks below"
    else:
        problem = f"{len(matching)} disks match {selector.describe()}"
        fix = "fix: narrow the selector (wwn or serial pick exactly one disk)"
    raise DiskError(f"{problem} ({fix}); disks:\n{listing}")


def check_wipe(disk: Disk, policy: WipePolicy, *, resumed: bool = False) -> None:
    """Raise DiskError when the policy forbids overwriting what the disk holds, or when it is mounted.

    `resumed`: this run already began writing the disk, so Talos partitions on it are its own and may go.
    """
    if disk.mounted:
        raise DiskError(f"{disk.describe()} is mounted at {', '.join(disk.mounted)} (fix: unmount it in rescue)")
    if not disk.holds_data or policy is WipePolicy.ANY:
        return
    if (policy is WipePolicy.TALOS or resumed) and disk.holds_only_talos:
        return
    allowed = "only Talos partitions may be replaced" if policy is WipePolicy.TALOS else "it must be empty"
    raise DiskError(
        f"refusing to overwrite {disk.describe()}: it holds data and {allowed} under wipe policy {policy.value!r}"
        " (fix: pick an empty disk with the selector, or set wipe to 'any' to overwrite it)"
    )


def _disk(device: dict[str, Any], links: dict[str, list[str]]) -> Disk:
    path = str(device.get("path") or f"/dev/{device['name']}")
    own_links = tuple(sorted(link for link in links.get(path, []) if not re.search(r"-part\d+$", link)))
    partitions, holders = [], []
    for child in device.get("children") or ():
        if child.get("type") == "part":
            partitions.append(_partition(child))
            holders += [str(grandchild["name"]) for grandchild in child.get("children") or ()]
        else:
            holders.append(str(child["name"]))
    return Disk(
        name=str(device["name"]),
        path=path,
        size=int(device.get("size") or 0),
        model=_text(device.get("model")),
        serial=_text(device.get("serial")),
        wwn=_text(device.get("wwn")),
        by_id=_preferred_link(own_links),
        by_id_links=own_links,
        fstype=_text(device.get("fstype")),
        pttype=_text(device.get("pttype")),
        partitions=tuple(partitions),
        holders=tuple(holders),
        mountpoint=_text(device.get("mountpoint")),
    )


def _partition(child: dict[str, Any]) -> Partition:
    return Partition(
        name=str(child["name"]),
        size=int(child.get("size") or 0),
        fstype=_text(child.get("fstype")),
        partlabel=_text(child.get("partlabel")),
        label=_text(child.get("label")),
        mountpoint=_text(child.get("mountpoint")),
    )


def _preferred_link(links: tuple[str, ...]) -> str | None:
    def rank(link: str) -> tuple[int, str]:
        name = link.rsplit("/", 1)[-1]
        index = next((i for i, prefix in enumerate(_BY_ID_PREFERENCE) if name.startswith(prefix)), 99)
        return index, name

    return min(links, key=rank) if links else None


def _same_wwn(wanted: str, actual: str) -> bool:
    def norm(value: str) -> str:
        value = value.strip().lower()
        return value[2:] if value.startswith("0x") else value

    return norm(wanted) == norm(actual)


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None
