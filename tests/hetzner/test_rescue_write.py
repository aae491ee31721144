"""The image write script run for real with local bash against a file disk and a loopback image server.

What the rescue system runs over SSH is exactly this script; here it runs without SSH so the order of
operations (tables cleared, first MiB held back until the checksum matched) is checked byte by byte.
"""

from __future__ import annotations

import hashlib
import lzma
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import zstandard

from hetzner.disks import Disk
from hetzner.images import ImageSource
from hetzner.rescue import ChecksumMismatch, ImageWriteError, WriteMonitor, WriteResult, image_write_script

MIB = 1 << 20
RAW = b"\x55\xaa" * (MIB // 2) + bytes(range(256)) * (MIB * 2 // 256) + b"end-of-image"
FILES = {"/img.raw.zst": zstandard.ZstdCompressor().compress(RAW), "/img.raw.xz": lzma.compress(RAW)}


class ImageServer:
    """Serves FILES; `/redirect/<name>` answers 302 to `/<name>`; `truncate` cuts every GET in half."""

    def __init__(self) -> None:
        self.truncate = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                if self.path.startswith("/redirect/"):
                    self.send_response(302)
                    self.send_header("Location", self.path.removeprefix("/redirect"))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = FILES.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data[: len(data) // 2] if server.truncate else data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def images() -> Iterator[ImageServer]:
    server = ImageServer()
    thread = threading.Thread(target=server.httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def disk_file(tmp_path: Path) -> Path:
    path = tmp_path / "disk"
    path.write_bytes(b"\xee" * 8 * MIB)  # an old system everywhere, including both partition tables
    return path


def disk(path: Path) -> Disk:
    size = path.stat().st_size
    return Disk("sda", "/dev/sda", size, None, None, None, str(path), (str(path),), None, None, (), (), None)


def run_locally(image: ImageSource, path: Path, want: str | None, lines: list[str]) -> WriteResult:
    script = image_write_script(image, str(path), path.stat().st_size, want or "")
    monitor = WriteMonitor(lines.append, 0.0)
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False)
    monitor.feed(done.stdout + done.stderr)
    return monitor.result(str(path), done.returncode, want, 1.0)


def sha(name: str) -> str:
    return hashlib.sha256(FILES[name]).hexdigest()


def test_write_verified_image_lands_whole_and_old_tail_table_cleared(images: ImageServer, disk_file: Path) -> None:
    lines: list[str] = []
    image = ImageSource(f"{images.url}/img.raw.zst", sha("/img.raw.zst"), None, "v1.13.9")

    result = run_locally(image, disk_file, sha("/img.raw.zst"), lines)

    written = disk_file.read_bytes()
    assert written[: len(RAW)] == RAW
    assert written[-MIB:] == bytes(MIB)  # the old backup GPT at the disk's end is gone
    assert result.verified and result.sha256 == sha("/img.raw.zst")
    assert result.downloaded == len(FILES["/img.raw.zst"])
    assert lines[-1].startswith("writing image 100% (") and "sha256 verified" in lines[-1]


def test_write_xz_through_redirect(images: ImageServer, disk_file: Path) -> None:
    image = ImageSource(f"{images.url}/redirect/img.raw.xz", None, None, None)

    result = run_locally(image, disk_file, None, [])

    assert disk_file.read_bytes()[: len(RAW)] == RAW
    assert not result.verified and result.sha256 == sha("/img.raw.xz")


def test_write_checksum_mismatch_leaves_no_partition_table(images: ImageServer, disk_file: Path) -> None:
    image = ImageSource(f"{images.url}/img.raw.zst", "0" * 64, None, None)

    with pytest.raises(ChecksumMismatch) as raised:
        run_locally(image, disk_file, "0" * 64, [])

    written = disk_file.read_bytes()
    assert written[:MIB] == bytes(MIB) and written[-MIB:] == bytes(MIB)
    assert written[MIB : len(RAW)] == RAW[MIB:]  # the rest was streamed, but nothing points at it
    assert raised.value.got == sha("/img.raw.zst")
    assert "nothing bootable is left" in str(raised.value)


def test_write_truncated_download_reported_and_nothing_bootable(images: ImageServer, disk_file: Path) -> None:
    images.truncate = True
    image = ImageSource(f"{images.url}/img.raw.zst", None, None, None)

    with pytest.raises(ImageWriteError, match=r"curl exit 18: transfer closed early"):
        run_locally(image, disk_file, None, [])

    assert disk_file.read_bytes()[:MIB] == bytes(MIB)


def test_write_missing_image_reported_as_download_failure(images: ImageServer, disk_file: Path) -> None:
    image = ImageSource(f"{images.url}/nope.raw.zst", None, None, None)

    with pytest.raises(ImageWriteError, match=r"download failed \(curl exit 22: HTTP error status\)"):
        run_locally(image, disk_file, None, [])


def test_monitor_reports_progress_in_five_percent_steps() -> None:
    lines: list[str] = []
    monitor = WriteMonitor(lines.append, 0.0)

    monitor.feed("@@ total 1000\n")
    monitor.feed("100 bytes (100 B) copied, 1 s, 100 B/s\r420 bytes (420 B) copied, 2 s\r")
    monitor.feed("430 bytes copied\r")

    assert [line.split(" (")[0] for line in lines] == ["writing image 10%", "writing image 40%"]
