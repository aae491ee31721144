"""The Kubeconfig reply's archive: Talos' unterminated tar inside gzip, and what must still fail."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from lab.talos.api import pack_single_file
from talos.api.archive import ArchiveError, unpack_single_file

CONTENT = b"apiVersion: v1\nkind: Config\n"


def test_unterminated_archive_as_talos_sends_it_unpacks() -> None:
    assert unpack_single_file(pack_single_file("kubeconfig", CONTENT)) == CONTENT


def test_complete_tar_with_end_blocks_unpacks() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("kubeconfig")
        info.size = len(CONTENT)
        archive.addfile(info, io.BytesIO(CONTENT))
    assert unpack_single_file(buffer.getvalue()) == CONTENT


def test_truncated_gzip_fails() -> None:
    data = pack_single_file("kubeconfig", CONTENT * 50)
    with pytest.raises(ArchiveError, match="not complete gzip data"):
        unpack_single_file(data[: len(data) // 2])


def test_truncated_entry_fails() -> None:
    raw = gzip.decompress(pack_single_file("kubeconfig", CONTENT))
    with pytest.raises(ArchiveError, match="truncated"):
        unpack_single_file(gzip.compress(raw[:-5]))


def test_other_entry_name_fails() -> None:
    with pytest.raises(ArchiveError, match="expected the regular file 'kubeconfig'"):
        unpack_single_file(pack_single_file("talosconfig", CONTENT))
