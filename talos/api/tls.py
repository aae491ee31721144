"""TLS for the Talos API on the client side: Python's `ssl` (OpenSSL), which negotiates Ed25519.

Two ways to talk to apid:
- maintenance: the node serves a self-signed certificate and asks for none; the server certificate is not
  verified, or is pinned by its SPKI fingerprint (talosctl's `--cert-fingerprint`, checked after connecting);
- authenticated: the server certificate must chain to the cluster's OS CA and name the address dialled, and
  the client presents the talosconfig's certificate (roles in its Organization).
Both offer TLS 1.2+ and ALPN `h2`, which grpc-go servers insist on.
"""

from __future__ import annotations

import base64
import hashlib
import os
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from talos.pki import pem_for_ssl
from talos.talosconfig import TalosContext

MAINTENANCE_COMMON_NAME = "maintenance-service.talos.dev"
"""Subject CN of the certificate apid serves in maintenance mode."""


def maintenance_context() -> ssl.SSLContext:
    """Client context for maintenance mode: no client certificate, server certificate not verified."""
    context = _base_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def authenticated_context(credentials: TalosContext) -> ssl.SSLContext:
    """Client context for a configured node: verify against the OS CA, present the client certificate."""
    missing = [name for name in ("ca", "crt", "key") if not getattr(credentials, name)]
    if missing:
        raise ValueError(f"talosconfig context lacks {', '.join(missing)} (fix: use a context with mTLS credentials)")
    context = _base_context()
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=credentials.ca.decode())
    load_certificate_chain(context, credentials.crt, credentials.key)
    return context


def load_certificate_chain(context: ssl.SSLContext, crt: bytes, key: bytes) -> None:
    """Load a PEM certificate and key (any Talos key label) into `context`.

    `ssl` only loads from files: both go to a private temporary directory that is removed at once.
    """
    with tempfile.TemporaryDirectory(prefix="talos-tls-") as scratch:
        crt_path, key_path = Path(scratch, "crt.pem"), Path(scratch, "key.pem")
        crt_path.write_bytes(crt)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem_for_ssl(key))
        context.load_cert_chain(crt_path, key_path)


def spki_fingerprint(certificate_der: bytes) -> str:
    """The certificate's SPKI fingerprint as talosctl prints and parses it: base64 of SHA-256."""
    public_key = x509.load_der_x509_certificate(certificate_der).public_key()
    spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def is_maintenance_certificate(certificate_der: bytes) -> bool:
    """Whether a server certificate is the one apid serves in maintenance mode."""
    subject = x509.load_der_x509_certificate(certificate_der).subject
    names = subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return any(name.value == MAINTENANCE_COMMON_NAME for name in names)


def _base_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])
    return context
