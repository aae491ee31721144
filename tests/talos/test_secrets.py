import base64
import copy
import dataclasses
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from talos.errors import SecretsError
from talos.pki import CA_LIFETIME, generate_ca
from talos.secrets import BOOTSTRAP_TOKEN, SecretsBundle, load_secrets, save_secrets
from talos.versions import CURRENT
from tests.talos.conftest import GENERATED_AT, TALOSCTL_SECRETS, certificate_shape, key_kind

Mutation = Callable[[dict[str, Any]], None]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _secret_values(bundle: SecretsBundle) -> list[str]:
    """Every secret of a bundle as it could leak: raw values, key PEM lines and their base64 in the file."""
    values = [
        bundle.cluster_secret,
        bundle.bootstrap_token,
        bundle.trustd_token,
        bundle.secretbox_encryption_secret or "",
        bundle.aescbc_encryption_secret or "",
    ]
    for pem in (bundle.etcd.key, bundle.k8s.key, bundle.k8s_aggregator.key, bundle.os.key):
        values += [pem.splitlines()[1].decode(), _b64(pem)[40:80]]
    values.append(bundle.k8s_service_account_key.splitlines()[1].decode())
    return [value for value in values if value]


def test_generate_has_talosctl_token_and_id_formats(secrets_bundle: SecretsBundle) -> None:
    assert len(secrets_bundle.cluster_id) == 44
    assert len(base64.urlsafe_b64decode(secrets_bundle.cluster_id)) == 32
    assert len(base64.b64decode(secrets_bundle.cluster_secret, validate=True)) == 32
    assert BOOTSTRAP_TOKEN.fullmatch(secrets_bundle.bootstrap_token)
    assert BOOTSTRAP_TOKEN.fullmatch(secrets_bundle.trustd_token)
    assert secrets_bundle.bootstrap_token != secrets_bundle.trustd_token
    assert len(base64.b64decode(secrets_bundle.secretbox_encryption_secret or "", validate=True)) == 32
    assert secrets_bundle.aescbc_encryption_secret is None


@pytest.mark.parametrize(
    ("name", "algorithm", "subject"),
    [
        ("etcd", ("ecdsa", "secp256r1"), "O=etcd"),
        ("k8s", ("ecdsa", "secp256r1"), "O=kubernetes"),
        ("k8s_aggregator", ("ecdsa", "secp256r1"), ""),
        ("os", ("ed25519", None), "O=talos"),
    ],
)
def test_generate_cas_have_talos_algorithms_subjects_and_validity(
    secrets_bundle: SecretsBundle, name: str, algorithm: tuple[str, object], subject: str
) -> None:
    ca = getattr(secrets_bundle, name)
    crt = ca.certificate()
    assert key_kind(crt.public_key()) == algorithm
    assert crt.subject.rfc4514_string() == subject
    assert crt.not_valid_before_utc == GENERATED_AT
    assert crt.not_valid_after_utc == GENERATED_AT + CA_LIFETIME
    crt.verify_directly_issued_by(crt)
    assert ca.private_key().public_key() == crt.public_key()


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [("etcd", "etcd"), ("k8s", "k8s"), ("k8s_aggregator", "k8s_aggregator"), ("os", "os")],
)
def test_generate_cas_match_the_shape_of_talosctls(
    secrets_bundle: SecretsBundle, talosctl_bundle: SecretsBundle, ours: str, theirs: str
) -> None:
    mine = certificate_shape(getattr(secrets_bundle, ours).certificate())
    assert mine == certificate_shape(getattr(talosctl_bundle, theirs).certificate())


def test_generate_key_labels_and_service_account_key_match_talosctl(
    secrets_bundle: SecretsBundle, talosctl_bundle: SecretsBundle
) -> None:
    for bundle in (secrets_bundle, talosctl_bundle):
        labels = [pem.splitlines()[0] for pem in (bundle.etcd.key, bundle.os.key, bundle.k8s_service_account_key)]
        assert labels == [
            b"-----BEGIN EC PRIVATE KEY-----",
            b"-----BEGIN ED25519 PRIVATE KEY-----",
            b"-----BEGIN RSA PRIVATE KEY-----",
        ]
    key = serialization.load_pem_private_key(secrets_bundle.k8s_service_account_key, password=None)
    assert key_kind(key) == ("rsa", 4096)


def test_generate_for_old_contracts_switches_encryption_and_service_account_key() -> None:
    v1_2 = SecretsBundle.generate(dataclasses.replace(CURRENT, minor=(1, 2)))
    assert v1_2.secretbox_encryption_secret is None
    assert len(base64.b64decode(v1_2.aescbc_encryption_secret or "", validate=True)) == 32
    assert v1_2.k8s_service_account_key.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    assert SecretsBundle.from_yaml(v1_2.to_yaml()) == v1_2


def test_generate_save_load_gives_an_identical_bundle(secrets_bundle: SecretsBundle, tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    save_secrets(secrets_bundle, path)
    assert load_secrets(path) == secrets_bundle
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_save_secrets_replaces_an_existing_file_keeping_it_private(
    secrets_bundle: SecretsBundle, tmp_path: Path
) -> None:
    path = tmp_path / "secrets.yaml"
    path.write_text("old")
    path.chmod(0o644)
    save_secrets(secrets_bundle, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.yaml"]


def test_talosctl_bundle_round_trips_byte_for_byte(talosctl_secrets_text: str, tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    save_secrets(load_secrets(TALOSCTL_SECRETS), path)
    assert path.read_text() == talosctl_secrets_text


def test_to_yaml_uses_talosctl_layout(secrets_bundle: SecretsBundle) -> None:
    text = secrets_bundle.to_yaml()
    keys = [line.split(":")[0] for line in text.splitlines()]
    assert keys == [
        "cluster",
        "    id",
        "    secret",
        "secrets",
        "    bootstraptoken",
        "    secretboxencryptionsecret",
        "trustdinfo",
        "    token",
        "certs",
        "    etcd",
        "        crt",
        "        key",
        "    k8s",
        "        crt",
        "        key",
        "    k8saggregator",
        "        crt",
        "        key",
        "    k8sserviceaccount",
        "        key",
        "    os",
        "        crt",
        "        key",
    ]
    os_key = yaml.safe_load(text)["certs"]["os"]["key"]
    assert base64.b64decode(os_key) == secrets_bundle.os.key


def _parent(data: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    *parents, last = path.split(".")
    for part in parents:
        data = data[part]
    return data, last


def _set(path: str, value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        node, key = _parent(data, path)
        node[key] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        node, key = _parent(data, path)
        del node[key]

    return mutate


def _swap_key(data: dict[str, Any]) -> None:
    data["certs"]["etcd"]["key"] = data["certs"]["k8s"]["key"]


def _pem_of(text: str) -> str:
    return _b64(f"-----BEGIN {text}-----\nAAAA\n-----END {text}-----\n".encode())


BAD_BUNDLES: list[tuple[str, Mutation, str]] = [
    ("missing cluster id", _delete("cluster.id"), r"cluster\.id: is missing"),
    ("cluster id not base64", _set("cluster.id", "my-cluster"), r"cluster\.id: is not URL-safe base64 of 32 bytes"),
    ("missing trustdinfo", _delete("trustdinfo"), r"^[^\n]*: trustdinfo: is missing"),
    ("empty bootstrap token", _set("secrets.bootstraptoken", ""), r"secrets\.bootstraptoken: is missing"),
    ("both encryption secrets", _set("secrets.aescbcencryptionsecret", _b64(b"k" * 32)), r"only one of secretbox"),
    ("no encryption secret", _delete("secrets.secretboxencryptionsecret"), r"secrets: one of secretbox\S+, aescbc"),
    ("short secretbox key", _set("secrets.secretboxencryptionsecret", _b64(b"k" * 16)), r"box\S+: decodes to 16"),
    ("bad token format", _set("secrets.bootstraptoken", "ABCDEF.0123456789abcdef"), r"bootstraptoken: is not a Kub"),
    ("token without dot", _set("secrets.bootstraptoken", "abcdef0123456789abcdef"), r"bootstraptoken: is not a Kub"),
    ("trustd token with space", _set("trustdinfo.token", "abc def"), r"trustdinfo\.token: is not printable"),
    ("cluster secret not base64", _set("cluster.secret", "not base64!"), r"cluster\.secret: is not standard base64"),
    ("crt not PEM", _set("certs.etcd.crt", _b64(b"garbage")), r"certs\.etcd\.crt: is not a PEM certificate"),
    ("key not base64", _set("certs.os.key", "%%%%"), r"certs\.os\.key: is not standard base64"),
    ("key damaged", _set("certs.k8s.key", _pem_of("EC PRIVATE KEY")), r"certs\.k8s\.key: .*does not parse"),
    ("key label unknown", _set("certs.os.key", _pem_of("DSA PRIVATE KEY")), r"certs\.os\.key: PEM label 'DSA"),
    ("wrong key for cert", _swap_key, r"certs\.etcd\.key: is not the private key of certs\.etcd\.crt"),
    ("redacted key", _set("certs.os.key", "******"), r"certs\.os\.key: is redacted"),
    ("missing ca key", _delete("certs.k8saggregator.key"), r"certs\.k8saggregator\.key: is missing"),
    ("sa key damaged", _set("certs.k8sserviceaccount.key", _b64(b"x")), r"certs\.k8sserviceaccount\.key: .*not PEM"),
    ("ca not a mapping", _set("certs.os", "text"), r"certs\.os: is a string, not a mapping"),
    ("token not a string", _set("trustdinfo.token", 12), r"trustdinfo\.token: is a number, not a string"),
    ("unknown field", _set("cluster.name", "x"), r"cluster\.name: is not a field of a secrets bundle"),
]


@pytest.mark.parametrize(("mutate", "message"), [case[1:] for case in BAD_BUNDLES], ids=[c[0] for c in BAD_BUNDLES])
def test_from_yaml_bad_bundle_names_the_field_and_hides_values(
    talosctl_secrets_text: str, talosctl_bundle: SecretsBundle, mutate: Mutation, message: str
) -> None:
    data = yaml.safe_load(talosctl_secrets_text)
    mutate(data)
    with pytest.raises(SecretsError, match=message) as raised:
        SecretsBundle.from_yaml(yaml.safe_dump(data), source="bad.yaml")
    text = str(raised.value)
    assert text.startswith("bad.yaml: ") and "(fix: " in text
    assert not [value for value in _secret_values(talosctl_bundle) if value in text]


def test_from_yaml_lists_every_problem_at_once(talosctl_secrets_text: str) -> None:
    data = yaml.safe_load(talosctl_secrets_text)
    data["secrets"]["secretboxencryptionsecrets"] = data["secrets"].pop("secretboxencryptionsecret")
    del data["cluster"]
    with pytest.raises(SecretsError) as raised:
        SecretsBundle.from_yaml(yaml.safe_dump(data))
    assert str(raised.value).splitlines() == [
        "secrets.yaml: 3 problems:",
        "  cluster: is missing (fix: add it as talosctl gen secrets writes it)",
        "  secrets.secretboxencryptionsecrets: is not a field of a secrets bundle (fix: remove it or correct the "
        "spelling (fields here: bootstraptoken, aescbcencryptionsecret, secretboxencryptionsecret))",
        "  secrets: one of secretboxencryptionsecret, aescbcencryptionsecret is required (fix: keep one; "
        "Talos v1.3 and later use secretboxencryptionsecret)",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", r"secrets\.yaml: is a list, not a mapping"),
        ("", r"secrets\.yaml: is empty, not a mapping"),
        ("cluster:\n  id: [unclosed\n", r"secrets\.yaml: not valid YAML at line 3, column 1"),
    ],
)
def test_from_yaml_refuses_documents_that_are_not_bundles(text: str, message: str) -> None:
    with pytest.raises(SecretsError, match=message):
        SecretsBundle.from_yaml(text)


def test_yaml_error_does_not_quote_the_offending_line(talosctl_secrets_text: str) -> None:
    broken = talosctl_secrets_text.replace("    token: ", "    token: : ")
    token = yaml.safe_load(talosctl_secrets_text)["trustdinfo"]["token"]
    with pytest.raises(SecretsError) as raised:
        SecretsBundle.from_yaml(broken)
    assert token not in str(raised.value)


def test_load_secrets_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(SecretsError, match=r"nowhere\.yaml: cannot read the secrets bundle"):
        load_secrets(tmp_path / "nowhere.yaml")


def test_bundle_repr_and_str_show_no_secret(secrets_bundle: SecretsBundle) -> None:
    shown = repr(secrets_bundle) + str(secrets_bundle)
    assert secrets_bundle.cluster_id in shown
    assert not [value for value in _secret_values(secrets_bundle) if value in shown]


def test_bundle_with_foreign_ca_key_is_refused(talosctl_bundle: SecretsBundle) -> None:
    stranger = generate_ca("ed25519", "talos", now=GENERATED_AT)
    forged = dataclasses.replace(talosctl_bundle, os=dataclasses.replace(talosctl_bundle.os, key=stranger.key))
    with pytest.raises(SecretsError, match=r"certs\.os\.key: is not the private key of certs\.os\.crt"):
        SecretsBundle.from_yaml(forged.to_yaml())


def test_from_dict_of_to_dict_is_identity(talosctl_bundle: SecretsBundle) -> None:
    assert SecretsBundle.from_dict(copy.deepcopy(talosctl_bundle.to_dict())) == talosctl_bundle
