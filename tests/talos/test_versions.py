import pytest

from talos.errors import UnsupportedVersionError
from talos.versions import CONTRACTS, CURRENT, contract_for, installer_image, parse_version


def test_contract_for_patch_release_picks_its_minor() -> None:
    assert contract_for("v1.13.2") is CONTRACTS["v1.13"]
    assert contract_for("1.12.7") is CONTRACTS["v1.12"]


def test_current_contract_is_newest_minor() -> None:
    assert max(c.minor for c in CONTRACTS.values()) == CURRENT.minor


def test_contract_for_unsupported_minor_names_supported_ones() -> None:
    with pytest.raises(UnsupportedVersionError, match=r"v1\.11\.3 is not supported .*v1\.12, v1\.13"):
        contract_for("v1.11.3")


@pytest.mark.parametrize("bad", ["latest", "v1.13", "1.13.x", ""])
def test_parse_version_rejects_non_release_tags(bad: str) -> None:
    with pytest.raises(UnsupportedVersionError, match=r"is not a version like 'v1\.13\.9'"):
        parse_version(bad)


def test_installer_image_is_pinned_to_the_release() -> None:
    assert installer_image("1.13.9") == "ghcr.io/siderolabs/installer:v1.13.9"
    assert CURRENT.installer_image == f"ghcr.io/siderolabs/installer:{CURRENT.talos_version}"


def test_installer_image_from_factory_schematic() -> None:
    assert installer_image("v1.13.9", "abc123") == "factory.talos.dev/metal-installer/abc123:v1.13.9"


def test_installer_image_keeps_pre_release_suffix() -> None:
    assert installer_image("v1.14.0-rc.1") == "ghcr.io/siderolabs/installer:v1.14.0-rc.1"
