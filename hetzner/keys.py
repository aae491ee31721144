"""The rescue SSH key: load the private key from text, derive what Robot and Cloud call it by."""

from __future__ import annotations

import base64
import hashlib
import io

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from hetzner.errors import HetznerError


class SshKeyError(HetznerError):
    """The rescue SSH private key cannot be used."""


def load_private_key(text: str) -> paramiko.PKey:
    """Load an unencrypted OpenSSH or PEM private key (Ed25519, ECDSA or RSA) from its text.

    Errors never quote the key: they name the problem and the fix.
    """
    data = text.strip().encode() + b"\n"
    try:
        try:
            loaded = serialization.load_ssh_private_key(data, password=None)
        except ValueError:
            loaded = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        reason = "it is encrypted" if "encrypted" in str(error).lower() or "password" in str(error).lower() else ""
        raise SshKeyError(
            "the rescue SSH private key is not an unencrypted OpenSSH or PEM private key"
            + (f" ({reason})" if reason else "")
            + " (fix: set it from a key file without passphrase, e.g. `ssh-keygen -t ed25519 -N ''`)"
        ) from None
    kinds: list[tuple[type, type[paramiko.PKey]]] = [
        (ed25519.Ed25519PrivateKey, paramiko.Ed25519Key),
        (ec.EllipticCurvePrivateKey, paramiko.ECDSAKey),
        (rsa.RSAPrivateKey, paramiko.RSAKey),
    ]
    for crypto_type, key_class in kinds:
        if isinstance(loaded, crypto_type):
            return key_class.from_private_key(io.StringIO(data.decode()))
    raise SshKeyError(f"the rescue SSH private key type {type(loaded).__name__} is not supported (fix: use ed25519)")


def public_key_line(key: paramiko.PKey, comment: str = "") -> str:
    """The OpenSSH public key line (`ssh-ed25519 AAAA... comment`)."""
    return f"{key.get_name()} {key.get_base64()}" + (f" {comment}" if comment else "")


def md5_fingerprint(public_key: str | paramiko.PKey) -> str:
    """The legacy MD5 fingerprint, colon-separated hex: how Robot and Cloud name SSH keys."""
    blob = public_key.asbytes() if isinstance(public_key, paramiko.PKey) else base64.b64decode(public_key.split()[1])
    return ":".join(f"{byte:02x}" for byte in hashlib.md5(blob).digest())


def sha256_fingerprint(key: paramiko.PKey) -> str:
    """The OpenSSH SHA256 fingerprint (`SHA256:base64`), for progress lines and host key pins."""
    return str(key.fingerprint)
