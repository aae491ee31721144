import base64
import dataclasses
import socket
import ssl
import stat
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from talos.pki import CertAndKey, issue_certificate, pem_for_ssl, public_key_matches
from talos.secrets import SecretsBundle
from talos.talosconfig import (
    TalosConfig,
    TalosconfigError,
    TalosContext,
    build_talosconfig,
    issue_admin_certificate,
    load_talosconfig,
    merge_talosconfig,
    save_talosconfig,
)
from tests.talos.conftest import GENERATED_AT, TALOSCTL_TALOSCONFIG, certificate_shape, key_kind

CP = ("203.0.113.10", "203.0.113.11")


@pytest.fixture(scope="module")
def admin(secrets_bundle: SecretsBundle) -> CertAndKey:
    return issue_admin_certificate(secrets_bundle, now=GENERATED_AT)


@pytest.fixture(scope="module")
def lab_config(secrets_bundle: SecretsBundle) -> TalosConfig:
    return build_talosconfig("lab", secrets_bundle, endpoints=CP, nodes=CP[:1], now=GENERATED_AT)


@pytest.fixture(scope="module")
def talosctl_config() -> TalosConfig:
    return load_talosconfig(TALOSCTL_TALOSCONFIG)


def test_admin_certificate_has_talos_admin_shape(secrets_bundle: SecretsBundle, admin: CertAndKey) -> None:
    crt = admin.certificate()
    crt.verify_directly_issued_by(secrets_bundle.os.certificate())
    assert key_kind(admin.private_key()) == ("ed25519", None)
    assert admin.key.startswith(b"-----BEGIN ED25519 PRIVATE KEY-----")
    assert crt.subject.rfc4514_string() == "O=os:admin"
    assert crt.subject.get_attributes_for_oid(NameOID.COMMON_NAME) == []
    assert crt.issuer == secrets_bundle.os.certificate().subject
    assert list(crt.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    usage = crt.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    with pytest.raises(x509.ExtensionNotFound):
        crt.extensions.get_extension_for_class(x509.BasicConstraints)
    assert crt.not_valid_before_utc == GENERATED_AT
    assert crt.not_valid_after_utc == GENERATED_AT + timedelta(hours=8760)


def test_admin_certificate_matches_the_shape_of_talosctls(admin: CertAndKey, talosctl_config: TalosConfig) -> None:
    theirs = x509.load_pem_x509_certificate(talosctl_config.current().crt)
    assert certificate_shape(admin.certificate()) == certificate_shape(theirs)


def test_admin_certificate_with_several_roles_carries_each_once(secrets_bundle: SecretsBundle) -> None:
    crt = issue_admin_certificate(secrets_bundle, roles=("os:reader", "os:etcd:backup", "os:reader")).certificate()
    organizations = [a.value for a in crt.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert sorted(organizations) == ["os:etcd:backup", "os:reader"]


@pytest.mark.parametrize(("roles", "shown"), [(("os:admn",), "'os:admn'"), ((), "none given")])
def test_admin_certificate_with_unknown_or_no_roles_is_refused(
    secrets_bundle: SecretsBundle, roles: tuple[str, ...], shown: str
) -> None:
    with pytest.raises(TalosconfigError, match=f"roles: {shown} .*fix: use roles from os:admin"):
        issue_admin_certificate(secrets_bundle, roles=roles)


def test_build_talosconfig_aims_at_the_real_nodes(secrets_bundle: SecretsBundle, lab_config: TalosConfig) -> None:
    context = lab_config.current()
    assert lab_config.context == "lab" and list(lab_config.contexts) == ["lab"]
    assert context.endpoints == CP and context.nodes == CP[:1]
    assert context.ca == secrets_bundle.os.crt
    crt = x509.load_pem_x509_certificate(context.crt)
    assert public_key_matches(crt, CertAndKey(context.crt, context.key).private_key())
    crt.verify_directly_issued_by(secrets_bundle.os.certificate())


def test_talosconfig_yaml_has_talosctl_layout(lab_config: TalosConfig) -> None:
    text = lab_config.to_yaml()
    assert text.startswith(
        "context: lab\ncontexts:\n    lab:\n        endpoints:\n            - 203.0.113.10\n"
        "            - 203.0.113.11\n        nodes:\n            - 203.0.113.10\n        ca: "
    )
    context = yaml.safe_load(text)["contexts"]["lab"]
    assert list(context) == ["endpoints", "nodes", "ca", "crt", "key"]
    assert base64.b64decode(context["key"]).startswith(b"-----BEGIN ED25519 PRIVATE KEY-----")


@pytest.mark.parametrize(
    ("endpoints", "nodes", "message"),
    [
        ((), CP, r"endpoints: needs a list of node addresses"),
        (CP, (), r"nodes: needs a list of node addresses"),
        ("203.0.113.10", CP, r"endpoints: needs a list"),
        (("https://203.0.113.10:50000",), CP, r"endpoints: 'https://203\.0\.113\.10:50000' is not a host"),
        (CP, ("",), r"nodes: '' is not a host"),
    ],
)
def test_build_talosconfig_refuses_missing_or_malformed_addresses(
    secrets_bundle: SecretsBundle, endpoints: tuple[str, ...], nodes: tuple[str, ...], message: str
) -> None:
    with pytest.raises(TalosconfigError, match=message):
        build_talosconfig("lab", secrets_bundle, endpoints=endpoints, nodes=nodes)


def test_talosconfig_round_trips_through_yaml(lab_config: TalosConfig) -> None:
    assert TalosConfig.from_yaml(lab_config.to_yaml()) == lab_config


def test_talosctl_talosconfig_round_trips_byte_for_byte(talosctl_config: TalosConfig, tmp_path: Path) -> None:
    path = tmp_path / "config"
    save_talosconfig(talosctl_config, path)
    assert path.read_text() == TALOSCTL_TALOSCONFIG.read_text()
    assert talosctl_config.contexts["other"].endpoints == ()


def test_merge_keeps_other_contexts_and_switches_to_the_new_one(
    talosctl_config: TalosConfig, secrets_bundle: SecretsBundle
) -> None:
    new = build_talosconfig("prod", secrets_bundle, endpoints=CP, nodes=CP)
    merged = merge_talosconfig(talosctl_config, new)
    assert merged.context == "prod"
    assert list(merged.contexts) == ["lab", "other", "prod"]
    assert {name: merged.contexts[name] for name in talosctl_config.contexts} == talosctl_config.contexts
    assert merged.contexts["prod"] == new.contexts["prod"]


def test_merge_on_a_name_clash_renames_like_talosctl(talosctl_config: TalosConfig, lab_config: TalosConfig) -> None:
    once = merge_talosconfig(talosctl_config, lab_config)
    twice = merge_talosconfig(once, lab_config)
    assert (once.context, list(once.contexts)) == ("lab-1", ["lab", "other", "lab-1"])
    assert (twice.context, list(twice.contexts)) == ("lab-2", ["lab", "other", "lab-1", "lab-2"])
    assert twice.contexts["lab"] == talosctl_config.contexts["lab"]


def test_merge_of_a_config_without_current_context_keeps_the_existing_one(
    talosctl_config: TalosConfig, lab_config: TalosConfig
) -> None:
    merged = merge_talosconfig(talosctl_config, dataclasses.replace(lab_config, context=""))
    assert merged.context == "lab" and "lab-1" in merged.contexts


def test_merge_into_an_empty_config(lab_config: TalosConfig) -> None:
    empty = TalosConfig.from_yaml('context: ""\ncontexts: {}\n')
    assert merge_talosconfig(empty, lab_config) == lab_config


def test_load_moves_deprecated_target_into_endpoints_and_keeps_auth() -> None:
    config = TalosConfig.from_yaml(
        "context: old\ncontexts:\n    old:\n        target: 10.0.0.9\n"
        "        auth:\n            basic:\n                username: u\n                password: hunter2\n"
    )
    context = config.current()
    assert context.endpoints == ("10.0.0.9",)
    assert context.auth == {"basic": {"username": "u", "password": "hunter2"}}
    assert "target" not in config.to_yaml() and "hunter2" in config.to_yaml()
    assert "hunter2" not in repr(config)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n", r"^talosconfig: document: is not a mapping"),
        ("context: a\ncontexts: [a]\n", r"^talosconfig: contexts: is not a mapping"),
        ("context: a\ncontexts:\n    a: x\n", r"contexts\.a: is not a mapping"),
        ("context: a\ncontexts:\n    a:\n        endpoints: 1.2.3.4\n", r"contexts\.a\.endpoints: is not a list"),
        ("context: a\ncontexts:\n    a:\n        key: '%%'\n", r"contexts\.a\.key: is not standard base64"),
        ("context: a\ncontexts:\n    a:\n        auth: x\n", r"contexts\.a\.auth: is not a mapping"),
        ("context: [\n", r"^talosconfig: not valid YAML at line 2"),
    ],
)
def test_from_yaml_malformed_talosconfig_names_the_field(text: str, message: str) -> None:
    with pytest.raises(TalosconfigError, match=message):
        TalosConfig.from_yaml(text)


def test_load_talosconfig_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("context: a\ncontexts:\n    a:\n        ca: '%%'\n")
    with pytest.raises(TalosconfigError, match=r"config: contexts\.a\.ca: is not standard base64"):
        load_talosconfig(path)
    with pytest.raises(TalosconfigError, match=r"missing: cannot read the talosconfig"):
        load_talosconfig(tmp_path / "missing")


def test_current_context_missing_is_named(lab_config: TalosConfig) -> None:
    with pytest.raises(TalosconfigError, match=r"context: 'gone' is not among the contexts \(lab\)"):
        dataclasses.replace(lab_config, context="gone").current()


def test_save_talosconfig_creates_private_directory_and_file(lab_config: TalosConfig, tmp_path: Path) -> None:
    path = tmp_path / ".talos" / "config"
    save_talosconfig(lab_config, path)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_talosconfig(path) == lab_config


def test_talosconfig_repr_shows_no_key(lab_config: TalosConfig, admin: CertAndKey) -> None:
    key_body = lab_config.current().key.splitlines()[1].decode()
    shown = repr(lab_config) + str(lab_config.current()) + repr(admin)
    assert key_body not in shown and admin.key.splitlines()[1].decode() not in shown
    assert base64.b64encode(lab_config.current().key).decode() not in shown


def test_talosconfig_credentials_pass_mutual_tls_against_a_node_certificate(
    secrets_bundle: SecretsBundle, lab_config: TalosConfig, tmp_path: Path
) -> None:
    """The talosconfig's CA, cert and key complete a TLS 1.3 handshake, as apid's server side requires."""
    node = issue_certificate(
        secrets_bundle.os,
        key_algorithm="ed25519",
        common_name="cp-1",
        ip_addresses=("127.0.0.1",),
        extended_key_usages=("server_auth",),
        lifetime=timedelta(hours=24),
    )
    context = lab_config.current()
    files = {"ca": context.ca, "crt": context.crt, "key": pem_for_ssl(context.key)}
    files |= {"node-crt": node.crt, "node-key": pem_for_ssl(node.key)}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "node-crt", tmp_path / "node-key")
    server.load_verify_locations(tmp_path / "ca")
    server.verify_mode = ssl.CERT_REQUIRED
    client = ssl.create_default_context(cafile=tmp_path / "ca")
    client.load_cert_chain(tmp_path / "crt", tmp_path / "key")
    client.minimum_version = ssl.TLSVersion.TLSv1_3

    left, right = socket.socketpair()
    peer: dict[str, object] = {}

    def serve() -> None:
        with server.wrap_socket(left, server_side=True) as tls:
            peer.update(tls.getpeercert() or {})
            tls.sendall(b"ok")

    thread = threading.Thread(target=serve)
    thread.start()
    with client.wrap_socket(right, server_hostname="127.0.0.1") as tls:
        assert tls.recv(2) == b"ok"
        assert tls.version() == "TLSv1.3"
    thread.join(timeout=10)
    assert peer["subject"] == ((("organizationName", "os:admin"),),)


def test_context_defaults_are_empty() -> None:
    assert TalosContext().to_dict() == {"endpoints": []}


def _with_context_field(config: TalosConfig, name: str, value: bytes) -> str:
    data = yaml.safe_load(config.to_yaml())
    data["contexts"]["lab"][name] = base64.b64encode(value).decode()
    return yaml.safe_dump(data)


def test_from_yaml_refuses_a_key_that_is_not_of_the_client_certificate(
    lab_config: TalosConfig, admin: CertAndKey
) -> None:
    other_key = issue_admin_certificate(SecretsBundle.generate(), now=GENERATED_AT).key
    with pytest.raises(TalosconfigError, match=r"contexts\.lab\.key: is not the private key of crt") as err:
        TalosConfig.from_yaml(_with_context_field(lab_config, "key", other_key))
    assert "PRIVATE KEY" not in str(err.value)


def test_from_yaml_refuses_a_ca_that_is_not_a_certificate(lab_config: TalosConfig) -> None:
    with pytest.raises(TalosconfigError, match=r"contexts\.lab\.ca: is not a PEM certificate"):
        TalosConfig.from_yaml(_with_context_field(lab_config, "ca", b"-----BEGIN CERTIFICATE-----\nAAAA\n"))
