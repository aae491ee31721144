"""ClusterSecrets: the cluster's Talos secrets bundle, made once and kept in the (encrypted) stack state.

Create generates a bundle as `talosctl gen secrets` does, or imports the talosctl `secrets.yaml` given in the stack's
secret config `secretsBundle` (`pulumi config set --secret secretsBundle < secrets.yaml`). The bundle is read in
`configure()`, in the provider process, so it is never pickled into the state. Outputs: `secretsYaml` (secret) and
`fingerprint`, the SHA-256 of the OS CA certificate (public: it identifies the bundle in logs and diffs).

One-shot: `diff` never reports changes, so neither a Talos version change nor a new `secretsBundle` touches the
bundle of a running cluster (replace it deliberately with `pulumi up --replace <urn>`). Delete touches nothing remote.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from cryptography.hazmat.primitives import hashes
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    Resource,
    ResourceProvider,
)

from providers.registration import secret_outputs
from talos.errors import TalosError
from talos.secrets import SecretsBundle
from talos.versions import contract_for

SECRETS_BUNDLE_CONFIG = "secretsBundle"
_SOURCE = f"stack config {SECRETS_BUNDLE_CONFIG}"


@dataclass(frozen=True)
class ClusterSecretsArgs:
    """Inputs of ClusterSecrets."""

    talos_version: pulumi.Input[str]
    """Talos release whose version contract a generated bundle follows (e.g. v1.13.9)."""

    def to_props(self) -> dict[str, Any]:
        return {"talosVersion": self.talos_version, "secretsYaml": None, "fingerprint": None, "source": None}


class ClusterSecrets(Resource, module="talos", name="ClusterSecrets"):
    """The cluster's secrets bundle; `secretsYaml` is a secret output."""

    secretsYaml: pulumi.Output[str]
    fingerprint: pulumi.Output[str]
    source: pulumi.Output[str]
    """`generated` or `imported`."""

    def __init__(self, name: str, args: ClusterSecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(ClusterSecretsProvider(), name, args.to_props(), secret_outputs(["secretsYaml"], opts))


class ClusterSecretsProvider(ResourceProvider):
    """Generates or imports the bundle; holds only the configured import text, never pickled."""

    serialize_as_secret_always = False
    imported_yaml: str | None = None

    def configure(self, req: ConfigureRequest) -> None:
        self.imported_yaml = req.config.get(SECRETS_BUNDLE_CONFIG) or None

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        version = news.get("talosVersion")
        if isinstance(version, str):
            try:
                contract_for(version)
            except TalosError as err:
                failures.append(CheckFailure("talosVersion", str(err)))
        elif not isinstance(version, pulumi.output.Unknown):
            failures.append(CheckFailure("talosVersion", "required: a Talos release such as v1.13.9"))
        if self.imported_yaml is not None:
            try:
                SecretsBundle.from_yaml(self.imported_yaml, source=_SOURCE)
            except TalosError as err:
                failures.append(CheckFailure(SECRETS_BUNDLE_CONFIG, str(err)))
        return CheckResult(news, failures)

    def diff(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        if self.imported_yaml is not None:
            bundle, source = SecretsBundle.from_yaml(self.imported_yaml, source=_SOURCE), "imported"
        else:
            bundle, source = SecretsBundle.generate(contract_for(props["talosVersion"])), "generated"
        fingerprint = bundle_fingerprint(bundle)
        outs = {**props, "secretsYaml": bundle.to_yaml(), "fingerprint": fingerprint, "source": source}
        return CreateResult(fingerprint, outs)


def bundle_fingerprint(bundle: SecretsBundle) -> str:
    """SHA-256 (hex) of the OS CA certificate: names a bundle without revealing any secret."""
    return bundle.os.certificate().fingerprint(hashes.SHA256()).hex()
