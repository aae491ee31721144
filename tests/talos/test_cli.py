"""`python -m talos.cli`: gen secrets, gen config with patches, render-lab, and its errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from talos.cli import LAB_NODES, main
from talos.documents import parse_documents
from talos.secrets import SecretsBundle, load_secrets, save_secrets
from talos.talosconfig import load_talosconfig
from talos.validation import validate_config
from talos.versions import CONTRACTS, CURRENT


def private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) == 0o600


def test_gen_secrets_writes_a_private_bundle_that_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "secrets.yaml"

    assert main(["gen", "secrets", "-o", str(path)]) == 0

    assert load_secrets(path).to_yaml() == path.read_text() and private(path)
    assert capsys.readouterr().out == f"wrote {path}\n"


def test_gen_secrets_to_stdout_for_an_older_contract(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gen", "secrets", "-o", "-", "--talos-version", CONTRACTS["v1.12"].talos_version]) == 0

    bundle = SecretsBundle.from_yaml(capsys.readouterr().out)
    assert bundle.secretbox_encryption_secret and bundle.aescbc_encryption_secret is None


def test_gen_config_applies_cluster_and_role_patches_and_aims_talosconfig_at_the_nodes(
    tmp_path: Path, secrets_bundle: SecretsBundle, capsys: pytest.CaptureFixture[str]
) -> None:
    save_secrets(secrets_bundle, tmp_path / "secrets.yaml")
    (tmp_path / "cluster.yaml").write_text("cluster:\n  network:\n    cni:\n      name: none\n")
    out = tmp_path / "out"

    code = main(
        [
            "gen",
            "config",
            "prod",
            "https://api.example.com:6443",
            "--with-secrets",
            str(tmp_path / "secrets.yaml"),
            "--config-patch",
            f"@{tmp_path / 'cluster.yaml'}",
            "--config-patch-control-plane",
            "cluster: {allowSchedulingOnControlPlanes: true}",
            "--config-patch-worker",
            "machine: {nodeLabels: {pool: general}}",
            "--endpoints",
            "203.0.113.10",
            "--nodes",
            "203.0.113.10",
            "203.0.113.40",
            "-o",
            str(out),
        ]
    )

    assert code == 0, capsys.readouterr().err
    controlplane = parse_documents((out / "controlplane.yaml").read_text())
    worker = parse_documents((out / "worker.yaml").read_text())
    for documents in (controlplane, worker):
        validate_config(documents, CURRENT)
        assert documents[0]["cluster"]["network"]["cni"] == {"name": "none"}
        assert documents[0]["machine"]["ca"]["crt"] == controlplane[0]["machine"]["ca"]["crt"]
    assert controlplane[0]["cluster"]["allowSchedulingOnControlPlanes"] is True
    assert "allowSchedulingOnControlPlanes" not in worker[0]["cluster"]
    assert worker[0]["machine"]["nodeLabels"]["pool"] == "general"
    assert "pool" not in controlplane[0]["machine"]["nodeLabels"]
    context = load_talosconfig(out / "talosconfig").current()
    assert (context.endpoints, context.nodes) == (("203.0.113.10",), ("203.0.113.10", "203.0.113.40"))
    assert context.ca == secrets_bundle.os.crt
    assert all(private(out / name) for name in ("controlplane.yaml", "worker.yaml", "talosconfig"))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "error: endpoints: needs a list of node addresses (fix: "),
        (["--endpoints", "127.0.0.1", "--config-patch", "machine: {instal: {}}"], "unknown field 'instal'"),
        (["--endpoints", "127.0.0.1", "--install-image", "ghcr.io/siderolabs/installer:latest"], "installer_image:"),
        (["--endpoints", "127.0.0.1", "--with-secrets", "/nonexistent/secrets.yaml"], "cannot read the secrets"),
    ],
    ids=["no-endpoints", "patch-breaks-config", "unpinned-installer", "missing-secrets-file"],
)
def test_gen_config_refuses_with_the_reason_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    out = tmp_path / "out"

    code = main(["gen", "config", "c", "https://c.example:6443", "--nodes", "127.0.0.1", "-o", str(out), *arguments])

    assert code == 1 and message in capsys.readouterr().err
    assert not out.exists()


def test_render_lab_writes_a_validated_config_per_node_and_a_talosconfig(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render-lab", "--out", str(tmp_path)]) == 0

    bundle = load_secrets(tmp_path / "secrets.yaml")
    for name, role, _ in LAB_NODES:
        documents = parse_documents((tmp_path / f"{name}.yaml").read_text())
        validate_config(documents, CURRENT)
        assert documents[0]["machine"]["type"] == role and documents[1]["hostname"] == name
        assert documents[0]["cluster"]["network"]["cni"] == {"name": "none"}
        assert documents[0]["cluster"]["secret"] == bundle.cluster_secret
        assert private(tmp_path / f"{name}.yaml")
    context = load_talosconfig(tmp_path / "talosconfig").current()
    assert context.endpoints == ("127.10.0.11", "127.10.0.12", "127.10.0.13") and len(context.nodes) == 5
    assert capsys.readouterr().out.splitlines()[-1].startswith("wrote secrets.yaml, 5 machine configs")
