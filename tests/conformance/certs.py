"""Describe certificates and keys field by field, to compare ours with Talos' as an outside observer.

Serial numbers, key ids, keys and dates differ between any two bundles; everything else (algorithms,
names and their ASN.1 string types, extensions in order with their criticality, validity length, PEM
labels) must match.
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from talos.pki import pem_for_ssl


def describe_certificate(pem: bytes) -> dict[str, Any]:
    """The invariant facts of a certificate (nothing random, nothing time-of-day)."""
    crt = x509.load_pem_x509_certificate(pem)
    return {
        "version": crt.version.name,
        "signature": crt.signature_algorithm_oid.dotted_string,
        "subject": _name(crt.subject),
        "issuer": _name(crt.issuer),
        "public_key": _key_type(crt.public_key()),
        "validity_hours": (crt.not_valid_after_utc - crt.not_valid_before_utc).total_seconds() / 3600,
        "serial_below_2_128": 0 < crt.serial_number < 2**128,
        "extensions": [_extension(ext) for ext in crt.extensions],
    }


def describe_private_key(pem: bytes) -> dict[str, str]:
    """The PEM label Talos wrote and the key type inside."""
    label = pem.split(b"-----BEGIN ", 1)[1].split(b"-----", 1)[0].decode()
    return {"label": label, "type": _key_type(load_pem_private_key(pem_for_ssl(pem), None).public_key())}


def describe_bundle(data: dict[str, Any]) -> dict[str, Any]:
    """Every CA and key of a parsed secrets.yaml, plus the shape of its tokens and secrets."""
    certs = data["certs"]
    described: dict[str, Any] = {
        name: {
            "crt": describe_certificate(base64.b64decode(pair["crt"])),
            "key": describe_private_key(base64.b64decode(pair["key"])),
        }
        for name, pair in certs.items()
        if name != "k8sserviceaccount"
    }
    described["k8sserviceaccount"] = describe_private_key(base64.b64decode(certs["k8sserviceaccount"]["key"]))
    described["layout"] = {section: list(values) for section, values in data.items() if section != "certs"}
    described["lengths"] = {
        f"{section}.{key}": len(value)
        for section, values in data.items()
        if section != "certs"
        for key, value in values.items()
    }
    return described


def _name(name: x509.Name) -> dict[str, str]:
    """Readable, and as DER, which also fixes each value's ASN.1 string type (Go picks PrintableString)."""
    return {"text": name.rfc4514_string(), "der": name.public_bytes().hex()}


def _key_type(key: object) -> str:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ecdsa-{key.curve.name}"
    if isinstance(key, rsa.RSAPublicKey):
        return f"rsa-{key.key_size}"
    return type(key).__name__


def _extension(ext: x509.Extension[x509.ExtensionType]) -> dict[str, Any]:
    """OID, criticality and DER value; for key identifiers (random) only their length."""
    value = ext.value
    facts: dict[str, Any] = {"oid": ext.oid.dotted_string, "critical": ext.critical}
    if isinstance(value, x509.SubjectKeyIdentifier):
        facts["key_id_length"] = len(value.digest)
    elif isinstance(value, x509.AuthorityKeyIdentifier):
        facts["key_id_length"] = len(value.key_identifier or b"")
    else:
        facts["der"] = value.public_bytes().hex()
    return facts
