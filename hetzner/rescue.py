"""An SSH session to a Hetzner rescue system: prove it is one, list disks, stream the image, reboot.

Host keys: a rescue system gets fresh host keys on every boot, and the server's address later serves another
system, so the user's known_hosts is never read or written. A key the API reports (Robot's `host_key`) is
required to match; otherwise the first key seen is trusted for this boot only and pinned for reconnects.

The image is never staged: `curl | tee (sha256sum) | zstd -d | dd` writes it straight to the disk. Because the
checksum is only known when the stream ends, the first MiB (protective MBR and primary GPT) is held back and
the partition tables are zeroed first; the held-back MiB is written only after the checksum matched. A checksum
mismatch, a truncated download or a dropped connection therefore leaves a disk without partition table:
nothing on it can boot.
"""

from __future__ import annotations

import re
import shlex
import time
from dataclasses import dataclass, field

import paramiko

from common.waiting import Deadline, Progress, format_elapsed, no_progress
from hetzner.disks import INVENTORY_COMMAND, Disk, format_size, parse_inventory
from hetzner.errors import HetznerError
from hetzner.images import ImageSource, parse_checksum_file
from hetzner.keys import md5_fingerprint, sha256_fingerprint

RESCUE_HOSTNAME = "rescue"
RESCUE_MARKER = "Hetzner Rescue System"
"""The rescue system's login banner in /etc/motd ("Welcome to the Hetzner Rescue System.")."""

_PROGRESS = re.compile(r"^(\d+) bytes")
_CURL_ERRORS = {
    6: "host not found",
    7: "connection refused",
    18: "transfer closed early (truncated download)",
    22: "HTTP error status",
    28: "timed out",
    35: "TLS handshake failed",
    52: "empty reply",
    56: "connection lost while receiving",
    60: "server certificate not trusted",
}


class RescueError(HetznerError):
    """The rescue system cannot be used as required."""


class RescueUnreachable(RescueError):
    """No usable SSH session (yet): refused, timed out, wrong key, or not the rescue system (yet)."""


class NotRescueError(RescueUnreachable):
    """The SSH server is not a Hetzner rescue system; nothing destructive may run there."""


class HostKeyMismatch(RescueUnreachable):
    """The SSH host key is not the one the API reported or the one pinned earlier in this boot."""


class ImageWriteError(RescueError):
    """Writing the image failed; the disk was left without partition table (nothing bootable)."""

    def __init__(self, disk: str, reason: str, output: str = "") -> None:
        message = f"writing the image to {disk} failed: {reason}; its partition tables were cleared, nothing bootable"
        message += " is left on it (fix: re-run to install again)"
        if output:
            message += f"\n{output}"
        super().__init__(message)
        self.disk, self.reason = disk, reason


class WriteInterrupted(ImageWriteError):
    """The SSH connection dropped while the image was being written."""


class ChecksumMismatch(ImageWriteError):
    """The downloaded image's SHA-256 differs from the expected one."""

    def __init__(self, disk: str, want: str, got: str) -> None:
        super().__init__(disk, f"image checksum mismatch (want sha256 {want}, got {got})")
        self.want, self.got = want, got


@dataclass(frozen=True)
class CommandResult:
    status: int
    output: str


@dataclass(frozen=True)
class WriteResult:
    """What was written: compressed bytes downloaded, their SHA-256, and whether it was checked."""

    downloaded: int
    sha256: str
    verified: bool
    seconds: float


@dataclass
class HostKeyPins(paramiko.MissingHostKeyPolicy):
    """Accept a host key only if it matches `expected` (MD5 or SHA256 fingerprints); none expected: accept any.

    The accepted key is kept in `seen`, so later connections to the same boot can pin it.
    """

    expected: tuple[str, ...] = ()
    seen: paramiko.PKey | None = field(default=None, repr=False)

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        fingerprints = {md5_fingerprint(key), sha256_fingerprint(key)}
        if self.expected and not fingerprints & {fp.strip() for fp in self.expected}:
            raise HostKeyMismatch(
                f"{hostname} offered host key {sha256_fingerprint(key)}, not the expected {', '.join(self.expected)}"
            )
        self.seen = key

    def pinned(self) -> HostKeyPins:
        """Pins for a reconnect: the key accepted now, or the expected ones."""
        return HostKeyPins((sha256_fingerprint(self.seen),)) if self.seen is not None else HostKeyPins(self.expected)


class RescueSession:
    """One SSH connection to a server's rescue system (a context manager that closes it)."""

    def __init__(self, client: paramiko.SSHClient, address: str, pins: HostKeyPins) -> None:
        self._client, self.address, self.pins = client, address, pins

    @classmethod
    def connect(
        cls,
        address: str,
        *,
        key: paramiko.PKey,
        port: int = 22,
        pins: HostKeyPins | None = None,
        connect_timeout: float = 3.0,
        timeout: float = 15.0,
    ) -> RescueSession:
        """Log in as root with the key; raise RescueUnreachable if not possible.

        The TCP connect gives up after `connect_timeout`: a rebooting server drops packets, and a short attempt
        lets the caller's polling notice the rescue system soon after it answers. `timeout` bounds the SSH
        banner and authentication.
        """
        pins = pins or HostKeyPins()
        client = paramiko.SSHClient()  # no known_hosts loaded or saved: every key goes through `pins`
        client.set_missing_host_key_policy(pins)
        try:
            client.connect(
                address,
                port=port,
                username="root",
                pkey=key,
                timeout=connect_timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                look_for_keys=False,
                allow_agent=False,
            )
        except HostKeyMismatch:
            client.close()
            raise
        except (OSError, paramiko.SSHException, EOFError) as error:
            client.close()
            raise RescueUnreachable(f"ssh {address}:{port}: {_describe(error)}") from None
        return cls(client, address, pins)

    def __enter__(self) -> RescueSession:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    @property
    def host_key(self) -> str:
        return sha256_fingerprint(self.pins.seen) if self.pins.seen is not None else "unknown"

    def run(self, command: str, *, timeout: float = 60.0) -> CommandResult:
        """Run a shell command; return its exit status and combined output."""
        channel = self._open()
        channel.set_combine_stderr(True)
        channel.settimeout(timeout)
        try:
            channel.exec_command(command)
            chunks = []
            while chunk := channel.recv(65536):
                chunks.append(chunk)
            status = channel.recv_exit_status()
        except (OSError, paramiko.SSHException, EOFError) as error:
            raise RescueUnreachable(f"ssh {self.address}: {_describe(error)} running {command.split()[0]}") from None
        finally:
            channel.close()
        if status == -1:  # paramiko's value when the channel closed without an exit status
            raise RescueUnreachable(f"ssh {self.address}: connection lost running {command.split()[0]}")
        return CommandResult(status, b"".join(chunks).decode(errors="replace"))

    def prove_rescue(self) -> None:
        """Raise NotRescueError unless the hostname is `rescue` and Hetzner's rescue banner is present."""
        check = f"hostname; grep -qsF {shlex.quote(RESCUE_MARKER)} /etc/motd && echo marker-found; true"
        lines = self.run(check, timeout=30).output.split()
        hostname = lines[0] if lines else ""
        if hostname != RESCUE_HOSTNAME or "marker-found" not in lines:
            marker = "present" if "marker-found" in lines else "missing"
            raise NotRescueError(
                f"{self.address} is not the rescue system (hostname {hostname!r}, rescue banner {marker}); "
                "refusing to touch its disks"
            )

    def disks(self) -> list[Disk]:
        result = self.run(INVENTORY_COMMAND, timeout=60)
        if result.status != 0:
            raise RescueError(f"listing disks on {self.address} failed (exit {result.status}): {result.output[-500:]}")
        return parse_inventory(result.output)

    def release(self, disk: Disk) -> None:
        """Stop RAID arrays and device-mapper volumes built on the disk, so it can be overwritten."""
        steps = [
            f"mdadm --stop /dev/{shlex.quote(h)}" if h.startswith("md") else f"dmsetup remove {shlex.quote(h)}"
            for h in disk.holders
        ]
        if not steps:
            return
        result = self.run(" && ".join(steps), timeout=120)
        if result.status != 0:
            raise RescueError(f"cannot release {disk.describe()}: {result.output.strip()[-500:]}")

    def fetch_checksum(self, url: str) -> str | None:
        """The SHA-256 published at `url` (a sha256sum-style file), or None when there is none (402/404)."""
        result = self.run(f"curl -fsSL --max-time 60 {shlex.quote(url)}", timeout=90)
        return parse_checksum_file(result.output) if result.status == 0 else None

    def write_image(
        self,
        image: ImageSource,
        disk: Disk,
        *,
        sha256: str | None,
        deadline: Deadline,
        progress: Progress = no_progress,
    ) -> WriteResult:
        """Stream the image onto the disk's by-id path and verify it; see the module docstring for the order.

        A disk without a /dev/disk/by-id link (some virtual disks) is written through its kernel name, and the
        progress says so: that name may differ on the next boot, but it is the disk the inventory just chose.
        """
        target = disk.by_id or disk.path
        if not disk.by_id:
            progress(f"{disk.path} has no /dev/disk/by-id link; writing to {disk.path} as listed just now")
        script = image_write_script(image, target, disk.size, sha256 or "")
        started = time.monotonic()
        channel = self._open()
        reader = WriteMonitor(progress, started)
        try:
            channel.set_combine_stderr(True)
            channel.exec_command(f"bash -c {shlex.quote(script)}")
            while True:
                channel.settimeout(max(0.1, min(5.0, deadline.remaining())))
                try:
                    chunk = channel.recv(65536)
                except TimeoutError:
                    if deadline.expired():
                        raise ImageWriteError(target, f"not done after {format_elapsed(deadline.elapsed())}") from None
                    continue
                if not chunk:
                    break
                reader.feed(chunk.decode(errors="replace"))
            status = channel.recv_exit_status()
        except (OSError, paramiko.SSHException, EOFError) as error:
            raise WriteInterrupted(target, f"connection lost ({_describe(error)})") from None
        finally:
            channel.close()
        if status == -1:
            raise WriteInterrupted(target, "connection lost")
        return reader.result(target, status, sha256, time.monotonic() - started)

    def reboot(self, timeout: float = 10.0) -> None:
        """Reboot into the installed system (never a halt: a halted server stays off). The session then drops."""
        channel = self._open()
        try:
            channel.settimeout(timeout)
            channel.exec_command("sync; reboot")
            while channel.recv(4096):  # until the rescue system goes away (or `reboot` returns)
                pass
        except (OSError, paramiko.SSHException, EOFError):
            pass  # the connection dropping is the expected end of a reboot
        finally:
            channel.close()

    def _open(self) -> paramiko.Channel:
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise RescueUnreachable(f"ssh {self.address}: connection closed")
        try:
            return transport.open_session(timeout=30.0)
        except (OSError, paramiko.SSHException, EOFError) as error:
            raise RescueUnreachable(f"ssh {self.address}: {_describe(error)}") from None


class WriteMonitor:
    """Follows the write script's combined output (dd progress, `@@` markers, other lines kept for errors) and
    turns its end into a WriteResult or the matching ImageWriteError."""

    def __init__(self, progress: Progress, started: float) -> None:
        self._progress, self._started = progress, started
        self._pending = ""
        self.total = 0
        self.copied = 0
        self.markers: dict[str, str] = {}
        self.lines: list[str] = []
        self._reported = -1

    def feed(self, text: str) -> None:
        self._pending += text
        *complete, self._pending = re.split(r"[\r\n]", self._pending)
        for line in complete:
            self._line(line.strip())

    def _line(self, line: str) -> None:
        if line.startswith("@@ "):
            name, _, value = line[3:].partition(" ")
            self.markers[name] = value
            self.total = int(self.markers.get("total") or 0)
            return
        match = _PROGRESS.match(line)
        if match:
            self.copied = int(match[1])
            self._report()
        elif line and "records in" not in line and "records out" not in line:
            self.lines = [*self.lines[-19:], line]

    def _report(self) -> None:
        elapsed = format_elapsed(time.monotonic() - self._started)
        if self.total:
            step = min(99, self.copied * 100 // self.total) // 5  # 100% is said once the write is verified
            if step != self._reported:
                self._reported = step
                self._progress(f"writing image {step * 5}% ({elapsed})")
        else:
            step = self.copied // (256 << 20)
            if step != self._reported:
                self._reported = step
                self._progress(f"writing image {format_size(self.copied)} ({elapsed})")

    def result(self, target: str, status: int, want: str | None, seconds: float) -> WriteResult:
        self.feed("\n")
        output = "\n".join(self.lines[-10:])
        stages = [int(s) for s in self.markers.get("status", "").split()]
        got = self.markers.get("sha256", "")
        if "error" in self.markers or len(stages) != 5:
            raise ImageWriteError(
                target, self.markers.get("error") or f"the write script failed (exit {status})", output
            )
        curl, tee, counter, decompress, writer = stages
        if curl not in (0, 23):  # 23: curl could not write because a later stage had died
            reason = _CURL_ERRORS.get(curl, "download failed")
            raise ImageWriteError(target, f"download failed (curl exit {curl}: {reason})", output)
        if decompress == 127:
            raise ImageWriteError(target, "the decompressor is not installed in the rescue system", output)
        if decompress:
            raise ImageWriteError(target, f"the image is corrupt or truncated (decompressor exit {decompress})", output)
        if curl or tee or counter or writer:
            raise ImageWriteError(target, f"the disk write failed (stage exits {stages})", output)
        if want and got != want:
            raise ChecksumMismatch(target, want, got)
        if status != 0 or "done" not in self.markers:
            raise ImageWriteError(target, f"finishing the write failed (exit {status})", output)
        self._progress(f"writing image 100% ({format_elapsed(seconds)}), sha256 {'verified' if want else got}")
        return WriteResult(self.copied, got, bool(want), seconds)


def image_write_script(image: ImageSource, target: str, size: int, want: str) -> str:
    """The bash script run in rescue: clear tables, stream and write all but the first MiB, verify, finish."""
    quoted = {name: shlex.quote(value) for name, value in (("disk", target), ("url", image.url), ("want", want))}
    return f"""
set -u -o pipefail
disk={quoted["disk"]}; url={quoted["url"]}; want={quoted["want"]}; size={int(size)}; mib=1048576
exec 9>/tmp/talos-hetzner-write.lock && flock -w 60 9 \
    || {{ echo "@@ error an earlier image write is still running"; exit 1; }}
work=$(mktemp -d) || {{ echo "@@ error cannot create a work directory"; exit 1; }}
trap 'rm -rf "$work"' EXIT
clear() {{ dd if=/dev/zero of="$disk" bs=$mib count=1 oflag=seek_bytes seek="$1" conv=notrunc,fsync status=none; }}
clear 0 && clear $(( size > mib ? size - mib : 0 )) || {{ echo "@@ error cannot clear the partition tables"; exit 1; }}
echo "@@ total $(curl -fsSLI --max-time 30 "$url" 2>/dev/null | tr -d '\\r' \\
    | awk 'tolower($1) == "content-length:" {{ n = $2 }} END {{ print n + 0 }}')"
mkfifo "$work/stream" || {{ echo "@@ error cannot create a fifo"; exit 1; }}
sha256sum < "$work/stream" > "$work/sum" &
summer=$!
curl -fsSL --connect-timeout 30 "$url" | tee "$work/stream" | dd bs=$mib status=progress | {image.decompress_command} \\
    | {{ dd of="$work/head" bs=$mib count=1 iflag=fullblock status=none \\
         && dd of="$disk" bs=4M iflag=fullblock oflag=seek_bytes,direct seek=$mib conv=notrunc,fsync status=none; }}
stages="${{PIPESTATUS[*]}}"
wait "$summer"
echo "@@ sha256 $(cut -d' ' -f1 "$work/sum")"
echo "@@ status $stages"
[ "$stages" = "0 0 0 0 0" ] || exit 1
[ -z "$want" ] || [ "$(cut -d' ' -f1 "$work/sum")" = "$want" ] || exit 1
dd if="$work/head" of="$disk" bs=$mib conv=notrunc,fsync status=none && sync && echo "@@ done"
"""


def _describe(error: BaseException) -> str:
    if isinstance(error, paramiko.ssh_exception.NoValidConnectionsError):
        causes = {_describe(cause) for cause in error.errors.values()}
        return ", ".join(sorted(causes))
    if isinstance(error, paramiko.AuthenticationException):
        return "authentication failed (rescue not up yet, or another system answers)"
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
