from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from talos.secrets import SecretsBundle

SECRETS_DATA = Path(__file__).parents[1] / "data" / "secrets"
TALOSCTL_SECRETS = SECRETS_DATA / "talosctl-secrets.yaml"
"""A throwaway bundle written by Talos v1.13.9's own code (see tests/data/secrets/README.md)."""
TALOSCTL_TALOSCONFIG = SECRETS_DATA / "talosctl-talosconfig.yaml"
GENERATED_AT = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def secrets_bundle() -> SecretsBundle:
    """One generated bundle for the whole run (its RSA-4096 key is the slow part), every CA from GENERATED_AT."""
    return SecretsBundle.generate(now=GENERATED_AT)


@pytest.fixture(scope="session")
def talosctl_secrets_text() -> str:
    return TALOSCTL_SECRETS.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def talosctl_bundle(talosctl_secrets_text: str) -> SecretsBundle:
    return SecretsBundle.from_yaml(talosctl_secrets_text)


def key_kind(key: object) -> tuple[str, object]:
    """Algorithm and size/curve of a public or private key."""
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return ("ed25519", None)
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return ("ecdsa", key.curve.name)
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return ("rsa", key.key_size)
    raise AssertionError(f"unexpected key {type(key).__name__}")


def certificate_shape(crt: x509.Certificate) -> tuple[object, ...]:
    """Everything Talos fixes about a certificate; the random parts (key, serial, key ids) only by size."""
    extensions = []
    for ext in crt.extensions:
        value: object = ext.value
        if isinstance(value, x509.SubjectKeyIdentifier):
            value = ("ski", len(value.digest))
        elif isinstance(value, x509.AuthorityKeyIdentifier):
            value = ("aki", len(value.key_identifier or b""), value.authority_cert_issuer)
        extensions.append((ext.oid, ext.critical, value))
    return (
        crt.version,
        crt.signature_algorithm_oid,
        key_kind(crt.public_key()),
        crt.subject.public_bytes(),
        crt.issuer.public_bytes(),
        crt.not_valid_after_utc - crt.not_valid_before_utc,
        crt.serial_number < 2**128,
        tuple(extensions),
    )
