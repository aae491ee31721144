"""ClusterSecrets through the SDK's real dynamic-provider gRPC server (no CLI): the provider contract."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from providers.cluster_secrets import ClusterSecretsArgs, ClusterSecretsProvider, bundle_fingerprint
from talos.secrets import SecretsBundle
from talos.versions import CONTRACTS
from tests.providers.harness import UNKNOWN, ProviderServer, ResourceDriver, provider_server

TYPE = "pulumi-python:dynamic/talos:ClusterSecrets"
BUNDLE_KEY = "talos-hetzner:secretsBundle"
INPUTS = ClusterSecretsArgs(talos_version="v1.13.9").to_props()


@pytest.fixture(scope="module")
def generating(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProviderServer]:
    with provider_server(tmp_path_factory.mktemp("cs") / "provider.log", {}) as server:
        yield server


@pytest.fixture(scope="module")
def imported_bundle() -> SecretsBundle:
    return SecretsBundle.generate(CONTRACTS["v1.12"])


@pytest.fixture(scope="module")
def importing(tmp_path_factory: pytest.TempPathFactory, imported_bundle: SecretsBundle) -> Iterator[ProviderServer]:
    config = {BUNDLE_KEY: imported_bundle.to_yaml()}
    with provider_server(tmp_path_factory.mktemp("cs") / "provider.log", config, secrets=[BUNDLE_KEY]) as server:
        yield server


def _driver(server: ProviderServer) -> ResourceDriver:
    return ResourceDriver(server, ClusterSecretsProvider(), "cluster-secrets", TYPE)


def test_create_without_config_generates_a_bundle(generating: ProviderServer) -> None:
    step = _driver(generating).up(INPUTS)

    bundle = SecretsBundle.from_yaml(step.outputs["secretsYaml"])
    assert step.op == "create"
    assert step.outputs["source"] == "generated"
    assert step.outputs["fingerprint"] == bundle_fingerprint(bundle)


def test_create_for_older_contract_generates_its_encryption_secret(generating: ProviderServer) -> None:
    bundle = SecretsBundle.from_yaml(
        _driver(generating).up({**INPUTS, "talosVersion": "v1.12.11"}).outputs["secretsYaml"]
    )

    assert bundle.secretbox_encryption_secret is not None


def test_create_with_secret_config_imports_that_bundle(importing: ProviderServer, imported_bundle) -> None:
    driver = _driver(importing)

    step = driver.up(INPUTS)

    assert step.outputs["source"] == "imported"
    assert step.outputs["secretsYaml"] == imported_bundle.to_yaml()
    assert driver.id == bundle_fingerprint(imported_bundle)


def test_rerun_with_other_talos_version_changes_nothing(generating: ProviderServer) -> None:
    driver = _driver(generating)
    first = driver.up(INPUTS)

    again = driver.up({**INPUTS, "talosVersion": "v1.12.11"})

    assert again.op == "same"
    assert again.outputs["secretsYaml"] == first.outputs["secretsYaml"]


def test_refresh_keeps_outputs_and_destroy_succeeds(generating: ProviderServer) -> None:
    driver = _driver(generating)
    outputs = driver.up(INPUTS).outputs

    driver.refresh()
    assert driver.outputs == outputs
    driver.destroy()


def test_preview_with_unknown_talos_version_passes_check(generating: ProviderServer) -> None:
    checked, diff = _driver(generating).preview({**INPUTS, "talosVersion": UNKNOWN})

    assert checked.failures == []
    assert diff is None


@pytest.mark.parametrize(
    ("version", "reason"),
    [("v1.9.0", "not supported"), ("latest", "is not a version"), (None, "required")],
)
def test_check_rejects_bad_talos_version_by_field(generating: ProviderServer, version: str | None, reason: str) -> None:
    checked, _ = _driver(generating).preview({**INPUTS, "talosVersion": version})

    [(field, message)] = checked.failures
    assert field == "talosVersion"
    assert reason in message


def test_check_rejects_malformed_secret_bundle_without_quoting_it(tmp_path: Path) -> None:
    broken = SecretsBundle.generate().to_yaml().replace("bootstraptoken: ", "bootstraptoken: x")
    token = broken.split("bootstraptoken: ")[1].split()[0]
    with provider_server(tmp_path / "provider.log", {BUNDLE_KEY: broken}, secrets=[BUNDLE_KEY]) as server:
        checked, _ = _driver(server).preview(INPUTS)

    [(field, message)] = checked.failures
    assert field == "secretsBundle"
    assert "bootstraptoken" in message
    assert token not in message
