"""What runs on a machine once its firmware picked a boot device: the contract and the stand-ins.

A disk holding a Talos image starts the boot handler: by default `TalosStandIn`, which only listens with
TLS on the machine's Talos API port. The lab's Talos node (`lab/talos`) replaces it with
`register_boot_handler`. A disk holding another installed OS starts `InstalledOs`: an SSH server with the
OS's own host key that refuses every login.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import paramiko
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from lab.disks import Disk
from lab.images.raw import TalosImage
from lab.listener import Listener
from lab.rescue.ssh import SshServer

if TYPE_CHECKING:
    from lab.datacenter import Machine


class RunningSystem(Protocol):
    """Something booted on a machine; the machine stops it on reset, power off or reboot."""

    def stop(self) -> None: ...


@dataclass(frozen=True)
class BootContext:
    """What a boot handler gets: the machine, the disk it booted from and the image found there.

    The machine offers `address`, `uuid`, `user_data` (Cloud), `disks`, `talos_port`, and
    `os_power("reboot" | "poweroff" | "halt")` for the booted system to reboot or stop itself. `os_power`
    stops the running system (calls its `stop()`) before it returns: call it from a thread `stop()` does
    not wait for.
    """

    machine: Machine
    disk: Disk
    image: TalosImage


BootHandler = Callable[[BootContext], RunningSystem]

_handler: BootHandler | None = None
_handler_lock = threading.Lock()


def register_boot_handler(handler: BootHandler | None) -> None:
    """Make `handler` start whatever a Talos disk boots (None: back to the TLS stand-in)."""
    global _handler
    with _handler_lock:
        _handler = handler


@contextlib.contextmanager
def boot_handler_in_use(handler: BootHandler) -> Iterator[None]:
    """Use `handler` for Talos disks inside the block, then restore whatever was registered before."""
    global _handler
    with _handler_lock:
        previous, _handler = _handler, handler
    try:
        yield
    finally:
        with _handler_lock:
            _handler = previous


def current_boot_handler() -> BootHandler:
    with _handler_lock:
        return _handler or TalosStandIn.boot


class TalosStandIn:
    """Listens with TLS (ALPN h2, self-signed Ed25519 certificate) on the Talos API port; serves nothing."""

    def __init__(self, host: str, port: int, image: TalosImage) -> None:
        self.host, self.port, self.image = host, port, image
        self._context = _self_signed_context(host)
        self._listener = Listener(host, port, self._handshake, f"talos-{host}")

    @classmethod
    def boot(cls, context: BootContext) -> TalosStandIn:
        return cls(context.machine.address, context.machine.talos_port, context.image)

    def stop(self) -> None:
        self._listener.stop()

    def _handshake(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            with self._context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (OSError, ssl.SSLError):
            conn.close()


class InstalledOs:
    """An installed OS booted from disk: SSH answers with the OS's host key and refuses every login."""

    def __init__(self, host: str, port: int, host_key: paramiko.PKey, hostname: str) -> None:
        self.hostname = hostname
        self._ssh = SshServer(host, port, [host_key])
        self._ssh.start()

    def stop(self) -> None:
        self._ssh.stop()


def _self_signed_context(host: str) -> ssl.SSLContext:
    key = Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "maintenance-service.talos.dev")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=24))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), False)
        .sign(key, None)
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_alpn_protocols(["h2"])
    with tempfile.TemporaryDirectory() as tmp:
        cert_path, key_path = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        context.load_cert_chain(cert_path, key_path)
    return context
