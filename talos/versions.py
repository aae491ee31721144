"""Supported Talos version contracts: what `talosctl gen config` emits differs per minor release.

A new Talos minor release is one more entry in CONTRACTS, not new code: every behavioural switch the
generator, the validator and the patcher need lives in VersionContract.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from talos.errors import UnsupportedVersionError

_VERSION = re.compile(r"^v?(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)(?P<pre>-[0-9A-Za-z.-]+)?$")


@dataclass(frozen=True)
class VersionContract:
    """Behaviour of one Talos minor release, pinned to its newest stable patch release."""

    minor: tuple[int, int]
    talos_version: str
    """Newest stable patch release of this minor: default installer image tag."""
    kubernetes_version: str
    """Kubernetes version `talosctl gen config` defaults to for this release."""
    machinery_version: str
    """Go module version of github.com/siderolabs/talos/pkg/machinery carrying this minor's config schema."""
    schema_sha256: str
    """SHA-256 of config/schemas/config.schema.json in that module: the validator's schema, verified on load."""
    network_empty_map: bool
    """The v1alpha1 document carries `machine.network: {}` (v1.12) instead of omitting it (v1.13)."""

    @property
    def name(self) -> str:
        return f"v{self.minor[0]}.{self.minor[1]}"

    @property
    def installer_image(self) -> str:
        return installer_image(self.talos_version)


CONTRACTS: dict[str, VersionContract] = {
    "v1.13": VersionContract(
        minor=(1, 13),
        talos_version="v1.13.9",
        kubernetes_version="1.36.3",
        machinery_version="v1.13.9",
        schema_sha256="3729ac38813c92a35d3159444402d9e7955b5b67aa28303969d5e1d1fa9d2d1d",
        network_empty_map=False,
    ),
    "v1.12": VersionContract(
        minor=(1, 12),
        talos_version="v1.12.11",
        kubernetes_version="1.35.4",
        machinery_version="v1.12.7",
        schema_sha256="a739d4fcc116e61339b3e11d84cfce626d48993540edae988d1ac3aa7d0df104",
        network_empty_map=True,
    ),
}

CURRENT = CONTRACTS["v1.13"]


def parse_version(version: str) -> tuple[int, int, int]:
    """Split `v1.13.9` (or `1.13.9`) into numbers; raise a clear error on anything else."""
    match = _VERSION.match(version.strip())
    if not match:
        raise UnsupportedVersionError(
            f"talos version {version!r} is not a version like 'v1.13.9' (fix: use a release tag)"
        )
    return int(match["major"]), int(match["minor"]), int(match["patch"])


def contract_for(talos_version: str) -> VersionContract:
    """The contract for a Talos release such as `v1.13.9`; unsupported minors are refused by name."""
    major, minor, _ = parse_version(talos_version)
    contract = CONTRACTS.get(f"v{major}.{minor}")
    if contract is None:
        supported = ", ".join(sorted(CONTRACTS))
        raise UnsupportedVersionError(
            f"talos version {talos_version} is not supported (supported contracts: {supported}; "
            "fix: pick a release of a supported minor, or add its contract to talos/versions.py)"
        )
    return contract


def installer_image(talos_version: str, schematic: str | None = None) -> str:
    """The installer image for a release: vanilla from ghcr.io, or an Image Factory schematic."""
    parse_version(talos_version)
    tag = "v" + talos_version.strip().removeprefix("v")
    if schematic:
        return f"factory.talos.dev/metal-installer/{schematic}:{tag}"
    return f"ghcr.io/siderolabs/installer:{tag}"
