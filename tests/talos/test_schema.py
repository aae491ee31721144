import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from bench import bench_generate
from providers.talos_machine_config import render
from talos import schema as talos_schema
from talos.config import ClusterOptions, Role, generate_config, render_config
from talos.documents import Document, parse_documents
from talos.patches import apply_patches, load_patch, load_patches
from talos.schema import (
    MODULE,
    SCHEMA_IN_MODULE,
    SchemaError,
    document_definitions,
    fetch_schema,
    goproxy,
    load_schema,
    main,
    schema_file,
    validation_schema,
)
from talos.secrets import SecretsBundle
from talos.versions import CONTRACTS, CURRENT, VersionContract
from tests.components.program import run_program
from tests.talos.cases import RenderCase, rendered_cases

REFERENCE_SCHEMA = Path(__file__).parents[2] / "../shared/reference/talos-config.schema.json"
"""Talos' v1.13 schema as the project's references ship it, next to the checkout."""
PATCH_DATA = Path(__file__).parents[1] / "data" / "patches"


@dataclass
class FakeResponse:
    status_code: int
    content: bytes = b""


class FakeProxy:
    """Serves module zips the way the Go module proxy does, and records what was asked."""

    def __init__(self, schemas: dict[str, bytes], status_code: int = 200) -> None:
        self.schemas, self.status_code, self.urls = schemas, status_code, []

    def get(self, url: str, timeout: Any = None) -> FakeResponse:
        self.urls.append(url)
        version = url.rsplit("/", 1)[-1].removesuffix(".zip")
        if self.status_code != 200 or version not in self.schemas:
            return FakeResponse(self.status_code if self.status_code != 200 else 404)
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr(f"{MODULE}@{version}/go.mod", "module " + MODULE)
            if self.schemas[version]:
                zipped.writestr(f"{MODULE}@{version}/{SCHEMA_IN_MODULE}", self.schemas[version])
        return FakeResponse(200, archive.getvalue())


@pytest.fixture(scope="session")
def schema_bytes() -> dict[str, bytes]:
    """The real schemas of every contract (from the cache; the setup pre-fetches them)."""
    return {c.machinery_version: fetch_schema(c).read_bytes() for c in CONTRACTS.values()}


@pytest.fixture
def isolated_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("TALOS_HETZNER_CACHE", str(tmp_path))
    monkeypatch.setenv("GOPROXY", "off,https://proxy.example/|direct")
    return tmp_path


def serve(monkeypatch: pytest.MonkeyPatch, proxy: FakeProxy) -> FakeProxy:
    monkeypatch.setattr(talos_schema.requests, "get", proxy.get)
    return proxy


@pytest.fixture(scope="session")
def official_validators() -> dict[str, Draft202012Validator]:
    """Talos' own schemas, unmodified, compiled once: the references' file where the checkout sits beside it
    (it is the v1.13 one), else the same file from the machinery module (checksum-verified)."""
    schemas = {name: load_schema(contract) for name, contract in CONTRACTS.items()}
    if REFERENCE_SCHEMA.exists():
        schemas["v1.13"] = json.loads(REFERENCE_SCHEMA.read_text())
    return {name: Draft202012Validator(schema) for name, schema in schemas.items()}


def official_schema_errors(validator: Draft202012Validator, documents: list[Document]) -> list[str]:
    """What Talos' unmodified schema says about each document, the typed ones exactly as they are.

    From the v1alpha1 document two deprecated fields Talos' decoder still reads are left out, as they are absent
    from its schema: `persist` (Talos' own schema test deletes it the same way) and the legacy `machine.network`
    tree (v1.13's schema has no `machine.network` at all, its successor being the typed network documents; our
    validator checks the legacy tree against talos.schema's definition of it).
    """
    errors = []
    for document in documents:
        if "kind" not in document:
            machine = {key: value for key, value in document["machine"].items() if key != "network"}
            document = {**{key: value for key, value in document.items() if key != "persist"}, "machine": machine}
        kind = document.get("kind", "v1alpha1")
        errors += [f"{kind}: {list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(document)]
    return errors


@pytest.mark.parametrize(("render_case", "role"), rendered_cases())
def test_every_catalogue_config_passes_talos_official_schema(
    render_case: RenderCase,
    role: Role,
    secrets_bundle: SecretsBundle,
    official_validators: dict[str, Draft202012Validator],
) -> None:
    validator = official_validators[render_case.options.contract.name]
    documents = render_config(render_case.options, secrets_bundle, role)

    assert official_schema_errors(validator, documents) == []


@pytest.mark.parametrize(
    "patch_files",
    [
        ["cluster.yaml", "controlplane-role.yaml", "node-cp-1.yaml"],
        ["cluster.yaml", "node-cp-1-linkconfig.yaml"],
        ["drop-hostname-config.yaml", "labels-ops.yaml", "labels.json"],
    ],
    ids=["runbook-legacy-network", "runbook-link-config", "labels-json-and-delete"],
)
def test_patched_configs_pass_talos_official_schema(
    patch_files: list[str], official_validators: dict[str, Draft202012Validator]
) -> None:
    base = parse_documents((PATCH_DATA / "controlplane.yaml").read_text())
    documents = apply_patches(base, [load_patch(f"@{name}", base_dir=PATCH_DATA) for name in patch_files])

    assert official_schema_errors(official_validators["v1.13"], documents) == []


@pytest.mark.parametrize("role", ["controlplane", "worker"])
def test_bench_node_configs_pass_talos_official_schema(
    role: Role, secrets_bundle: SecretsBundle, official_validators: dict[str, Draft202012Validator]
) -> None:
    options = ClusterOptions(cluster_name="bench", endpoint="https://api.bench.example:6443")
    patches = load_patches([bench_generate.CLUSTER_PATCH, bench_generate.node_patch(7)])
    documents = generate_config(options, secrets_bundle, role, patches)

    assert official_schema_errors(official_validators["v1.13"], documents) == []


@pytest.mark.parametrize("stack", ["lab", "prod"])
def test_stack_node_configs_pass_talos_official_schema(
    stack: str, secrets_bundle: SecretsBundle, official_validators: dict[str, Draft202012Validator]
) -> None:
    configs = run_program(stack).of_type("pulumi-python:dynamic/talos:TalosMachineConfig")

    errors = {
        config.name: official_schema_errors(
            official_validators["v1.13"], render({**config.inputs, "secretsYaml": secrets_bundle.to_yaml()})
        )
        for config in configs
    }

    assert len(errors) == 5 and not any(errors.values()), errors


def test_load_schema_is_talos_schema_verified_by_checksum() -> None:
    path = schema_file(CURRENT)

    assert hashlib.sha256(path.read_bytes()).hexdigest() == CURRENT.schema_sha256
    assert load_schema(CURRENT)["$id"] == "https://talos.dev/v1.13/schemas/config.schema.json"
    if REFERENCE_SCHEMA.exists():
        assert load_schema(CURRENT) == json.loads(REFERENCE_SCHEMA.read_text())


def test_fetch_downloads_module_zip_from_first_https_proxy(
    monkeypatch: pytest.MonkeyPatch, isolated_cache: Path, schema_bytes: dict[str, bytes]
) -> None:
    proxy = serve(monkeypatch, FakeProxy(schema_bytes))

    path = fetch_schema(CURRENT)

    assert proxy.urls == [f"https://proxy.example/{MODULE}/@v/{CURRENT.machinery_version}.zip"]
    assert path == isolated_cache / "schemas" / CURRENT.machinery_version / "config.schema.json"
    assert path.read_bytes() == schema_bytes[CURRENT.machinery_version]


def test_fetch_uses_cache_without_network(
    monkeypatch: pytest.MonkeyPatch, isolated_cache: Path, schema_bytes: dict[str, bytes]
) -> None:
    proxy = serve(monkeypatch, FakeProxy(schema_bytes))
    fetch_schema(CURRENT)
    lines: list[str] = []

    fetch_schema(CURRENT, progress=lines.append)

    assert len(proxy.urls) == 1
    assert lines == [f"schema {CURRENT.machinery_version}: cached in {schema_file(CURRENT)}"]


def test_fetch_replaces_corrupt_cached_schema(
    monkeypatch: pytest.MonkeyPatch, isolated_cache: Path, schema_bytes: dict[str, bytes]
) -> None:
    path = schema_file(CURRENT)
    path.parent.mkdir(parents=True)
    path.write_text("{}")
    serve(monkeypatch, FakeProxy(schema_bytes))

    fetch_schema(CURRENT)

    assert path.read_bytes() == schema_bytes[CURRENT.machinery_version]


def test_fetch_refuses_schema_with_wrong_checksum(
    monkeypatch: pytest.MonkeyPatch, isolated_cache: Path, schema_bytes: dict[str, bytes]
) -> None:
    tampered = schema_bytes[CURRENT.machinery_version].replace(b"controlplane", b"controlplanE")
    serve(monkeypatch, FakeProxy({CURRENT.machinery_version: tampered}))

    with pytest.raises(SchemaError, match=rf"has SHA-256 [0-9a-f]{{64}}, expected {CURRENT.schema_sha256} \(fix:"):
        fetch_schema(CURRENT)
    assert not schema_file(CURRENT).exists()


def test_fetch_missing_module_version_names_the_fix(monkeypatch: pytest.MonkeyPatch, isolated_cache: Path) -> None:
    serve(monkeypatch, FakeProxy({}, status_code=410))

    with pytest.raises(SchemaError, match=r"HTTP 410 \(fix: pick a machinery_version of contract v1.13"):
        fetch_schema(CURRENT)


def test_fetch_module_zip_without_schema_refused(monkeypatch: pytest.MonkeyPatch, isolated_cache: Path) -> None:
    serve(monkeypatch, FakeProxy({CURRENT.machinery_version: b""}))

    with pytest.raises(SchemaError, match=rf"no {MODULE}@v1.13.9/config/schemas/config.schema.json in the module zip"):
        fetch_schema(CURRENT)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "https://proxy.golang.org"),
        ("direct", "https://proxy.golang.org"),
        ("https://a.example/,https://b.example", "https://a.example"),
        ("off|https://mirror.example", "https://mirror.example"),
    ],
)
def test_goproxy_takes_first_https_entry(monkeypatch: pytest.MonkeyPatch, value: str | None, expected: str) -> None:
    if value is None:
        monkeypatch.delenv("GOPROXY", raising=False)
    else:
        monkeypatch.setenv("GOPROXY", value)

    assert goproxy() == expected


def test_main_prefetches_every_contract(
    monkeypatch: pytest.MonkeyPatch,
    isolated_cache: Path,
    schema_bytes: dict[str, bytes],
    capsys: pytest.CaptureFixture[str],
) -> None:
    serve(monkeypatch, FakeProxy(schema_bytes))

    assert main([]) == 0

    for contract in CONTRACTS.values():
        assert schema_file(contract).read_bytes() == schema_bytes[contract.machinery_version]
    assert "schema v1.12.7: saved to" in capsys.readouterr().out


def test_main_unknown_contract_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["v1.99"]) == 2
    assert "unknown contract 'v1.99'; known: v1.13, v1.12" in capsys.readouterr().err


def test_main_reports_failed_download(monkeypatch: pytest.MonkeyPatch, isolated_cache: Path) -> None:
    serve(monkeypatch, FakeProxy({}, status_code=404))

    assert main(["v1.13"]) == 1


@pytest.mark.parametrize("contract", CONTRACTS.values(), ids=lambda c: c.name)
def test_validation_schema_keeps_every_official_rule(contract: VersionContract) -> None:
    official, extended = load_schema(contract), validation_schema(contract)

    assert "persist" not in official["$defs"]["v1alpha1.Config"]["properties"]
    assert extended["$defs"]["v1alpha1.Config"]["properties"]["persist"] == {"type": "boolean"}
    assert extended["$defs"]["v1alpha1.MachineConfig"]["properties"]["network"] == {
        "$ref": "#/$defs/legacy.NetworkConfig"
    }
    for name, definition in official["$defs"].items():
        extended_definition = extended["$defs"][name]
        assert extended_definition.get("additionalProperties") == definition.get("additionalProperties")
        assert extended_definition.get("required") == definition.get("required")
        properties, extended_properties = definition.get("properties", {}), extended_definition["properties"]
        kept = {field for field in properties if field not in ("network", "acceptedCAs")}
        for field in kept:
            for rule in ("type", "$ref", "enum", "pattern"):
                assert extended_properties[field].get(rule) == properties[field].get(rule), f"{name}.{field}"


@pytest.mark.parametrize("contract", CONTRACTS.values(), ids=lambda c: c.name)
def test_validation_schema_refuses_negative_integers(contract: VersionContract) -> None:
    port = validation_schema(contract)["$defs"]["v1alpha1.KubePrism"]["properties"]["port"]

    assert port == {**load_schema(contract)["$defs"]["v1alpha1.KubePrism"]["properties"]["port"], "minimum": 0}


def test_document_definitions_follow_the_contract() -> None:
    current, previous = (document_definitions(load_schema(c)) for c in (CONTRACTS["v1.13"], CONTRACTS["v1.12"]))

    assert current[("", "v1alpha1")] == "v1alpha1.Config"
    assert current[("v1alpha1", "HostnameConfig")] == "network.HostnameConfigV1Alpha1"
    assert ("v1alpha1", "KubeSpanConfig") in current
    assert ("v1alpha1", "KubeSpanConfig") not in previous
