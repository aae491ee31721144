import base64
import copy
import dataclasses
import textwrap

import pytest

from talos.compare import CHANGED_MASK, MASK, configs_equal, is_secret_path, masked_url, redact, render_diff
from talos.config import render_config
from talos.documents import Document, dump_documents
from talos.errors import ConfigError
from talos.secrets import SecretsBundle
from tests.talos.cases import case

APPLIED = textwrap.dedent(
    """\
    version: v1alpha1
    machine:
        type: worker
        install:
            disk: /dev/sda
            wipe: false
        certSANs:
            - a.example
            - b.example
    cluster:
        controlPlane:
            endpoint: https://api.example:6443
    ---
    apiVersion: v1alpha1
    kind: HostnameConfig
    auto: stable
    ---
    apiVersion: v1alpha1
    kind: LinkConfig
    name: eth0
    addresses:
        - address: 192.0.2.10/32
    """
)
REFORMATTED = textwrap.dedent(
    """\
    # comments, two-space indentation, other key order, flow style and typed documents swapped
    cluster: {controlPlane: {endpoint: "https://api.example:6443"}}
    machine:
      install: {wipe: false, disk: /dev/sda}   # install disk
      certSANs: [a.example, b.example]
      type: worker
    version: v1alpha1
    ---
    kind: LinkConfig
    name: eth0
    apiVersion: v1alpha1
    addresses: [{address: 192.0.2.10/32}]
    ---
    auto: stable
    kind: HostnameConfig
    apiVersion: v1alpha1
    """
)


def resource_yaml(config: str, resource_id: str = "v1alpha1") -> str:
    """A config as `talosctl get machineconfig -o yaml` prints the MachineConfig resource."""
    return (
        "node: 192.0.2.10\n"
        "metadata:\n"
        "    namespace: config\n"
        "    type: MachineConfigs.config.talos.dev\n"
        f"    id: {resource_id}\n"
        "    version: 3\n"
        "    owner:\n"
        "    phase: running\n"
        "spec: |\n" + textwrap.indent(config, "    ")
    )


@pytest.fixture(scope="module")
def controlplane(secrets_bundle: SecretsBundle) -> list[Document]:
    return render_config(case("v1.13-runbook").options, secrets_bundle, "controlplane")


def bundle_secrets(bundle: SecretsBundle) -> dict[str, str]:
    """Every secret value of the bundle as it can appear in a config (plain, or base64 of the PEM key)."""
    values = {
        "cluster secret": bundle.cluster_secret,
        "bootstrap token": bundle.bootstrap_token,
        "trustd token": bundle.trustd_token,
        "secretbox secret": bundle.secretbox_encryption_secret or "",
        "service account key": base64.b64encode(bundle.k8s_service_account_key).decode(),
    }
    for name in ("etcd", "k8s", "k8s_aggregator", "os"):
        key = getattr(bundle, name).key
        values[f"{name} CA key (base64)"] = base64.b64encode(key).decode()
        values[f"{name} CA key (PEM body)"] = key.decode().splitlines()[1]
    return values


def test_formatting_key_order_comments_and_document_order_do_not_matter() -> None:
    assert configs_equal(APPLIED, REFORMATTED)
    assert render_diff(APPLIED, REFORMATTED) == ""


def test_config_read_back_from_node_equals_applied_documents(controlplane: list[Document]) -> None:
    read_back = resource_yaml(dump_documents(controlplane))

    assert configs_equal(read_back, controlplane)
    assert configs_equal(controlplane, read_back.encode())


def test_read_back_picks_active_config_among_several_resources() -> None:
    changed = APPLIED.replace("/dev/sda", "/dev/sdb")
    listing = resource_yaml(changed, "persistent") + "---\n" + resource_yaml(APPLIED)

    assert configs_equal(listing, APPLIED)


def test_read_back_without_active_resource_is_refused() -> None:
    listing = resource_yaml(APPLIED, "persistent") + "---\n" + resource_yaml(APPLIED, "other")

    with pytest.raises(ConfigError, match=r"config: metadata.id: 2 MachineConfig resources and none is the active"):
        configs_equal(listing, APPLIED)


def test_resource_spec_as_mapping_is_unwrapped() -> None:
    wrapped = "metadata: {id: v1alpha1}\nspec:\n    version: v1alpha1\n    machine: {type: worker}\n"

    assert configs_equal(wrapped, "machine: {type: worker}\nversion: v1alpha1\n")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("/dev/sda", "/dev/sdb"),
        ("wipe: false", "wipe: true"),
        ("- a.example\n        - b.example", "- b.example\n        - a.example"),
        ("auto: stable", "auto: 'off'\nhostname: w-1"),
        ("address: 192.0.2.10/32", "address: 192.0.2.11/32"),
    ],
)
def test_real_change_is_unequal_and_shows_in_diff(old: str, new: str) -> None:
    changed = APPLIED.replace(old, new)

    assert not configs_equal(APPLIED, changed)
    assert render_diff(APPLIED, changed).startswith("--- old\n+++ new\n@@")


def test_missing_document_is_unequal() -> None:
    assert not configs_equal(APPLIED, APPLIED.split("---")[0])


def test_string_and_boolean_differ() -> None:
    assert not configs_equal(APPLIED, APPLIED.replace("wipe: false", "wipe: 'false'"))


def test_diff_shows_changed_line_with_context() -> None:
    diff = render_diff(APPLIED, APPLIED.replace("/dev/sda", "/dev/sdb"), context=0)

    assert [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")] == [
        "-        disk: /dev/sda",
        "+        disk: /dev/sdb",
    ]


def test_redact_masks_every_bundle_secret(controlplane: list[Document], secrets_bundle: SecretsBundle) -> None:
    text = dump_documents(redact(controlplane))

    for name, secret in bundle_secrets(secrets_bundle).items():
        assert secret and secret not in text, f"{name} leaked"
    assert text.count(MASK) == 9


def test_redact_masks_aescbc_secret_of_an_old_bundle(secrets_bundle: SecretsBundle) -> None:
    old_bundle = dataclasses.replace(
        secrets_bundle,
        secretbox_encryption_secret=None,
        aescbc_encryption_secret="YWVzY2JjLXNlY3JldC0zMi1ieXRlcy0tLS0tLS0=",
    )
    documents = render_config(case("v1.13-defaults").options, old_bundle, "controlplane")

    redacted = redact(documents)[0]["cluster"]

    assert redacted["aescbcEncryptionSecret"] == MASK
    assert old_bundle.aescbc_encryption_secret not in render_diff(documents, redact(documents))


def test_redact_keeps_certificates_and_cluster_id_visible(
    controlplane: list[Document], secrets_bundle: SecretsBundle
) -> None:
    redacted = redact(controlplane)[0]

    assert redacted["machine"]["ca"] == {"crt": controlplane[0]["machine"]["ca"]["crt"], "key": MASK}
    assert redacted["cluster"]["id"] == secrets_bundle.cluster_id
    assert redacted["cluster"]["etcd"]["ca"]["crt"] == controlplane[0]["cluster"]["etcd"]["ca"]["crt"]


def test_redact_leaves_worker_empty_keys_empty_and_input_untouched(secrets_bundle: SecretsBundle) -> None:
    worker = render_config(case("v1.13-defaults").options, secrets_bundle, "worker")
    original = copy.deepcopy(worker)

    redacted = redact(worker)[0]

    assert worker == original
    assert redacted["machine"]["ca"]["key"] == "" and redacted["cluster"]["ca"]["key"] == ""
    assert redacted["machine"]["token"] == MASK


def test_redact_masks_secrets_of_typed_and_legacy_documents() -> None:
    documents: list[Document] = [
        {
            "version": "v1alpha1",
            "machine": {
                "network": {"interfaces": [{"interface": "wg0", "wireguard": {"privateKey": "wg-private"}}]},
                "registries": {"config": {"r.example": {"auth": {"password": "hunter2", "username": "me"}}}},
            },
        },
        {"apiVersion": "v1alpha1", "kind": "WireguardConfig", "name": "wg1", "privateKey": "typed-private"},
        {"apiVersion": "v1alpha1", "kind": "RegistryAuthConfig", "name": "r.example", "password": "pw2"},
        {"apiVersion": "v1alpha1", "kind": "HCloudVIPConfig", "name": "vip", "apiToken": "hcloud-token"},
        {
            "apiVersion": "v1alpha1",
            "kind": "SideroLinkConfig",
            "apiUrl": "https://siderolink.example:443?jointoken=join-secret&grpc_tunnel=true",
        },
        {
            "apiVersion": "v1alpha1",
            "kind": "UserVolumeConfig",
            "name": "data",
            "encryption": {"keys": [{"slot": 0, "static": {"passphrase": "disk-passphrase"}}]},
        },
    ]

    text = dump_documents(redact(documents))

    for secret in ("wg-private", "hunter2", "typed-private", "pw2", "hcloud-token", "join-secret", "disk-passphrase"):
        assert secret not in text
    assert "username: me" in text
    assert "siderolink.example:443?jointoken=******&grpc_tunnel=true" in text


def test_diff_of_changed_secret_marks_it_without_values(
    controlplane: list[Document], secrets_bundle: SecretsBundle
) -> None:
    rotated = copy.deepcopy(controlplane)
    rotated[0]["cluster"]["token"] = "abcdef.0123456789abcdef"

    diff = render_diff(controlplane, rotated)

    changed = [line for line in diff.splitlines() if line.startswith(("-    token:", "+    token:"))]
    assert [line.replace("'", '"') for line in changed] == [f'-    token: "{MASK}"', f'+    token: "{CHANGED_MASK}"']
    assert "abcdef.0123456789abcdef" not in diff and secrets_bundle.bootstrap_token not in diff
    assert diff.count(CHANGED_MASK) == 1


def test_diff_never_shows_bundle_secrets(secrets_bundle: SecretsBundle) -> None:
    old = render_config(case("v1.13-defaults").options, secrets_bundle, "controlplane")
    new = render_config(case("v1.13-runbook").options, secrets_bundle, "controlplane")

    diff = render_diff(old, new)

    assert "+            wwid: eui.*" in diff
    for name, secret in bundle_secrets(secrets_bundle).items():
        assert secret not in diff, f"{name} leaked"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://u:pw@siderolink.example:8099/x?jointoken=SECRET", "https://******@siderolink.example:8099/x?******"),
        ("siderolink.example:8099?jointoken=SECRET", "siderolink.example:8099?******"),
        ("user:p@ss@mirror.example/v2", "******@mirror.example/v2"),
        ("https://mirror.example/a@b#token", "https://******@b?******"),  # masking too much is the safe side
        ("https://user:p/ss@host:6443", "https://******@host:6443"),  # an unencoded "/" in a password
        ("https://api.example:6443", "https://api.example:6443"),
        ("stabel", "stabel"),
    ],
)
def test_masked_url_hides_credentials_and_query(text: str, shown: str) -> None:
    assert masked_url(text) == shown


def test_is_secret_path_follows_the_redaction_table(controlplane: list[Document]) -> None:
    sidero = {"apiVersion": "v1alpha1", "kind": "SideroLinkConfig"}

    assert is_secret_path(controlplane[0], ("cluster", "ca", "key"))
    assert is_secret_path(controlplane[0], ("machine", "registries", "config", "r.example", "auth", "password"))
    assert is_secret_path(sidero, ("uniqueToken",))
    assert not is_secret_path(controlplane[0], ("cluster", "ca", "crt"))
    assert not is_secret_path(sidero, ("apiUrl",))
