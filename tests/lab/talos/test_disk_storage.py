"""A node's STATE and EPHEMERAL on a lab disk file: created after the image, lost when the disk is rewritten."""

from __future__ import annotations

from pathlib import Path

from lab import gpt
from lab.disks import Disk, DiskSpec
from lab.images.raw import ImageProfile, TalosImage, write_raw_image
from lab.talos.disk_storage import DiskStorage

SPEC = DiskSpec("nvme0n1", 512 * gpt.MIB, "SAMSUNG MZVL2512", "S1", "eui.0025", "nvme")


def talos_disk(tmp_path: Path, version: str = "v1.13.9") -> Disk:
    disk = Disk(SPEC, tmp_path / "nvme0n1.img")
    disk.blank()
    raw = tmp_path / "image.raw"
    write_raw_image(raw, TalosImage(version), ImageProfile(raw_size=32 * gpt.MIB))
    with open(raw, "rb") as source, open(disk.path, "r+b") as target:
        target.write(source.read())
    return disk


def test_fresh_image_boots_without_state(tmp_path: Path) -> None:
    storage = DiskStorage([talos_disk(tmp_path)], talos_disk(tmp_path))
    assert storage.boot_image() == ("nvme0n1", TalosImage("v1.13.9"))
    assert storage.read_state() is None and not storage.etcd_data()


def test_state_and_ephemeral_become_partitions_that_persist(tmp_path: Path) -> None:
    disk = talos_disk(tmp_path)
    DiskStorage([disk], disk).write_state(b"version: v1alpha1\n")
    DiskStorage([disk], disk).set_etcd_data(True)
    again = DiskStorage([disk], disk)
    assert again.read_state() == b"version: v1alpha1\n" and again.etcd_data()
    with open(disk.path, "rb") as f:
        table = gpt.read_gpt(f, SPEC.size)
    assert table is not None and table.backup_valid
    assert [p.name for p in table.partitions] == ["EFI", "BIOS", "BOOT", "META", "STATE", "EPHEMERAL"]
    assert disk.inspect() is not None


def test_rewriting_the_image_forgets_the_state(tmp_path: Path) -> None:
    disk = talos_disk(tmp_path)
    DiskStorage([disk], disk).write_state(b"config")
    rewritten = talos_disk(tmp_path)
    assert DiskStorage([rewritten], rewritten).read_state() is None


def test_install_changes_the_booted_version_and_keeps_state(tmp_path: Path) -> None:
    disk = talos_disk(tmp_path)
    storage = DiskStorage([disk], disk)
    storage.write_state(b"config")
    storage.install(TalosImage("v1.13.10"))
    assert storage.boot_image() == ("nvme0n1", TalosImage("v1.13.10"))
    assert storage.read_state() == b"config"


def test_wiping_the_system_disk_leaves_nothing_to_boot(tmp_path: Path) -> None:
    disk = talos_disk(tmp_path)
    storage = DiskStorage([disk], disk)
    storage.wipe_system_disk()
    assert storage.boot_image() is None and storage.read_state() is None


def test_devices_carry_the_disk_identity(tmp_path: Path) -> None:
    disk = talos_disk(tmp_path)
    [device] = DiskStorage([disk], disk).devices()
    assert (device.dev_path, device.transport, device.wwid) == ("/dev/nvme0n1", "nvme", "eui.0025")
    assert "/dev/disk/by-id/nvme-SAMSUNG_MZVL2512_S1" in device.symlinks
