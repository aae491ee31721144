"""An SSH server (paramiko's server side) for the lab's machines.

Root logs in with the password or one of the keys the API armed; `exec` and `shell` requests run through
a runner (the rescue sandbox) with stdin, stdout, stderr and the exit status relayed. When the client's
connection goes away, the command's process group gets SIGHUP, as with OpenSSH. Without a runner the
server refuses every login (an installed OS whose credentials the lab does not know).
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import io
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lab.listener import Listener
from lab.processes import writes_block_device

Runner = Callable[[str], subprocess.Popen[bytes]]


@dataclass(frozen=True)
class DropFault:
    """A fault switch that cuts the connection while a command writes a disk."""

    delay: Callable[[], float | None]
    """Seconds into a command after which the cut happens, at the first moment one of its processes holds a
    block device open for writing, while the switch is armed; None when it is not."""
    fire: Callable[[], bool]
    """Consume the switch; False when it is no longer armed."""


NO_DROP = DropFault(lambda: None, lambda: False)
_CHUNK = 32768


def generate_host_key() -> paramiko.PKey:
    """A fresh Ed25519 host key."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    return paramiko.Ed25519Key.from_private_key(io.StringIO(pem.decode()))


def parse_public_key(line: str) -> paramiko.PKey:
    """A public key from an OpenSSH `authorized_keys` line."""
    parts = line.split()
    if len(parts) < 2:
        raise ValueError("public key is not in OpenSSH format 'type base64 [comment]'")
    return paramiko.PKey.from_type_string(parts[0], base64.b64decode(parts[1]))


@dataclass(frozen=True)
class Login:
    """Who may log in as root."""

    password: str | None = field(default=None, repr=False)
    keys: tuple[str, ...] = ()
    """OpenSSH public key lines."""


class SshServer:
    """Listens on `host:port` until stopped."""

    def __init__(
        self,
        host: str,
        port: int,
        host_keys: list[paramiko.PKey],
        *,
        login: Login | None = None,
        runner: Runner | None = None,
        banner: str = "",
        drop: DropFault = NO_DROP,
    ) -> None:
        self.host, self.port, self.host_keys = host, port, host_keys
        self.login, self.runner, self.banner = login, runner, banner
        self.drop = drop
        self._allowed = [parse_public_key(k).asbytes() for k in (login.keys if login else ())]
        self._listener: Listener | None = None
        self._transports: list[paramiko.Transport] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()

    def start(self) -> None:
        self._listener = Listener(self.host, self.port, self._serve, f"ssh-{self.host}")

    def stop(self) -> None:
        """Stop listening (the port is free when this returns) and cut every connection."""
        self._closing.set()
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        with self._lock:
            transports, self._transports = self._transports, []
        for transport in transports:
            transport.close()

    def _serve(self, conn: socket.socket) -> None:
        transport = paramiko.Transport(conn)
        for key in self.host_keys:
            transport.add_server_key(key)
        with self._lock:
            if self._closing.is_set():
                transport.close()
                return
            self._transports.append(transport)
        try:
            transport.start_server(server=_Interface(self, transport))
        except (paramiko.SSHException, EOFError, OSError):
            transport.close()
            return
        channels: list[paramiko.Channel] = []  # held: paramiko closes a channel that is garbage-collected
        while transport.is_active() and not self._closing.is_set():
            channel = transport.accept(0.5)
            channels = [c for c in channels if not c.closed] + ([channel] if channel is not None else [])

    def check_password(self, username: str, password: str) -> bool:
        wanted = self.login.password if self.login else None
        return username == "root" and wanted is not None and hmac.compare_digest(password, wanted)

    def check_key(self, username: str, key: paramiko.PKey) -> bool:
        return username == "root" and key.asbytes() in self._allowed

    def run(self, channel: paramiko.Channel, transport: paramiko.Transport, command: str) -> None:
        """Run one command on a channel; always ends with an exit status and a closed channel."""
        assert self.runner is not None
        process = self.runner(command)
        pumps = [
            threading.Thread(target=_pump_out, args=(process.stdout, channel.sendall), daemon=True),
            threading.Thread(target=_pump_out, args=(process.stderr, channel.sendall_stderr), daemon=True),
        ]
        for pump in pumps:
            pump.start()
        threading.Thread(target=_pump_in, args=(channel, process), daemon=True).start()
        drop_after = self.drop.delay()
        started = time.monotonic()
        while process.poll() is None:
            elapsed = time.monotonic() - started
            if drop_after is not None and elapsed >= drop_after and writes_block_device(process.pid):
                drop_after = None
                if self.drop.fire():
                    transport.close()
            if not transport.is_active() or channel.closed:
                _hang_up(process)
                process.wait()
                return
            time.sleep(0.05)
        for pump in pumps:
            pump.join()
        try:
            channel.send_exit_status(process.returncode if process.returncode >= 0 else 128 - process.returncode)
            channel.shutdown_write()
            channel.close()
        except (OSError, EOFError):
            pass


class _Interface(paramiko.ServerInterface):
    def __init__(self, server: SshServer, transport: paramiko.Transport) -> None:
        self.server, self.transport = server, transport

    def get_banner(self) -> tuple[str | None, str | None]:
        return (self.server.banner or None, "en-US")

    def get_allowed_auths(self, username: str) -> str:
        return "publickey,password"

    def check_auth_password(self, username: str, password: str) -> int:
        ok = self.server.check_password(username, password)
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        ok = self.server.check_key(username, key)
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session" and self.server.runner is not None:
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        text = command.decode("utf-8", "replace")
        threading.Thread(target=self.server.run, args=(channel, self.transport, text), daemon=True).start()
        return True

    def check_channel_shell_request(self, channel: paramiko.Channel) -> bool:
        threading.Thread(
            target=self.server.run, args=(channel, self.transport, "exec /bin/bash -l"), daemon=True
        ).start()
        return True

    def check_channel_pty_request(self, *args: object) -> bool:
        return True


def _pump_out(stream: IO[bytes] | None, send: Callable[[bytes], None]) -> None:
    assert stream is not None
    try:
        while chunk := os.read(stream.fileno(), _CHUNK):
            send(chunk)
    except (OSError, EOFError):
        pass
    finally:
        stream.close()


def _pump_in(channel: paramiko.Channel, process: subprocess.Popen[bytes]) -> None:
    assert process.stdin is not None
    try:
        while data := channel.recv(_CHUNK):
            process.stdin.write(data)
            process.stdin.flush()
    except (OSError, EOFError):
        pass
    finally:
        with contextlib.suppress(OSError):
            process.stdin.close()


def _hang_up(process: subprocess.Popen[bytes]) -> None:
    """What sshd does to a session whose connection is gone: SIGHUP to the process group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGHUP)
