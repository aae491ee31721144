import shutil
from pathlib import Path

import pytest

from lab.disks import Disk, DiskSpec, InstalledOs, TalosInstall
from lab.images.raw import ImageProfile, TalosImage, write_raw_image

SIZE = 256 << 20


@pytest.fixture
def disk(tmp_path: Path) -> Disk:
    disk = Disk(DiskSpec("nvme0n1", SIZE, "SAMSUNG MZVL2512HCJQ-00B00", "S1", "eui.0025", "nvme"), tmp_path / "d.img")
    disk.blank()
    return disk


def _copy_image(tmp_path: Path, disk: Disk, image: TalosImage, limit: int | None = None) -> None:
    raw = tmp_path / "image.raw"
    write_raw_image(raw, image, ImageProfile(raw_size=32 << 20))
    with open(raw, "rb") as source, open(disk.path, "r+b") as target:
        target.write(source.read(limit) if limit else source.read())


def test_blank_disk_is_not_bootable(disk: Disk) -> None:
    assert disk.inspect() is None
    assert disk.path.stat().st_size == SIZE


def test_disk_with_a_talos_image_boots_that_version(tmp_path: Path, disk: Disk) -> None:
    _copy_image(tmp_path, disk, TalosImage("v1.12.11", platform="hcloud"))
    assert disk.inspect() == TalosInstall(TalosImage("v1.12.11", platform="hcloud"))


def test_half_written_image_is_not_bootable(tmp_path: Path, disk: Disk) -> None:
    _copy_image(tmp_path, disk, TalosImage("v1.13.9"), limit=20 << 20)
    assert disk.inspect() is None


def test_installed_os_is_detected_with_its_hostname(disk: Disk) -> None:
    disk.install_os("Debian-bookworm")
    assert disk.inspect() == InstalledOs("Debian-bookworm")


@pytest.mark.skipif(shutil.which("blkid") is None, reason="needs blkid")
def test_installed_os_partitions_carry_real_signatures(disk: Disk) -> None:
    import subprocess

    disk.install_os("host")
    probe = subprocess.run(
        ["blkid", "-p", "-o", "value", "-s", "PTTYPE", str(disk.path)], capture_output=True, text=True
    )
    assert probe.stdout.strip() == "gpt"


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        (DiskSpec("nvme0n1", 1, "SAMSUNG X", "S1", "eui.00aa", "nvme"), ("nvme-SAMSUNG_X_S1", "nvme-eui.00aa")),
        (DiskSpec("sda", 1, "TOSHIBA MG08", "71Q", "0x5000", "sata", True), ("ata-TOSHIBA_MG08_71Q", "wwn-0x5000")),
        (
            DiskSpec("sda", 1, "QEMU HARDDISK", "drive-scsi0-0-0-0", None, "virtio"),
            ("scsi-0QEMU_QEMU_HARDDISK_drive-scsi0-0-0-0",),
        ),
    ],
)
def test_by_id_names_follow_udev(spec: DiskSpec, names: tuple[str, ...]) -> None:
    assert spec.by_id == names
