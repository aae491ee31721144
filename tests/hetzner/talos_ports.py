"""Loopback TLS servers that answer like Talos' apid: maintenance mode (no client certificate asked) and
configured mode (client certificate required). Shared by the probe and provider tests."""

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


def tls_server(tmp_path: Path, require_client_cert: bool) -> Iterator[int]:
    """A TLS server that speaks first (an HTTP/2 SETTINGS frame), like apid; yields its port."""
    cert, key = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2"])
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cert)

    def handle(conn: socket.socket) -> None:
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # the server's SETTINGS frame
            tls.recv(64)

    yield from serve(handle)


def silent_tls(tmp_path: Path) -> Iterator[int]:
    """A TLS server that asks no client certificate and never speaks (like the lab's Talos stand-in)."""
    cert, key = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def handle(conn: socket.socket) -> None:
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.settimeout(2)
            tls.recv(1)

    yield from serve(handle)


@pytest.fixture
def maintenance_port(tmp_path: Path) -> Iterator[int]:
    """A port answering like Talos in maintenance mode."""
    yield from tls_server(tmp_path, require_client_cert=False)


@pytest.fixture
def configured_port(tmp_path: Path) -> Iterator[int]:
    """A port answering like a configured Talos (client certificate required)."""
    yield from tls_server(tmp_path, require_client_cert=True)
