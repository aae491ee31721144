import subprocess
import uuid
from pathlib import Path

import pytest

from lab import gpt


def _table(path: Path, size: int) -> list[gpt.Partition]:
    specs = [gpt.PartitionSpec("EFI", gpt.EFI_SYSTEM, 4 << 20), gpt.PartitionSpec("BOOT", gpt.LINUX_DATA, 2 << 20)]
    partitions = gpt.layout(specs, seed="test")
    with open(path, "wb") as f:
        f.truncate(size)
        gpt.write_gpt(f, size, partitions, uuid.uuid4())
    return partitions


def test_write_then_read_round_trips_partitions(tmp_path: Path) -> None:
    path = tmp_path / "disk.img"
    written = _table(path, 16 << 20)
    with open(path, "rb") as f:
        table = gpt.read_gpt(f, 16 << 20)
    assert table is not None
    assert [p.name for p in table.partitions] == ["EFI", "BOOT"]
    assert table.partitions == tuple(written)
    assert table.backup_valid


def test_written_table_passes_sgdisk_verification(tmp_path: Path) -> None:
    path = tmp_path / "disk.img"
    _table(path, 16 << 20)
    result = subprocess.run(["sgdisk", "-v", str(path)], capture_output=True, text=True, check=False)
    assert "No problems found" in result.stdout


def test_cut_off_image_has_no_valid_backup_header(tmp_path: Path) -> None:
    path = tmp_path / "disk.img"
    _table(path, 16 << 20)
    with open(path, "r+b") as f:
        f.seek(8 << 20)
        f.truncate()
        f.truncate(16 << 20)
        table = gpt.read_gpt(f, 16 << 20)
    assert table is not None and not table.backup_valid


def test_blank_disk_has_no_table(tmp_path: Path) -> None:
    path = tmp_path / "disk.img"
    path.write_bytes(bytes(1 << 20))
    with open(path, "rb") as f:
        assert gpt.read_gpt(f, 1 << 20) is None


def test_partition_past_the_end_is_refused(tmp_path: Path) -> None:
    partitions = gpt.layout([gpt.PartitionSpec("BIG", gpt.LINUX_DATA, 32 << 20)], seed="x")
    with open(tmp_path / "disk.img", "wb") as f, pytest.raises(ValueError, match="does not fit"):
        gpt.write_gpt(f, 16 << 20, partitions, uuid.uuid4())
