"""Drive the Talos oracle (tools/talos-oracle): one subprocess per question, JSON in and out.

The oracle is Talos' own Go machinery. A rejection by Talos is an answer (non-empty `errors`); an
OracleError means the oracle itself could not answer (bad request, crash), which is a bug on our side.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from talos.versions import CURRENT

TIMEOUT = 120.0


class OracleError(RuntimeError):
    """The Talos oracle could not answer."""


@dataclass(frozen=True)
class Verdict:
    """What Talos made of an input: accepted when `errors` is empty."""

    errors: tuple[str, ...]
    stage: str = ""
    """Where Talos rejected it: "load", "validate", "apply", "secrets", "patches", "generate", "client", or
    "panic" (machinery crashed on it, as talosctl would)."""
    warnings: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class Generated:
    """Talos' `gen config` output for one set of inputs."""

    verdict: Verdict
    controlplane: str = field(default="", repr=False)
    worker: str = field(default="", repr=False)
    talosconfig: str = field(default="", repr=False)


@dataclass(frozen=True)
class ClientConfigFacts:
    """What Talos' client made of a talosconfig: the current context and, per context, its certificate facts."""

    verdict: Verdict
    context: str
    contexts: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class GenerateRequest:
    """Every `talosctl gen config` input, given explicitly (machinery's defaults differ from the CLI's)."""

    secrets_yaml: str = field(repr=False)
    version_contract: str
    cluster_name: str
    endpoint: str
    kubernetes_version: str
    dns_domain: str
    install_disk: str
    install_image: str
    discovery: bool
    additional_sans: tuple[str, ...] = ()
    patches: tuple[str, ...] = ()
    patches_control_plane: tuple[str, ...] = ()
    patches_worker: tuple[str, ...] = ()

    @classmethod
    def plain(cls, secrets_yaml: str, **changes: Any) -> GenerateRequest:
        """`talosctl gen config conformance https://192.0.2.10:6443` for the current contract, with `changes`."""
        return cls(
            **{
                "secrets_yaml": secrets_yaml,
                "version_contract": CURRENT.name,
                "cluster_name": "conformance",
                "endpoint": "https://192.0.2.10:6443",
                "kubernetes_version": CURRENT.kubernetes_version,
                "dns_domain": "cluster.local",
                "install_disk": "/dev/sda",
                "install_image": CURRENT.installer_image,
                "discovery": True,
                **changes,
            }
        )

    def to_json(self) -> dict[str, Any]:
        return {name: list(value) if isinstance(value, tuple) else value for name, value in self.__dict__.items()}


ApiCall = Literal["version", "apply", "bootstrap", "kubeconfig", "machine-config"]


@dataclass(frozen=True)
class Target:
    """How machinery's API client reaches a node: with a talosconfig, or without (maintenance mode's insecure
    TLS, as `talosctl --insecure`); `endpoints` override the talosconfig's, `node`/`nodes` route the call."""

    endpoints: tuple[str, ...] = ()
    talosconfig: str = field(default="", repr=False)
    node: str = ""
    nodes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {name: list(value) if isinstance(value, tuple) else value for name, value in self.__dict__.items()}


@dataclass(frozen=True)
class ApiAnswer:
    """The outcome of one call by machinery's client: its values, or its errors and gRPC code."""

    errors: tuple[str, ...]
    stage: str
    """"client" (client.New refused the options) or "call"."""
    code: str
    """The gRPC code name of a failed call, as Go spells it ("PermissionDenied"); empty on success."""
    values: dict[str, Any] = field(repr=False)
    """The answer's other fields (may hold a kubeconfig or machine config: secret)."""

    @property
    def ok(self) -> bool:
        return not self.errors


class Oracle:
    """Questions to Talos' machinery, answered by the built talos-oracle binary."""

    def __init__(self, binary: Path) -> None:
        self.binary = binary

    def ask(self, command: str, request: dict[str, Any]) -> dict[str, Any]:
        """Run one oracle command; the answer is a dict that always carries `errors`."""
        try:
            result = subprocess.run(
                [str(self.binary), command],
                input=json.dumps(request),
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            raise OracleError(f"talos-oracle {command}: no answer within {TIMEOUT:.0f}s") from None
        if result.returncode != 0:
            raise OracleError(f"talos-oracle {command} failed (exit {result.returncode}): {result.stderr.strip()}")
        return json.loads(result.stdout)

    def info(self) -> dict[str, str]:
        """The machinery and Go versions the oracle was built with."""
        answer = self.ask("info", {})
        return {"machinery": answer["machinery"], "go": answer["go"]}

    def validate(self, config: str) -> Verdict:
        """Load and validate a machine config as a metal node would, strict."""
        answer = self.ask("validate", {"config": config})
        return _verdict(answer)

    def encode(self, config: str) -> tuple[Verdict, str]:
        """The config as Talos writes it once loaded into its typed documents (equal encodings mean the same)."""
        answer = self.ask("encode", {"config": config})
        return _verdict(answer), answer.get("config", "")

    def generate_secrets(self, version_contract: str) -> str:
        """A fresh `talosctl gen secrets` bundle for a contract such as `v1.13`."""
        return str(self.ask("secrets-generate", {"version_contract": version_contract})["secrets_yaml"])

    def load_secrets(self, secrets_yaml: str) -> tuple[Verdict, str]:
        """Load and validate a bundle as `gen config --with-secrets` does; also return it as Talos writes it."""
        answer = self.ask("secrets-load", {"secrets_yaml": secrets_yaml})
        return _verdict(answer), answer.get("secrets_yaml", "")

    def generate(self, request: GenerateRequest) -> Generated:
        """Generate controlplane, worker and talosconfig as `talosctl gen config` does."""
        answer = self.ask("generate", request.to_json())
        return Generated(
            verdict=_verdict(answer),
            controlplane=answer.get("controlplane", ""),
            worker=answer.get("worker", ""),
            talosconfig=answer.get("talosconfig", ""),
        )

    def patch(self, config: str, patches: list[str]) -> tuple[Verdict, str]:
        """Apply patches in order as `talosctl machineconfig patch` does; return the verdict and the result."""
        answer = self.ask("patch", {"config": config, "patches": patches})
        return _verdict(answer), answer.get("config", "")

    def talosconfig(self, text: str) -> ClientConfigFacts:
        """Load a talosconfig with Talos' client and describe each context's client certificate."""
        answer = self.ask("talosconfig", {"talosconfig": text})
        return ClientConfigFacts(_verdict(answer), answer.get("context", ""), answer.get("contexts", {}))

    def merge_talosconfig(self, existing: str, new: str) -> tuple[Verdict, str]:
        """Merge `new` into `existing` as `talosctl config merge` does; return the merged text."""
        answer = self.ask("talosconfig-merge", {"talosconfig": existing, "merge": new})
        return _verdict(answer), answer.get("talosconfig", "")

    def api(self, call: ApiCall, target: Target, **request: Any) -> ApiAnswer:
        """One Talos API call by machinery's client (`client.New`) against a live node."""
        answer = self.ask(f"api-{call}", {**target.to_json(), **request})
        errors, stage, code = tuple(answer.pop("errors")), answer.pop("stage", ""), answer.pop("code", "")
        return ApiAnswer(errors=errors, stage=stage, code=code, values=answer)

    def descriptors(self, files: list[str]) -> dict[str, Any]:
        """The Talos API's proto descriptors machinery compiles, for the given proto file paths."""
        answer = self.ask("descriptors", {"files": files})
        if answer["errors"]:
            raise OracleError(f"talos-oracle descriptors: {'; '.join(answer['errors'])}")
        return answer


def _verdict(answer: dict[str, Any]) -> Verdict:
    return Verdict(
        errors=tuple(answer["errors"]),
        stage=answer.get("stage", ""),
        warnings=tuple(answer.get("warnings", ())),
    )
