"""Unpack the file a Talos `Kubeconfig` call streams: a gzip'd tar holding one entry, `kubeconfig`.

Talos closes the gzip stream but not the tar writer, so the archive ends right after the entry's data: no
padding to 512 bytes and no end-of-archive blocks. Python's tarfile reads the entry but then fails looking for
the next header, hence this small reader of the single header. A truncated transfer still fails: gzip checks
its length and CRC, and the entry must be complete.
"""

from __future__ import annotations

import gzip
import tarfile
import zlib

from talos.errors import TalosError

_BLOCK = 512


class ArchiveError(TalosError):
    """The Kubeconfig reply is not the gzip'd tar Talos sends."""


def unpack_single_file(data: bytes, name: str = "kubeconfig") -> bytes:
    """The content of the archive's first entry, which must be the regular file `name`."""
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:
        raise ArchiveError(f"{name} archive is not complete gzip data ({err})") from None
    try:
        header = tarfile.TarInfo.frombuf(raw[:_BLOCK], tarfile.ENCODING, "surrogateescape")
    except tarfile.TarError as err:
        raise ArchiveError(f"{name} archive does not start with a tar header ({err})") from None
    if header.name != name or not header.isreg():
        raise ArchiveError(f"archive holds {header.name!r}, expected the regular file {name!r}")
    content = raw[_BLOCK : _BLOCK + header.size]
    if len(content) != header.size:
        raise ArchiveError(f"{name} archive is truncated: {len(content)} of {header.size} bytes")
    return content
