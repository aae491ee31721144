"""Where the Talos disk image comes from: an Image Factory schematic and version, or an explicit URL.

The image is a compressed raw disk (`.raw.zst` since Talos 1.8, `.raw.xz` before and still served by the
factory). Its SHA-256 is of the compressed file as downloaded. A factory image without an explicit checksum
is checked against the factory's `<image>.sha256` file where the factory publishes one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

FACTORY_URL = "https://factory.talos.dev"
DEFAULT_SCHEMATIC = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"
"""The Image Factory's schematic without customizations."""

PLATFORMS = ("metal", "hcloud")
ARCHES = ("amd64", "arm64")
DECOMPRESSORS = {"zst": "zstd -dc", "xz": "xz -dc"}
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_FACTORY_FIELDS = {"schematic", "version", "platform", "arch", "format", "factoryUrl", "sha256"}
_URL_FIELDS = {"url", "sha256", "version"}


@dataclass(frozen=True)
class ImageSource:
    """A downloadable Talos disk image and how to verify it."""

    url: str
    sha256: str | None
    """Expected SHA-256 (hex) of the compressed file; None to use `checksum_url` or skip verification."""
    checksum_url: str | None
    """A `sha256sum`-style file to fetch the checksum from when none is given (Image Factory images)."""
    version: str | None
    """The Talos version the image installs, when known."""

    @property
    def compression(self) -> str:
        path = urlsplit(self.url).path
        return next(kind for kind in DECOMPRESSORS if path.endswith(f".raw.{kind}"))

    @property
    def decompress_command(self) -> str:
        return DECOMPRESSORS[self.compression]


def factory_image_url(factory: str, schematic: str, version: str, platform: str, arch: str, compression: str) -> str:
    return f"{factory.rstrip('/')}/image/{schematic}/{version}/{platform}-{arch}.raw.{compression}"


def image_from_inputs(data: dict[str, Any], *, default_platform: str = "metal") -> ImageSource:
    """Build the image source from provider inputs (already validated by `validate_image`)."""
    sha256 = normalize_sha256(data["sha256"]) if data.get("sha256") else None
    if data.get("url"):
        return ImageSource(str(data["url"]), sha256, None, data.get("version") or None)
    url = factory_image_url(
        str(data.get("factoryUrl") or FACTORY_URL),
        str(data.get("schematic") or DEFAULT_SCHEMATIC),
        str(data["version"]),
        str(data.get("platform") or default_platform),
        str(data.get("arch") or "amd64"),
        str(data.get("format") or "zst"),
    )
    return ImageSource(url, sha256, None if sha256 else f"{url}.sha256", str(data["version"]))


def validate_image(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Offline checks of image inputs: (field, reason with the fix) for each problem. The version is checked by
    the caller against the supported Talos releases."""
    if data.get("url"):
        problems = _unknown_fields(data, _URL_FIELDS, "an explicit url takes only sha256 and version")
        problems += _check_url(str(data["url"]), "url", need_image_suffix=True)
        if not data.get("sha256"):
            problems.append(("sha256", "is required with an explicit url (fix: give the image's SHA-256 in hex)"))
    else:
        problems = _unknown_fields(data, _FACTORY_FIELDS, "a factory image takes these fields")
        if not data.get("version"):
            problems.append(("version", "is required (fix: give a Talos release such as v1.13.9, or an url)"))
        schematic = str(data.get("schematic") or DEFAULT_SCHEMATIC)
        if not _HEX64.match(schematic):
            problems.append(("schematic", "is not a 64-hex Image Factory schematic id (fix: POST /schematics)"))
        problems += _choice(data, "platform", PLATFORMS) + _choice(data, "arch", ARCHES)
        problems += _choice(data, "format", tuple(DECOMPRESSORS))
        if data.get("factoryUrl"):
            problems += _check_url(str(data["factoryUrl"]), "factoryUrl", need_image_suffix=False)
    if data.get("sha256"):
        try:
            normalize_sha256(data["sha256"])
        except ValueError as error:
            problems.append(("sha256", str(error)))
    return problems


def normalize_sha256(value: Any) -> str:
    """Lower-case hex from `abc...` or `sha256:abc...`; ValueError naming the fix otherwise."""
    text = str(value).strip().lower().removeprefix("sha256:")
    if not _HEX64.match(text):
        raise ValueError("is not a SHA-256 (fix: 64 hex digits, as printed by `sha256sum`)")
    return text


def parse_checksum_file(text: str) -> str | None:
    """The SHA-256 in a `sha256sum`-style file (`<hex>  <name>`), or None if there is none."""
    for token in text.split():
        if _HEX64.match(token.lower()):
            return token.lower()
    return None


def _check_url(url: str, field: str, *, need_image_suffix: bool) -> list[tuple[str, str]]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return [(field, f"{url!r} is not an http(s) URL (fix: e.g. https://factory.talos.dev)")]
    if need_image_suffix and not any(parts.path.endswith(f".raw.{kind}") for kind in DECOMPRESSORS):
        return [(field, "must name a .raw.zst or .raw.xz disk image (fix: use the compressed raw image URL)")]
    return []


def _choice(data: dict[str, Any], field: str, allowed: tuple[str, ...]) -> list[tuple[str, str]]:
    value = data.get(field)
    if value is None or value in allowed:
        return []
    return [(field, f"{value!r} is not supported (fix: one of {', '.join(allowed)})")]


def _unknown_fields(data: dict[str, Any], allowed: set[str], why: str) -> list[tuple[str, str]]:
    fix = f"fix: {why}: {', '.join(sorted(allowed))}"
    return [(key, f"unknown image field ({fix})") for key in data if key not in allowed]
