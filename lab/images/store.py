"""Compressed image artifacts (`.raw.zst`, `.raw.xz`) built on first request and cached on disk.

Building streams the raw image through the compressor in 4 MiB chunks; checksums are computed on the
way. A file lock per artifact lets parallel test sessions share one cache directory.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import lzma
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import zstandard

from lab.images.raw import ImageProfile, TalosImage, write_raw_image

FORMATS = (".raw.zst", ".raw.xz")
_CHUNK = 4 << 20
_LAYOUT_VERSION = 1


@dataclass(frozen=True)
class Artifact:
    """One compressed image file with its checksums."""

    image: TalosImage
    fmt: str
    path: Path
    size: int
    sha256: str
    sha512: str
    raw_size: int

    @property
    def filename(self) -> str:
        return f"{self.image.filename_stem}{self.fmt}"

    @property
    def key(self) -> str:
        """Stable name for the CDN path."""
        return self.sha256[:32]


class _Compressor(Protocol):
    def compress(self, data: bytes) -> bytes: ...
    def flush(self) -> bytes: ...


def _compressor(fmt: str) -> _Compressor:
    if fmt == ".raw.zst":
        return zstandard.ZstdCompressor(level=3).compressobj()
    return lzma.LZMACompressor(format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=1)


class ArtifactStore:
    """Builds and caches artifacts for one image profile under `cache_dir`."""

    def __init__(self, cache_dir: Path, profile: ImageProfile) -> None:
        self.cache_dir, self.profile = cache_dir, profile
        self._by_key: dict[str, Artifact] = {}

    def get(self, image: TalosImage, fmt: str) -> Artifact:
        """The artifact for `image` in `fmt` (`.raw.zst` or `.raw.xz`), built if missing."""
        if fmt not in FORMATS:
            raise ValueError(f"image format {fmt!r} is not one of {', '.join(FORMATS)}")
        folder = self.cache_dir / self._folder(image)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{image.filename_stem}{fmt}"
        meta_path = target.with_name(target.name + ".json")
        with open(folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not meta_path.exists():
                self._build(image, fmt, target, meta_path)
            meta = json.loads(meta_path.read_text())
        artifact = Artifact(image, fmt, target, meta["size"], meta["sha256"], meta["sha512"], meta["raw_size"])
        self._by_key[artifact.key] = artifact
        return artifact

    def by_key(self, key: str) -> Artifact | None:
        """An artifact already handed out, by its CDN key."""
        return self._by_key.get(key)

    def _folder(self, image: TalosImage) -> str:
        ident = json.dumps([_LAYOUT_VERSION, image.to_dict(), self.profile.raw_size, self.profile.payload_fraction])
        return hashlib.sha256(ident.encode()).hexdigest()[:24]

    def _build(self, image: TalosImage, fmt: str, target: Path, meta_path: Path) -> None:
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            raw = Path(tmp) / "image.raw"
            write_raw_image(raw, image, self.profile)
            partial = Path(tmp) / target.name
            with open(raw, "rb") as source, open(partial, "wb") as sink:
                size, sha256, sha512 = _compress(source, sink, _compressor(fmt))
            os.replace(partial, target)
        meta = {"size": size, "sha256": sha256, "sha512": sha512, "raw_size": self.profile.raw_size}
        meta_path.write_text(json.dumps(meta))


def _compress(source: BinaryIO, sink: BinaryIO, compressor: _Compressor) -> tuple[int, str, str]:
    sha256, sha512, size = hashlib.sha256(), hashlib.sha512(), 0

    def emit(data: bytes) -> None:
        nonlocal size
        if data:
            sink.write(data)
            sha256.update(data)
            sha512.update(data)
            size += len(data)

    read: Callable[[int], bytes] = source.read
    while chunk := read(_CHUNK):
        emit(compressor.compress(chunk))
    emit(compressor.flush())
    return size, sha256.hexdigest(), sha512.hexdigest()
