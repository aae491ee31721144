"""Disk inventory parsing, selector matching and the wipe policy."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hetzner.disks import (
    DiskError,
    DiskSelector,
    WipePolicy,
    check_wipe,
    parse_inventory,
    parse_size,
    select_install_disk,
    validate_selector,
)

GB = 10**9


def device(name: str, size: int, **fields: Any) -> dict[str, Any]:
    base = {"name": name, "path": f"/dev/{name}", "type": "disk", "size": size, "model": None, "serial": None}
    return {**base, "wwn": None, "fstype": None, "pttype": None, "partlabel": None, "label": None, **fields}


def part(name: str, partlabel: str | None = None, fstype: str | None = None, **fields: Any) -> dict[str, Any]:
    return {**device(name, GB, partlabel=partlabel, fstype=fstype), "type": "part", **fields}


def inventory(*devices: dict[str, Any], links: str = "") -> str:
    return json.dumps({"blockdevices": list(devices)}) + "\n--- by-id ---\n" + links


SAMSUNG = device("nvme0n1", 512 * GB, model="SAMSUNG MZVL2512HCJQ", serial="S1", wwn="eui.002538b111b2c3d4")
INTEL = device("nvme1n1", 960 * GB, model="INTEL SSDPE2KX010T8", serial="I2", wwn="eui.01000000010000005cd2e4")
HDD = device(
    "sda",
    4000 * GB,
    model="HGST HUS726T4TAL",
    serial="H3",
    wwn="0x5000cca0bbd2e1f0",
    pttype="gpt",
    children=[part("sda1", fstype="linux_raid_member", children=[{"name": "md0", "type": "raid1"}]), part("sda2")],
)
LINKS = (
    "/dev/disk/by-id/nvme-eui.002538b111b2c3d4 /dev/nvme0n1\n"
    "/dev/disk/by-id/nvme-SAMSUNG_MZVL2512HCJQ_S1 /dev/nvme0n1\n"
    "/dev/disk/by-id/nvme-INTEL_SSDPE2KX010T8_I2 /dev/nvme1n1\n"
    "/dev/disk/by-id/wwn-0x5000cca0bbd2e1f0 /dev/sda\n"
    "/dev/disk/by-id/ata-HGST_HUS726T4TAL_H3 /dev/sda\n"
    "/dev/disk/by-id/ata-HGST_HUS726T4TAL_H3-part1 /dev/sda1\n"
)


def disks() -> list:
    loop = {**device("loop0", 10**8), "type": "loop"}
    return parse_inventory(inventory(SAMSUNG, INTEL, HDD, loop, links=LINKS))


def test_parse_inventory_keeps_whole_disks_with_identity_and_contents() -> None:
    found = {disk.name: disk for disk in disks()}

    assert sorted(found) == ["nvme0n1", "nvme1n1", "sda"]
    sda = found["sda"]
    assert (sda.size, sda.model, sda.serial, sda.wwn) == (4000 * GB, "HGST HUS726T4TAL", "H3", "0x5000cca0bbd2e1f0")
    assert sda.by_id == "/dev/disk/by-id/wwn-0x5000cca0bbd2e1f0"
    assert "/dev/disk/by-id/ata-HGST_HUS726T4TAL_H3-part1" not in sda.by_id_links
    assert [p.name for p in sda.partitions] == ["sda1", "sda2"] and sda.holders == ("md0",)
    assert found["nvme0n1"].by_id == "/dev/disk/by-id/nvme-eui.002538b111b2c3d4"
    assert not found["nvme0n1"].holds_data


def test_parse_inventory_sizes_as_strings_accepted() -> None:
    parsed = parse_inventory(inventory({**SAMSUNG, "size": str(512 * GB)}))

    assert parsed[0].size == 512 * GB and parsed[0].by_id is None


def test_parse_inventory_garbage_raises_disk_error() -> None:
    with pytest.raises(DiskError, match="cannot read the disk inventory"):
        parse_inventory("lsblk: command not found")


@pytest.mark.parametrize(
    ("selector", "name"),
    [
        (DiskSelector(wwn="0x5000CCA0BBD2E1F0"), "sda"),
        (DiskSelector(wwn="5000cca0bbd2e1f0"), "sda"),
        (DiskSelector(serial="I2"), "nvme1n1"),
        (DiskSelector(model="SAMSUNG*"), "nvme0n1"),
        (DiskSelector(min_size=900 * GB, max_size=1000 * GB), "nvme1n1"),
        (DiskSelector(by_id="nvme-SAMSUNG_MZVL2512HCJQ_S1"), "nvme0n1"),
        (DiskSelector(by_id="/dev/disk/by-id/ata-HGST_HUS726T4TAL_H3"), "sda"),
    ],
)
def test_select_install_disk_single_match_chosen(selector: DiskSelector, name: str) -> None:
    assert select_install_disk(disks(), selector).name == name


def test_select_install_disk_ambiguous_lists_every_disk() -> None:
    with pytest.raises(DiskError) as raised:
        select_install_disk(disks(), DiskSelector(max_size=1000 * GB))

    message = str(raised.value)
    assert message.startswith("2 disks match selector {maxSize=1.0TB}")
    assert "narrow the selector" in message
    assert all(serial in message for serial in ("serial S1", "serial I2", "serial H3"))


def test_select_install_disk_no_match_lists_every_disk() -> None:
    with pytest.raises(DiskError, match=r"no disk matches selector \{serial=nope\}.*\n  - .*nvme-eui"):
        select_install_disk(disks(), DiskSelector(serial="nope"))


def test_select_install_disk_empty_selector_on_single_disk_machine() -> None:
    only = parse_inventory(inventory(SAMSUNG))

    assert select_install_disk(only, DiskSelector()).name == "nvme0n1"


def test_check_wipe_disk_with_partitions_refused_by_default() -> None:
    sda = select_install_disk(disks(), DiskSelector(serial="H3"))

    with pytest.raises(DiskError, match=r"refusing to overwrite .*2 partition\(s\).*in use by md0.*wipe to 'any'"):
        check_wipe(sda, WipePolicy.REFUSE)
    check_wipe(sda, WipePolicy.ANY)


def test_check_wipe_talos_policy_accepts_only_talos_partitions() -> None:
    talos = [part(f"sdb{i}", partlabel=label) for i, label in enumerate(("EFI", "META", "STATE", "EPHEMERAL"), 1)]
    disk = parse_inventory(inventory(device("sdb", GB * 100, children=talos)))[0]
    sda = select_install_disk(disks(), DiskSelector(serial="H3"))

    check_wipe(disk, WipePolicy.TALOS)
    with pytest.raises(DiskError):
        check_wipe(sda, WipePolicy.TALOS)


def test_check_wipe_resumed_write_may_replace_only_its_own_talos_partitions() -> None:
    talos = [part(f"sdb{i}", partlabel=label) for i, label in enumerate(("EFI", "META", "STATE"), 1)]
    disk = parse_inventory(inventory(device("sdb", GB * 100, children=talos)))[0]
    sda = select_install_disk(disks(), DiskSelector(serial="H3"))

    with pytest.raises(DiskError):
        check_wipe(disk, WipePolicy.REFUSE)
    check_wipe(disk, WipePolicy.REFUSE, resumed=True)
    with pytest.raises(DiskError, match="refusing to overwrite"):
        check_wipe(sda, WipePolicy.REFUSE, resumed=True)


def test_check_wipe_mounted_disk_refused_even_with_any() -> None:
    disk = parse_inventory(inventory(device("sdb", GB, children=[part("sdb1", mountpoint="/mnt")])))[0]

    with pytest.raises(DiskError, match="mounted at /mnt"):
        check_wipe(disk, WipePolicy.ANY)


@pytest.mark.parametrize(
    ("text", "size"),
    [(512, 512), ("480GB", 480 * GB), ("1.5TB", 1500 * GB), ("2TiB", 2 * 1024**4), ("100 G", 100 * GB)],
)
def test_parse_size_units(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["big", "-1", -5, 1.5, True, "10XB"])
def test_parse_size_rejects_garbage(text: object) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_validate_selector_names_each_bad_field() -> None:
    problems = validate_selector({"wwn": "xyz", "minSize": "2TB", "maxSize": "1TB", "byId": "/dev/sda", "colour": 1})

    assert [field for field, _ in problems] == ["colour", "maxSize", "wwn", "byId"]
    assert all("fix:" in reason for _, reason in problems)


def test_validate_selector_accepts_good_fields() -> None:
    assert validate_selector({"wwn": "eui.002538b111b2c3d4", "minSize": "100GB", "byId": "wwn-0x5000"}) == []
