"""The lab stack through the real engine: preview, up, re-run, refresh, destroy, and secret config."""

from __future__ import annotations

import base64
import json

import pytest

from providers.cluster_secrets import bundle_fingerprint
from talos.secrets import SecretsBundle
from tests.engine.conftest import EngineProject

pytestmark = pytest.mark.engine

CLUSTER_SECRETS = "pulumi-python:dynamic/talos:ClusterSecrets"


def _planned(preview_json: str) -> dict[str, int]:
    """Operation -> number of resources, from `pulumi preview --json`."""
    return json.loads(preview_json)["changeSummary"]


def _cluster_secrets(project: EngineProject) -> dict:
    [resource] = [r for r in project.resources() if r["type"] == CLUSTER_SECRETS]
    return resource


def test_preview_then_up_creates_cluster_secrets(lab_project: EngineProject) -> None:
    preview = lab_project.pulumi("preview", "--json")
    assert _planned(preview.stdout) == {"create": 2}  # the stack and ClusterSecrets

    lab_project.pulumi("up", "--yes", "--skip-preview")

    outputs = lab_project.outputs()
    bundle = SecretsBundle.from_yaml(outputs["secretsYaml"])
    assert outputs["secretsFingerprint"] == bundle_fingerprint(bundle)
    assert _cluster_secrets(lab_project)["outputs"]["source"] == "generated"


def test_second_up_changes_nothing(lab_project: EngineProject) -> None:
    lab_project.pulumi("up", "--yes", "--skip-preview")
    first = lab_project.outputs()

    lab_project.pulumi("up", "--yes", "--expect-no-changes")

    assert _planned(lab_project.pulumi("preview", "--json").stdout) == {"same": 2}
    assert lab_project.outputs() == first


def test_talos_version_change_keeps_the_bundle(lab_project: EngineProject) -> None:
    lab_project.pulumi("up", "--yes", "--skip-preview")
    first = lab_project.outputs()

    lab_project.pulumi("config", "set", "talosVersion", "v1.12.11")
    lab_project.pulumi("up", "--yes", "--skip-preview")

    assert lab_project.outputs() == first


def test_refresh_keeps_the_bundle(lab_project: EngineProject) -> None:
    lab_project.pulumi("up", "--yes", "--skip-preview")
    first = lab_project.outputs()

    lab_project.pulumi("refresh", "--yes", "--expect-no-changes")

    assert lab_project.outputs() == first


def test_destroy_forgets_cluster_secrets_offline(lab_project: EngineProject) -> None:
    lab_project.pulumi("up", "--yes", "--skip-preview")

    destroy = lab_project.pulumi("destroy", "--yes", "--skip-preview")

    assert "2 deleted" in destroy.stdout
    assert lab_project.resources() == []


def test_unsupported_talos_version_fails_preview_naming_the_field(lab_project: EngineProject) -> None:
    lab_project.pulumi("config", "set", "talosVersion", "v1.9.0")

    preview = lab_project.pulumi("preview", check=False)

    assert preview.returncode != 0
    assert "talosVersion" in preview.stdout + preview.stderr
    assert "not supported" in preview.stdout + preview.stderr


def test_secret_bundle_config_reaches_configure_and_never_shows_in_clear(lab_project: EngineProject) -> None:
    bundle = SecretsBundle.generate()
    lab_project.pulumi("config", "set", "--secret", "secretsBundle", stdin=bundle.to_yaml())

    lab_project.pulumi("preview")
    lab_project.pulumi("up", "--yes", "--skip-preview")
    lab_project.pulumi("refresh", "--yes")

    outputs = lab_project.outputs()
    assert outputs["secretsFingerprint"] == bundle_fingerprint(bundle)  # configure() received the imported bundle
    assert _cluster_secrets(lab_project)["outputs"]["source"] == "imported"
    secret_values = {
        "cluster secret": bundle.cluster_secret,
        "trustd token": bundle.trustd_token,
        "bootstrap token": bundle.bootstrap_token,
        "OS CA key": base64.b64encode(bundle.os.key).decode(),
    }
    for what, value in secret_values.items():
        assert value in outputs["secretsYaml"], f"{what}: the control is wrong"
        assert value not in lab_project.state_text(), f"{what} in clear in the state"
        assert value not in "\n".join(lab_project.transcript), f"{what} in clear in the engine output"
        assert value not in (lab_project.dir / "Pulumi.lab.yaml").read_text(), f"{what} in clear in the stack file"


def test_program_exception_fails_preview_with_the_programs_message(lab_project: EngineProject) -> None:
    (lab_project.dir / "__main__.py").write_text("raise RuntimeError('boom from the program')\n")

    preview = lab_project.pulumi("preview", check=False)

    assert preview.returncode != 0
    assert "boom from the program" in preview.stdout + preview.stderr
    assert "non-zero exit code" not in preview.stdout + preview.stderr  # the host passes the executor's bail on


def test_secrets_bundle_in_plain_text_fails_preview_with_the_fix(lab_project: EngineProject) -> None:
    lab_project.pulumi("config", "set", "secretsBundle", "cluster: {}")

    preview = lab_project.pulumi("preview", check=False)

    assert preview.returncode != 0
    assert "secretsBundle is stored in plain text" in preview.stdout + preview.stderr
    assert "pulumi config set --secret secretsBundle" in preview.stdout + preview.stderr
