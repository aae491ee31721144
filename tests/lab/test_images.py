import hashlib
import io
import lzma

import pytest
import requests
import zstandard

from lab import gpt
from lab.faults import Fault
from lab.images.raw import TalosImage, read_marker
from lab.services import Lab

VERSION = "v1.13.9"


def _download(url: str) -> requests.Response:
    response = requests.get(url, timeout=30)
    response.raise_for_status()
    return response


def _assert_talos_image(raw: bytes, version: str) -> None:
    table = gpt.read_gpt(io.BytesIO(raw), len(raw))
    assert table is not None and table.backup_valid
    assert [p.name for p in table.partitions] == ["EFI", "BIOS", "BOOT", "META"]
    boot = table.by_name("BOOT")
    assert boot is not None
    assert read_marker(io.BytesIO(raw), boot.offset) == TalosImage(version)


def test_image_get_redirects_to_the_cdn(lab: Lab) -> None:
    response = requests.get(lab.image_url(VERSION), allow_redirects=False, timeout=30)
    assert response.status_code == 302
    assert response.headers["Location"].startswith(lab.endpoint("cdn").base_url + "/")
    assert response.headers["Location"].endswith("/metal-amd64.raw.zst")


def test_zst_image_decompresses_to_a_talos_disk_image(lab: Lab) -> None:
    body = _download(lab.image_url(VERSION)).content
    raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body)).read()
    assert len(raw) == lab.spec.image_profile.raw_size
    _assert_talos_image(raw, VERSION)


def test_xz_image_decompresses_to_the_same_talos_layout(lab: Lab) -> None:
    raw = lzma.decompress(_download(lab.image_url(VERSION, fmt=".raw.xz")).content)
    _assert_talos_image(raw, VERSION)


@pytest.mark.parametrize(("suffix", "algorithm"), [(".sha256", hashlib.sha256), (".sha512", hashlib.sha512)])
def test_checksum_file_matches_the_downloaded_artifact(lab: Lab, suffix: str, algorithm: object) -> None:
    url = lab.image_url(VERSION)
    line = _download(url + suffix).text
    digest, name = line.split()
    assert name == "metal-amd64.raw.zst" and line.endswith("\n")
    assert digest == algorithm(_download(url).content).hexdigest()  # type: ignore[operator]


def test_head_is_served_directly_with_the_artifact_length(lab: Lab) -> None:
    response = requests.head(lab.image_url(VERSION), timeout=30)
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == lab.artifact(VERSION).size
    assert "metal-amd64.raw.zst" in response.headers["Content-Disposition"]


def test_unknown_version_and_schematic_are_404_plain_text(lab: Lab) -> None:
    missing_version = requests.get(lab.image_url("v9.9.9"), timeout=30)
    assert missing_version.status_code == 404 and missing_version.text.endswith("\n")
    missing_schematic = requests.get(lab.image_url(VERSION, schematic="ab" * 32), timeout=30)
    assert missing_schematic.status_code == 404


def test_uploaded_schematic_serves_images_with_its_id(lab: Lab) -> None:
    created = requests.post(
        f"{lab.factory_url}/schematics", data=b"customization:\n  extraKernelArgs: [quiet]\n", timeout=30
    )
    assert created.status_code == 201
    ident = created.json()["id"]
    assert requests.get(f"{lab.factory_url}/schematics/{ident}", timeout=30).text == created.json()["schematic"]
    body = _download(lab.image_url(VERSION, schematic=ident)).content
    raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body)).read()
    table = gpt.read_gpt(io.BytesIO(raw), len(raw))
    assert table is not None and read_marker(io.BytesIO(raw), table.partitions[2].offset) == TalosImage(VERSION, ident)


def test_versions_lists_what_the_factory_serves(lab: Lab) -> None:
    versions = requests.get(f"{lab.factory_url}/versions", timeout=30).json()
    assert VERSION in versions and "v1.12.11" in versions


def test_range_request_resumes_a_download(lab: Lab) -> None:
    cdn_url = requests.get(lab.image_url(VERSION), allow_redirects=False, timeout=30).headers["Location"]
    whole = _download(cdn_url).content
    tail = requests.get(cdn_url, headers={"Range": "bytes=1000-"}, timeout=30)
    assert tail.status_code == 206 and tail.content == whole[1000:]


def test_truncate_fault_cuts_the_transfer_short(lab: Lab) -> None:
    lab.faults.arm(Fault.IMAGES_TRUNCATE, fraction=0.25)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(lab.image_url(VERSION), timeout=30).content  # noqa: B018 - reading the body is the test


def test_server_error_fault_answers_500(lab: Lab) -> None:
    lab.faults.arm(Fault.IMAGES_SERVER_ERROR)
    assert requests.get(lab.image_url(VERSION), timeout=30).status_code == 500
    assert requests.get(lab.image_url(VERSION), allow_redirects=False, timeout=30).status_code == 302
