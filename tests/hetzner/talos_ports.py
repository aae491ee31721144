"""Talos API ports on loopback for the probe and provider tests: a lab Talos node in maintenance mode (the real
API: the probe reads its version), and a TLS server that requires a client certificate, as a configured node's
apid does."""

from __future__ import annotations

import contextlib
import datetime
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lab.images.raw import TalosImage
from lab.talos.node import TalosNode
from lab.talos.storage import MemoryStorage
from lab.talos.testing import FAST

MAINTENANCE_VERSION = "v1.13.9"


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "talos")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def serve(handler: Callable[[socket.socket], None]) -> Iterator[int]:
    """Accept connections on a loopback port and hand each to `handler`; yields the port."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def loop() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn, contextlib.suppress(OSError):
                handler(conn)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


def configured_tls(tmp_path: Path) -> Iterator[int]:
    """A TLS server that requires a client certificate and speaks first (an HTTP/2 SETTINGS frame), like apid."""
    cert, key = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2"])
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cert)

    def handle(conn: socket.socket) -> None:
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # the server's SETTINGS frame
            tls.recv(64)

    yield from serve(handle)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def maintenance_port() -> Iterator[int]:
    """A lab Talos node in maintenance mode on 127.0.0.1, running MAINTENANCE_VERSION."""
    node = TalosNode("127.0.0.1", MemoryStorage(TalosImage(MAINTENANCE_VERSION)), timings=FAST, port=free_port())
    node.power_on()
    node.wait_for(lambda n: n.stage.value == "maintenance")
    yield node.port
    node.close()


@pytest.fixture
def configured_port(tmp_path: Path) -> Iterator[int]:
    """A port answering like a configured Talos (client certificate required)."""
    yield from configured_tls(tmp_path)
