"""Image sources: factory URLs, explicit URLs, checksums and offline validation."""

from __future__ import annotations

import pytest

from hetzner.images import (
    DEFAULT_SCHEMATIC,
    image_from_inputs,
    normalize_sha256,
    parse_checksum_file,
    validate_image,
)

SUM = "ab" * 32


def test_factory_image_defaults_to_metal_zst_with_published_checksum() -> None:
    image = image_from_inputs({"version": "v1.13.9"})

    assert image.url == f"https://factory.talos.dev/image/{DEFAULT_SCHEMATIC}/v1.13.9/metal-amd64.raw.zst"
    assert image.checksum_url == image.url + ".sha256" and image.sha256 is None
    assert image.decompress_command == "zstd -dc" and image.version == "v1.13.9"


def test_factory_image_platform_default_and_explicit_checksum() -> None:
    image = image_from_inputs(
        {"version": "v1.13.9", "format": "xz", "factoryUrl": "http://127.0.0.9:8080/", "sha256": f"sha256:{SUM}"},
        default_platform="hcloud",
    )

    assert image.url.startswith("http://127.0.0.9:8080/image/") and image.url.endswith("/hcloud-amd64.raw.xz")
    assert image.sha256 == SUM and image.checksum_url is None and image.compression == "xz"


def test_explicit_url_keeps_query_and_finds_compression() -> None:
    image = image_from_inputs({"url": "https://cdn.example/metal-amd64.raw.xz?token=abc", "sha256": SUM.upper()})

    assert image.compression == "xz" and image.sha256 == SUM and image.version is None


def test_validate_explicit_url_requires_checksum_and_image_suffix() -> None:
    problems = dict(validate_image({"url": "ftp://x/y.iso"}))

    assert set(problems) == {"url", "sha256"}
    assert "http(s)" in problems["url"] and "fix:" in problems["sha256"]
    assert dict(validate_image({"url": "https://x/metal-amd64.iso", "sha256": SUM}))["url"].startswith("must name")


def test_validate_factory_fields_each_named() -> None:
    problems = validate_image({"schematic": "abc", "platform": "aws", "arch": "riscv", "format": "gz", "x": 1})

    assert [field for field, _ in problems] == ["x", "version", "schematic", "platform", "arch", "format"]


def test_validate_good_factory_image_passes() -> None:
    assert validate_image({"version": "v1.13.9", "platform": "hcloud", "sha256": SUM}) == []


def test_normalize_sha256_rejects_short() -> None:
    with pytest.raises(ValueError, match="64 hex digits"):
        normalize_sha256("abc")


def test_parse_checksum_file_reads_sha256sum_format() -> None:
    assert parse_checksum_file(f"{SUM}  metal-amd64.raw.zst\n") == SUM
    assert parse_checksum_file("Payment Required\n") is None
