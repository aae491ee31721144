import base64
import ipaddress
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, SignatureAlgorithmOID

from talos.errors import SecretsError
from talos.pki import (
    CA_LIFETIME,
    CertAndKey,
    generate_ca,
    issue_certificate,
    load_private_key,
    pem_for_ssl,
    private_key_pem,
    public_key_matches,
)
from talos.secrets import SecretsBundle
from tests.talos.conftest import GENERATED_AT, key_kind

NOW = datetime(2026, 5, 4, 3, 2, 1, 987654, tzinfo=UTC)


@pytest.fixture(scope="module")
def ed25519_ca() -> CertAndKey:
    return generate_ca("ed25519", "talos", now=NOW)


@pytest.fixture(scope="module")
def ecdsa_ca() -> CertAndKey:
    return generate_ca("ecdsa-p256", "kubernetes", now=NOW)


def _ext(crt: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.Extension[x509.ExtensionType]:
    return crt.extensions.get_extension_for_class(kind)


def _pem_label(pem: bytes) -> str:
    return pem.split(b"\n", 1)[0].decode().removeprefix("-----BEGIN ").removesuffix("-----")


def test_generate_ca_ed25519_has_talos_ca_shape(ed25519_ca: CertAndKey) -> None:
    crt = ed25519_ca.certificate()
    assert crt.signature_algorithm_oid == SignatureAlgorithmOID.ED25519
    assert crt.subject == crt.issuer == x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "talos")])
    assert 0 < crt.serial_number < 2**128
    assert _ext(crt, x509.BasicConstraints).critical and _ext(crt, x509.BasicConstraints).value.ca
    usage = _ext(crt, x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.key_cert_sign
    assert not (usage.value.key_encipherment or usage.value.crl_sign or usage.value.content_commitment)
    assert list(_ext(crt, x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    ]
    assert len(_ext(crt, x509.SubjectKeyIdentifier).value.digest) == 20
    with pytest.raises(x509.ExtensionNotFound):
        crt.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    crt.verify_directly_issued_by(crt)


def test_generate_ca_validity_starts_at_now_truncated_and_lasts_ten_years(ed25519_ca: CertAndKey) -> None:
    crt = ed25519_ca.certificate()
    assert crt.not_valid_before_utc == NOW.replace(microsecond=0)
    assert crt.not_valid_after_utc - crt.not_valid_before_utc == CA_LIFETIME == timedelta(hours=87600)


def test_generate_ca_subject_key_ids_are_random(ecdsa_ca: CertAndKey) -> None:
    other = generate_ca("ecdsa-p256", "kubernetes", now=NOW)
    ski = [_ext(ca.certificate(), x509.SubjectKeyIdentifier).value.digest for ca in (ecdsa_ca, other)]
    assert ski[0] != ski[1]


def test_generate_ca_without_organization_has_empty_subject() -> None:
    crt = generate_ca("ecdsa-p256", None, now=NOW).certificate()
    assert crt.subject == crt.issuer == x509.Name([])


def test_generate_ca_ecdsa_uses_p256_sha256_and_sec1_key(ecdsa_ca: CertAndKey) -> None:
    crt = ecdsa_ca.certificate()
    assert crt.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256
    assert key_kind(crt.public_key()) == ("ecdsa", "secp256r1")
    assert _pem_label(ecdsa_ca.key) == "EC PRIVATE KEY"
    crt.verify_directly_issued_by(crt)


def test_generate_ca_subject_is_printable_string_as_go_writes_it(ed25519_ca: CertAndKey) -> None:
    # O=talos: SET { SEQUENCE { OID 2.5.4.10, PrintableString "talos" } }
    printable_organization = bytes.fromhex("06 03 55 04 0a 13 05") + b"talos"
    assert ed25519_ca.certificate().subject.public_bytes().endswith(printable_organization)


def test_ed25519_key_is_written_under_talos_label_wrapping_pkcs8(ed25519_ca: CertAndKey) -> None:
    assert _pem_label(ed25519_ca.key) == "ED25519 PRIVATE KEY"
    assert ed25519_ca.key.splitlines()[1].startswith(b"MC4CAQAwBQYDK2Vw")  # PKCS#8 Ed25519
    assert ed25519_ca.key.endswith(b"-----END ED25519 PRIVATE KEY-----\n")


def test_issue_certificate_leaf_chains_to_ca_with_requested_usages(ecdsa_ca: CertAndKey) -> None:
    leaf = issue_certificate(
        ecdsa_ca,
        key_algorithm="ecdsa-p256",
        organizations=("system:masters",),
        common_name="admin",
        key_usage=("digital_signature", "key_encipherment"),
        extended_key_usages=("client_auth",),
        lifetime=timedelta(hours=8760),
        not_before=NOW - timedelta(seconds=10),
    )
    crt, ca = leaf.certificate(), ecdsa_ca.certificate()
    crt.verify_directly_issued_by(ca)
    assert crt.subject.rfc4514_string() == "CN=admin,O=system:masters"
    assert crt.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256
    assert key_kind(crt.public_key()) == ("ecdsa", "secp256r1")
    assert crt.not_valid_before_utc == (NOW - timedelta(seconds=10)).replace(microsecond=0)
    assert crt.not_valid_after_utc - crt.not_valid_before_utc == timedelta(hours=8760)
    usage = _ext(crt, x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment and not usage.key_cert_sign
    assert list(_ext(crt, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert public_key_matches(crt, leaf.private_key())


def test_issue_certificate_leaf_is_not_a_ca_and_names_its_authority_key(ed25519_ca: CertAndKey) -> None:
    crt = issue_certificate(ed25519_ca, key_algorithm="ed25519", lifetime=timedelta(hours=24)).certificate()
    present = {ext.oid for ext in crt.extensions}
    assert x509.BasicConstraints.oid not in present and x509.SubjectKeyIdentifier.oid not in present
    ca_ski = _ext(ed25519_ca.certificate(), x509.SubjectKeyIdentifier).value.digest
    assert _ext(crt, x509.AuthorityKeyIdentifier).value.key_identifier == ca_ski
    assert list(_ext(crt, x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    ]


def test_issue_certificate_lists_dns_names_then_ips(ed25519_ca: CertAndKey) -> None:
    crt = issue_certificate(
        ed25519_ca,
        key_algorithm="ed25519",
        common_name="cp-1",
        dns_names=("cp-1", "cp-1.example"),
        ip_addresses=("10.0.0.2", ipaddress.ip_address("2001:db8::2")),
        extended_key_usages=(ExtendedKeyUsageOID.SERVER_AUTH,),
        lifetime=timedelta(hours=24),
    ).certificate()
    san = _ext(crt, x509.SubjectAlternativeName)
    assert not san.critical
    assert [str(getattr(name, "value", name)) for name in san.value] == [
        "cp-1",
        "cp-1.example",
        "10.0.0.2",
        "2001:db8::2",
    ]


def test_issue_certificate_with_empty_subject_marks_sans_critical(ed25519_ca: CertAndKey) -> None:
    crt = issue_certificate(
        ed25519_ca, key_algorithm="ed25519", ip_addresses=("127.0.0.1",), lifetime=timedelta(hours=1)
    ).certificate()
    assert crt.subject == x509.Name([])
    assert _ext(crt, x509.SubjectAlternativeName).critical


def test_issue_certificate_with_several_organizations_keeps_them_in_one_rdn(ed25519_ca: CertAndKey) -> None:
    crt = issue_certificate(
        ed25519_ca, key_algorithm="ed25519", organizations=("os:reader", "os:operator"), lifetime=timedelta(hours=1)
    ).certificate()
    assert len(crt.subject.rdns) == 1
    assert {a.value for a in crt.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)} == {
        "os:reader",
        "os:operator",
    }


def test_issue_certificate_ed25519_leaf_from_ecdsa_ca_verifies(ecdsa_ca: CertAndKey) -> None:
    leaf = issue_certificate(ecdsa_ca, key_algorithm="ed25519", lifetime=timedelta(hours=1))
    leaf.certificate().verify_directly_issued_by(ecdsa_ca.certificate())
    assert key_kind(leaf.private_key()) == ("ed25519", None)


def test_issue_certificate_from_ca_without_key_is_refused(ed25519_ca: CertAndKey) -> None:
    with pytest.raises(SecretsError, match="the CA has no private key"):
        issue_certificate(CertAndKey(ed25519_ca.crt), key_algorithm="ed25519", lifetime=timedelta(hours=1))


def test_issue_certificate_unknown_key_algorithm_is_refused(ed25519_ca: CertAndKey) -> None:
    with pytest.raises(ValueError, match="unknown key algorithm 'rsa-2048'"):
        issue_certificate(ed25519_ca, key_algorithm="rsa-2048", lifetime=timedelta(hours=1))  # type: ignore[arg-type]


def test_private_key_pem_reproduces_talosctl_keys_byte_for_byte(talosctl_bundle: SecretsBundle) -> None:
    pems = [ca.key for ca in (talosctl_bundle.etcd, talosctl_bundle.os)] + [talosctl_bundle.k8s_service_account_key]
    assert [_pem_label(pem) for pem in pems] == ["EC PRIVATE KEY", "ED25519 PRIVATE KEY", "RSA PRIVATE KEY"]
    for pem in pems:
        assert private_key_pem(load_private_key(pem)) == pem


def test_load_private_key_accepts_plain_pkcs8_label(ed25519_ca: CertAndKey) -> None:
    pkcs8 = ed25519_ca.key.replace(b"ED25519 PRIVATE KEY", b"PRIVATE KEY")
    assert load_private_key(pkcs8).public_key() == ed25519_ca.private_key().public_key()


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        (b"not a key", r"not PEM"),
        (b"-----BEGIN DSA PRIVATE KEY-----\nAAAA\n-----END DSA PRIVATE KEY-----\n", r"label 'DSA PRIVATE KEY'"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", r"label 'CERTIFICATE'"),
        (b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n", r"'EC PRIVATE KEY' does not parse"),
    ],
)
def test_load_private_key_refuses_what_talos_cannot_read(pem: bytes, message: str) -> None:
    with pytest.raises(SecretsError, match=message):
        load_private_key(pem)


def test_load_private_key_ed25519_label_holding_another_key_is_refused(ecdsa_ca: CertAndKey) -> None:
    pkcs8 = ecdsa_ca.private_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(SecretsError, match="'ED25519 PRIVATE KEY' holds a key of type EC, not Ed25519"):
        load_private_key(pkcs8.replace(b"PRIVATE KEY", b"ED25519 PRIVATE KEY"))


def test_private_key_pem_labels_each_algorithm_as_talos_does() -> None:
    assert _pem_label(private_key_pem(ed25519.Ed25519PrivateKey.generate())) == "ED25519 PRIVATE KEY"
    assert _pem_label(private_key_pem(ec.generate_private_key(ec.SECP256R1()))) == "EC PRIVATE KEY"
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # size is irrelevant to the label
    assert _pem_label(private_key_pem(rsa_key)) == "RSA PRIVATE KEY"


def test_pem_for_ssl_gives_a_key_python_ssl_loads(ed25519_ca: CertAndKey, tmp_path: Path) -> None:
    leaf = issue_certificate(ed25519_ca, key_algorithm="ed25519", lifetime=timedelta(hours=1), not_before=GENERATED_AT)
    key = pem_for_ssl(leaf.key)
    assert _pem_label(key) == "PRIVATE KEY"
    (tmp_path / "crt.pem").write_bytes(leaf.crt)
    (tmp_path / "key.pem").write_bytes(key)
    ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(tmp_path / "crt.pem", tmp_path / "key.pem")


def test_cert_and_key_repr_hides_the_key(ed25519_ca: CertAndKey) -> None:
    body = ed25519_ca.key.splitlines()[1].decode()
    assert body not in repr(ed25519_ca) and body not in str(ed25519_ca)


def _der_integer(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return b"\x02" + _der_length(len(body)) + body


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    size = (length.bit_length() + 7) // 8
    return bytes([0x80 | size]) + length.to_bytes(size, "big")


def test_load_private_key_refuses_rsa_key_whose_numbers_disagree() -> None:
    numbers = rsa.generate_private_key(public_exponent=65537, key_size=1024).private_numbers()
    fields = [0, numbers.public_numbers.n, numbers.public_numbers.e, numbers.d, numbers.p, numbers.q]
    fields += [numbers.dmp1, numbers.dmq1, numbers.iqmp + 1]  # a damaged CRT coefficient
    body = b"".join(_der_integer(value) for value in fields)
    der = b"\x30" + _der_length(len(body)) + body
    pem = b"-----BEGIN RSA PRIVATE KEY-----\n" + base64.encodebytes(der) + b"-----END RSA PRIVATE KEY-----\n"
    with pytest.raises(SecretsError, match="'RSA PRIVATE KEY' is inconsistent"):
        load_private_key(pem)


def test_load_private_key_refuses_key_types_talos_does_not_use() -> None:
    pem = x25519.X25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(SecretsError, match="private key of type X25519 is not one Talos uses"):
        load_private_key(pem)
