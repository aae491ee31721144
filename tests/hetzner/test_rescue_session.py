"""RescueSession over real SSH: a loopback SSH server (the lab's, paramiko's server side) whose commands either
run in local bash or get a fixed answer, as another host would give. Covers the rescue proof, host keys kept
out of known_hosts, and the write through a disk's kernel name when it has no by-id link."""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
import pytest

from common.waiting import Deadline
from hetzner.images import ImageSource
from hetzner.install import InstallError, Timeouts, install_talos
from hetzner.keys import md5_fingerprint, public_key_line
from hetzner.probe import TalosState
from hetzner.rescue import HostKeyMismatch, HostKeyPins, NotRescueError, RescueSession, WriteInterrupted
from lab.rescue.ssh import Login, SshServer, generate_host_key
from tests.hetzner.test_install import FakeMachine, closed_port, key, plan, probe_says
from tests.hetzner.test_rescue_write import MIB, RAW, ImageServer, disk, images, sha

__all__ = ["images"]
CLIENT_KEY = key()


@dataclass
class Host:
    """Runs each command it is sent in local bash, or, with `answer` set, only prints that answer."""

    answer: str | None = None
    commands: list[str] = field(default_factory=list)

    def __call__(self, command: str) -> subprocess.Popen[bytes]:
        self.commands.append(command)
        argv = ["printf", "%s", self.answer] if self.answer is not None else ["bash", "-c", command]
        pipe = subprocess.PIPE
        return subprocess.Popen(argv, stdin=pipe, stdout=pipe, stderr=pipe, start_new_session=True)


@dataclass
class SshHost:
    port: int
    host_key: paramiko.PKey
    runner: Host

    def connect(self, pins: HostKeyPins | None = None) -> RescueSession:
        return RescueSession.connect("127.0.0.1", key=CLIENT_KEY, port=self.port, pins=pins)


def ssh_host(runner: Host) -> Iterator[SshHost]:
    host_key, port = generate_host_key(), closed_port()
    server = SshServer("127.0.0.1", port, [host_key], login=Login(keys=(public_key_line(CLIENT_KEY),)), runner=runner)
    server.start()
    yield SshHost(port, host_key, runner)
    server.stop()


@pytest.fixture
def web_server() -> Iterator[SshHost]:
    """An installed system, not the rescue system: hostname web-1, Hetzner's rescue banner absent."""
    yield from ssh_host(Host(answer="web-1\n"))


@pytest.fixture(params=["web-1\n", "rescue\n"], ids=["other-hostname", "no-rescue-banner"])
def impostor(request: pytest.FixtureRequest) -> Iterator[SshHost]:
    yield from ssh_host(Host(answer=request.param))


@pytest.fixture
def local_host() -> Iterator[SshHost]:
    yield from ssh_host(Host())


def test_host_that_is_not_the_rescue_system_refused_after_one_command(impostor: SshHost) -> None:
    with impostor.connect() as session, pytest.raises(NotRescueError) as raised:
        session.prove_rescue()

    hostname = (impostor.runner.answer or "").strip()
    said = f"(hostname {hostname!r}, rescue banner missing); refusing to touch its disks"
    assert f"127.0.0.1 is not the rescue system {said}" in str(raised.value)
    assert len(impostor.runner.commands) == 1 and impostor.runner.commands[0].startswith("hostname;")


def test_install_on_a_host_that_is_not_the_rescue_system_fails_without_touching_it(web_server: SshHost) -> None:
    machine = FakeMachine()
    wanted = plan(ssh_port=web_server.port, timeouts=Timeouts(rescue=1.0, boot=0.0, reset_attempts=1))

    with pytest.raises(InstallError) as raised:
        install_talos(machine, wanted, key=CLIENT_KEY, probe=probe_says(TalosState.DOWN))

    assert "127.0.0.1 is not the rescue system (hostname 'web-1'" in str(raised.value)
    assert machine.calls == ["arm 15", "reset 0"]
    assert web_server.runner.commands and all(c.startswith("hostname;") for c in web_server.runner.commands)


def test_host_key_reported_by_the_api_pinned_and_another_refused(local_host: SshHost) -> None:
    with local_host.connect(HostKeyPins((md5_fingerprint(local_host.host_key),))) as session:
        assert session.run("echo up").output == "up\n"

    other = md5_fingerprint(generate_host_key())
    with pytest.raises(HostKeyMismatch, match=r"offered host key SHA256:.*, not the expected"):
        local_host.connect(HostKeyPins((other,)))


def test_known_hosts_neither_read_nor_written(
    local_host: SshHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    known_hosts = tmp_path / ".ssh" / "known_hosts"
    known_hosts.parent.mkdir()
    stale = f"[127.0.0.1]:{local_host.port} {public_key_line(generate_host_key())}\n"  # the address's old system
    known_hosts.write_text(stale)

    with local_host.connect() as session:
        session.run("true")

    assert known_hosts.read_text() == stale and list(known_hosts.parent.iterdir()) == [known_hosts]


def test_disk_without_by_id_link_written_by_kernel_name_and_said_so(
    local_host: SshHost, images: ImageServer, tmp_path: Path
) -> None:
    path = tmp_path / "disk"
    path.write_bytes(b"\xee" * 8 * MIB)
    target = dataclasses.replace(disk(path), path=str(path), by_id=None, by_id_links=())
    image = ImageSource(f"{images.url}/img.raw.zst", None, None, None)
    lines: list[str] = []

    with local_host.connect() as session:
        written = session.write_image(
            image, target, sha256=sha("/img.raw.zst"), deadline=Deadline.after(60), progress=lines.append
        )

    assert lines[0] == f"{path} has no /dev/disk/by-id link; writing to {path} as listed just now"
    assert written.verified and path.read_bytes()[: len(RAW)] == RAW


class RefusingChannel:
    """A channel whose exec request the server turns down."""

    closed = False

    def set_combine_stderr(self, _combine: bool) -> None:
        pass

    def exec_command(self, _command: str) -> None:
        raise paramiko.SSHException("Channel closed.")

    def close(self) -> None:
        self.closed = True


class RefusingTransport:
    def __init__(self) -> None:
        self.channel = RefusingChannel()

    def is_active(self) -> bool:
        return True

    def open_session(self, timeout: float) -> RefusingChannel:
        return self.channel


class RefusingClient:
    def __init__(self) -> None:
        self.transport = RefusingTransport()

    def get_transport(self) -> RefusingTransport:
        return self.transport


def test_write_whose_command_is_refused_is_an_interrupted_write_and_closes_its_channel(tmp_path: Path) -> None:
    client, path = RefusingClient(), tmp_path / "disk"
    path.write_bytes(bytes(MIB))
    session = RescueSession(client, "127.0.0.1", HostKeyPins())  # type: ignore[arg-type]
    image = ImageSource("http://127.0.0.1:1/img.raw.zst", None, None, None)

    with pytest.raises(WriteInterrupted, match=r"connection lost \(SSHException: Channel closed.\)"):
        session.write_image(image, disk(path), sha256=None, deadline=Deadline.after(5))

    assert client.transport.channel.closed
