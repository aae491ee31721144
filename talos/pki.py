"""Certificates and private keys shaped the way Talos makes them.

Mirrors siderolabs/crypto's x509 package as Talos v1.13 uses it: self-signed CAs whose subject holds only
Organization, leaves signed by them with the usages asked for, and private keys under the PEM labels Talos
writes and reads: `ED25519 PRIVATE KEY` (PKCS#8 inside), `EC PRIVATE KEY` (SEC1), `RSA PRIVATE KEY` (PKCS#1)
and plain `PRIVATE KEY` (PKCS#8). Python's `cryptography` and `ssl` do not know the Ed25519 label, so keys
are relabelled on the way in and out.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from talos.errors import SecretsError

KeyAlgorithm = Literal["ed25519", "ecdsa-p256"]
KeyUsageName = Literal[
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
]
ExtKeyUsageName = Literal["server_auth", "client_auth"]
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

CA_LIFETIME = timedelta(hours=87600)
"""Talos' CA validity (secrets.CAValidityTime): ten years."""

ED25519_LABEL = "ED25519 PRIVATE KEY"
KEY_LABELS = (ED25519_LABEL, "EC PRIVATE KEY", "RSA PRIVATE KEY", "PRIVATE KEY")
"""PEM labels Talos parses private keys from (crypto x509 GetKey)."""

_EXT_KEY_USAGES: dict[str, x509.ObjectIdentifier] = {
    "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
}
_PEM_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
# Characters ASN.1 PrintableString allows; Go encodes a subject value as PrintableString when it can.
_PRINTABLE = re.compile(r"[A-Za-z0-9 '()+,\-./:=?]*")


@dataclass(frozen=True)
class CertAndKey:
    """A PEM certificate and its PEM private key under Talos' label (key is b"" when only the cert is known)."""

    crt: bytes
    key: bytes = field(default=b"", repr=False)

    def certificate(self) -> x509.Certificate:
        """The parsed certificate (the first PEM block)."""
        try:
            return x509.load_pem_x509_certificate(self.crt)
        except ValueError:
            raise SecretsError("certificate is not a PEM-encoded X.509 certificate") from None

    def private_key(self) -> PrivateKey:
        """The parsed private key."""
        return load_private_key(self.key)


def generate_ca(
    algorithm: KeyAlgorithm,
    organization: str | None,
    *,
    now: datetime | None = None,
    lifetime: timedelta = CA_LIFETIME,
) -> CertAndKey:
    """A self-signed CA exactly as Talos makes one (crypto x509 NewSelfSignedCertificateAuthority).

    Subject and issuer hold only Organization (none at all when `organization` is None, as for the
    aggregator CA); random serial below 2^128 and random 20-byte subject key id; valid from `now`.
    """
    key = _new_key(algorithm)
    name = _name((organization,) if organization else (), None)
    start = _utc(now)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + lifetime)
        .add_extension(_key_usage(("digital_signature", "key_cert_sign")), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(_EXT_KEY_USAGES.values())), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier(os.urandom(20)), critical=False)
    )
    crt = builder.sign(key, _signature_hash(key))
    return CertAndKey(crt.public_bytes(serialization.Encoding.PEM), private_key_pem(key))


def issue_certificate(
    ca: CertAndKey,
    *,
    key_algorithm: KeyAlgorithm,
    organizations: Sequence[str] = (),
    common_name: str | None = None,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str | ipaddress.IPv4Address | ipaddress.IPv6Address] = (),
    extended_key_usages: Sequence[ExtKeyUsageName | x509.ObjectIdentifier] = ("server_auth", "client_auth"),
    key_usage: Sequence[KeyUsageName] = ("digital_signature",),
    lifetime: timedelta,
    not_before: datetime | None = None,
) -> CertAndKey:
    """A leaf certificate with a fresh key, signed by `ca` as Talos signs one (crypto x509 NewKeyPair).

    The leaf is not a CA (no BasicConstraints, no subject key id); it names the CA's subject key id as its
    authority key id; SANs list DNS names then IPs and are critical only when the subject is empty.
    """
    if not ca.key:
        raise SecretsError("the CA has no private key, so it cannot sign (fix: issue from a CA with its key)")
    ca_crt = ca.certificate()
    ca_key = ca.private_key()
    key = _new_key(key_algorithm)
    subject = _name(organizations, common_name)
    start = _utc(not_before)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_crt.subject)
        .public_key(key.public_key())
        .serial_number(_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + lifetime)
    )
    if key_usage:
        builder = builder.add_extension(_key_usage(key_usage), critical=True)
    if extended_key_usages:
        usages = [_EXT_KEY_USAGES[u] if isinstance(u, str) else u for u in extended_key_usages]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    try:
        ca_key_id = ca_crt.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        ca_key_id = None
    if ca_key_id:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier(ca_key_id, None, None), critical=False)
    if dns_names or ip_addresses:
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        names += [x509.IPAddress(ipaddress.ip_address(str(a))) for a in ip_addresses]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=len(subject) == 0)
    crt = builder.sign(ca_key, _signature_hash(ca_key))
    return CertAndKey(crt.public_bytes(serialization.Encoding.PEM), private_key_pem(key))


def load_private_key(pem: bytes) -> PrivateKey:
    """Parse a PEM private key under any label Talos reads, `ED25519 PRIVATE KEY` included."""
    match = _PEM_LABEL.search(pem)
    if match is None:
        raise SecretsError("private key is not PEM (no '-----BEGIN ... PRIVATE KEY-----' line)")
    label = match[1].decode()
    if label not in KEY_LABELS:
        raise SecretsError(f"PEM label {label!r} is not a private key label Talos reads ({', '.join(KEY_LABELS)})")
    if label == ED25519_LABEL:
        pem = pem.replace(ED25519_LABEL.encode(), b"PRIVATE KEY")
    try:
        # OpenSSL's RSA check also tests p and q for primality: 0.2 s per 4096-bit key. Check instead what
        # Go's ParsePKCS1PrivateKey (so Talos) checks: that the key's numbers agree, which catches damage.
        key = serialization.load_pem_private_key(pem, password=None, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SecretsError(f"private key under label {label!r} does not parse (damaged or encrypted)") from None
    if isinstance(key, rsa.RSAPrivateKey) and not _rsa_numbers_agree(key.private_numbers()):
        raise SecretsError(f"private key under label {label!r} is inconsistent (its RSA numbers disagree)")
    if label == ED25519_LABEL and not isinstance(key, ed25519.Ed25519PrivateKey):
        raise SecretsError(f"label {ED25519_LABEL!r} holds a key of type {_key_kind(key)}, not Ed25519")
    if not isinstance(key, PrivateKey):
        raise SecretsError(f"private key of type {_key_kind(key)} is not one Talos uses (Ed25519, ECDSA or RSA)")
    return key


def private_key_pem(key: PrivateKey) -> bytes:
    """PEM under the label Talos writes: Ed25519 as PKCS#8 labelled `ED25519 PRIVATE KEY`, EC as SEC1, RSA as PKCS#1."""
    pem = serialization.Encoding.PEM
    if isinstance(key, ed25519.Ed25519PrivateKey):
        pkcs8 = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return pkcs8.replace(b"PRIVATE KEY", ED25519_LABEL.encode())
    if isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        return key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    raise TypeError(f"unsupported private key type {type(key).__name__}")


def pem_for_ssl(key_pem: bytes) -> bytes:
    """The key as PKCS#8 `PRIVATE KEY` PEM, which Python's `ssl` loads (it refuses `ED25519 PRIVATE KEY`)."""
    return load_private_key(key_pem).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_key_matches(crt: x509.Certificate, key: PrivateKey) -> bool:
    """Whether `key` is the private half of the certificate's public key."""
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return crt.public_key().public_bytes(der, spki) == key.public_key().public_bytes(der, spki)


def _new_key(algorithm: KeyAlgorithm) -> ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey:
    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unknown key algorithm {algorithm!r} (expected 'ed25519' or 'ecdsa-p256')")


def _signature_hash(signer: PrivateKey) -> hashes.HashAlgorithm | None:
    """SHA-256 for ECDSA and RSA signers (ecdsa-with-SHA256 as Talos' CAs use), none for Ed25519."""
    return None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _name(organizations: Sequence[str], common_name: str | None) -> x509.Name:
    """Subject as Go's pkix.Name writes it: all Organization values in one RDN, then CommonName."""
    rdns = []
    orgs = list(dict.fromkeys(organizations))
    if orgs:
        rdns.append(x509.RelativeDistinguishedName([_attribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]))
    if common_name:
        rdns.append(x509.RelativeDistinguishedName([_attribute(NameOID.COMMON_NAME, common_name)]))
    return x509.Name(rdns)


def _attribute(oid: x509.ObjectIdentifier, value: str) -> x509.NameAttribute:
    # cryptography defaults to UTF8String; Go (and so Talos) uses PrintableString whenever the value allows.
    kind = _ASN1Type.PrintableString if _PRINTABLE.fullmatch(value) else _ASN1Type.UTF8String
    return x509.NameAttribute(oid, value, kind)


def _key_usage(names: Sequence[KeyUsageName]) -> x509.KeyUsage:
    flags = {name: name in names for name in get_args(KeyUsageName)}
    return x509.KeyUsage(**flags, encipher_only=False, decipher_only=False)


def _serial_number() -> int:
    """Random serial below 2^128 as Talos draws it (never 0, which `cryptography` refuses)."""
    return secrets.randbelow(2**128 - 1) + 1


def _utc(moment: datetime | None) -> datetime:
    """`moment` (default now; naive means UTC) in UTC, truncated to whole seconds as X.509 stores it."""
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def _rsa_numbers_agree(numbers: rsa.RSAPrivateNumbers) -> bool:
    p, q, d = numbers.p, numbers.q, numbers.d
    public = numbers.public_numbers
    return (
        p * q == public.n
        and d * public.e % math.lcm(p - 1, q - 1) == 1
        and numbers.dmp1 == d % (p - 1)
        and numbers.dmq1 == d % (q - 1)
        and numbers.iqmp * q % p == 1
    )


def _key_kind(key: object) -> str:
    return type(key).__name__.removeprefix("_").replace("PrivateKey", "") or "unknown"
