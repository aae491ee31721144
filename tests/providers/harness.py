"""Drive any of our dynamic providers through the SDK's real dynamic-provider gRPC server.

`ProviderServer` starts `python -m pulumi.dynamic` as the engine's plugin shim does (cwd = the checkout,
`PULUMI_PROJECT` set), configures it with stack config (secrets wrapped as on the wire), and calls
Check/Diff/Create/Read/Update/Delete with the pickled provider in `__provider`, exactly as the engine sends
them. `ResourceDriver` adds the engine's step logic for one resource (create, same, update, replace,
refresh, destroy) so tests can express `pulumi up` re-runs. Values come back as the wire gives them
(ints as floats). The provider's stderr (its progress lines) is collected in a log file.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2
from pulumi.dynamic import ResourceProvider
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
PROJECT = "talos-hetzner"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""The wire value of an output not known yet (during preview)."""
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


def secret(value: Any) -> dict[str, Any]:
    """The wire form of a secret value."""
    return {_SIG_KEY: _SECRET_SIG, "value": value}


def to_struct(values: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(struct)


class ProviderCallError(Exception):
    """A provider call failed (the provider raised, or gRPC failed); `details` holds the server's text."""

    def __init__(self, method: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{method} failed with {code.name}: {details}")
        self.method, self.code, self.details = method, code, details


@dataclass(frozen=True)
class CheckOutcome:
    inputs: dict[str, Any]
    failures: list[tuple[str, str]]


@dataclass(frozen=True)
class DiffOutcome:
    changes: str
    """`none`, `some` or `unknown` (the provider left the decision to the engine)."""
    replaces: list[str]
    delete_before_replace: bool


class ProviderServer:
    """One `python -m pulumi.dynamic` process and a gRPC stub to it (a context manager)."""

    def __init__(self, log: Path, *, project: str = PROJECT, env: dict[str, str] | None = None) -> None:
        self.log, self.project = log, project
        self._env = {**os.environ, "PULUMI_PROJECT": project, "PYTHONPATH": str(REPO), **(env or {})}
        self._proc: subprocess.Popen[bytes] | None = None
        self._channel: grpc.Channel | None = None
        self._stub: provider_pb2_grpc.ResourceProviderStub | None = None

    def __enter__(self) -> ProviderServer:
        with open(self.log, "ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-u", "-m", "pulumi.dynamic"],
                cwd=REPO,
                env=self._env,
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        assert self._proc.stdout is not None
        port = self._proc.stdout.readline().decode().strip()
        if not port.isdigit():
            self.__exit__()
            raise RuntimeError(f"the dynamic provider server did not start: {self.stderr()[-2000:]}")
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self._stub = provider_pb2_grpc.ResourceProviderStub(self._channel)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._channel is not None:
            self._channel.close()
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            if self._proc.stdout is not None:
                self._proc.stdout.close()

    def stderr(self) -> str:
        """Everything the provider process wrote to stderr so far (progress lines, warnings, tracebacks)."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def configure(self, config: dict[str, Any], *, secrets: Iterable[str] = ()) -> None:
        """Send stack config as the engine does: full `namespace:key` names, string values, secrets wrapped."""
        hidden = set(secrets)
        args = {key: secret(value) if key in hidden else value for key, value in config.items()}
        self._call("Configure", provider_pb2.ConfigureRequest(args=to_struct(args), acceptSecrets=True))

    def check(self, urn: str, olds: dict[str, Any], news: dict[str, Any]) -> CheckOutcome:
        request = provider_pb2.CheckRequest(urn=urn, olds=to_struct(olds), news=to_struct(news))
        response = self._call("Check", request)
        return CheckOutcome(from_struct(response.inputs), [(f.property, f.reason) for f in response.failures])

    def diff(self, urn: str, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffOutcome:
        request = provider_pb2.DiffRequest(urn=urn, id=id_, olds=to_struct(olds), news=to_struct(news))
        response = self._call("Diff", request)
        changes = {0: "unknown", 1: "none", 2: "some"}[response.changes]
        return DiffOutcome(changes, list(response.replaces), response.deleteBeforeReplace)

    def create(self, urn: str, props: dict[str, Any], *, timeout: float = 300) -> tuple[str, dict[str, Any]]:
        response = self._call("Create", provider_pb2.CreateRequest(urn=urn, properties=to_struct(props)), timeout)
        return response.id, from_struct(response.properties)

    def read(self, urn: str, id_: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        response = self._call("Read", provider_pb2.ReadRequest(urn=urn, id=id_, properties=to_struct(props)))
        return response.id, from_struct(response.properties)

    def update(self, urn: str, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        request = provider_pb2.UpdateRequest(urn=urn, id=id_, olds=to_struct(olds), news=to_struct(news))
        return from_struct(self._call("Update", request, 300).properties)

    def delete(self, urn: str, id_: str, props: dict[str, Any]) -> None:
        self._call("Delete", provider_pb2.DeleteRequest(urn=urn, id=id_, properties=to_struct(props)))

    def _call(self, method: str, request: Any, timeout: float = 60) -> Any:
        assert self._stub is not None, "use ProviderServer as a context manager"
        try:
            return getattr(self._stub, method)(request, timeout=timeout)
        except grpc.RpcError as error:
            raise ProviderCallError(method, error.code(), error.details() or "") from None


@dataclass
class Step:
    """What one `up` did to the resource."""

    op: str
    """`create`, `same`, `update` or `replace`."""
    outputs: dict[str, Any]
    failures: list[tuple[str, str]] = field(default_factory=list)


class ResourceDriver:
    """One resource's state between `up` runs, stepped the way the engine steps a dynamic resource."""

    def __init__(self, server: ProviderServer, provider: ResourceProvider, name: str, type_: str) -> None:
        self.server = server
        self.blob = serialize_provider(provider)
        self.urn = f"urn:pulumi:test::{server.project}::{type_}::{name}"
        self.id: str | None = None
        self.inputs: dict[str, Any] = {}
        self.outputs: dict[str, Any] = {}

    def preview(self, inputs: dict[str, Any]) -> tuple[CheckOutcome, DiffOutcome | None]:
        """Check and (for an existing resource) Diff, as `pulumi preview` does; nothing is changed."""
        checked = self.server.check(self.urn, self.inputs, self._props(inputs))
        if self.id is None or checked.failures:
            return checked, None
        return checked, self.server.diff(self.urn, self.id, self.outputs, checked.inputs)

    def up(self, inputs: dict[str, Any], *, timeout: float = 300) -> Step:
        """Check, then create, keep, update or replace; check failures stop the step as they stop `pulumi up`."""
        checked = self.server.check(self.urn, self.inputs, self._props(inputs))
        if checked.failures:
            return Step("failed", self.outputs, checked.failures)
        if self.id is None:
            self.id, self.outputs = self.server.create(self.urn, checked.inputs, timeout=timeout)
            self.inputs = checked.inputs
            return Step("create", self.outputs)
        diff = self.server.diff(self.urn, self.id, self.outputs, checked.inputs)
        if diff.changes == "none":
            self.inputs = checked.inputs
            return Step("same", self.outputs)
        if diff.replaces:
            fresh = self.server.check(self.urn, {}, self._props(inputs))
            new_id, new_outputs = self.server.create(self.urn, fresh.inputs, timeout=timeout)
            self.server.delete(self.urn, self.id, self.outputs)
            self.id, self.inputs, self.outputs = new_id, fresh.inputs, new_outputs
            return Step("replace", self.outputs)
        self.outputs = self.server.update(self.urn, self.id, self.outputs, checked.inputs)
        self.inputs = checked.inputs
        return Step("update", self.outputs)

    def refresh(self) -> None:
        assert self.id is not None
        self.id, self.outputs = self.server.read(self.urn, self.id, self.outputs)

    def destroy(self) -> None:
        assert self.id is not None
        self.server.delete(self.urn, self.id, self.outputs)
        self.id, self.inputs, self.outputs = None, {}, {}

    def _props(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return {**inputs, "__provider": self.blob}

    def leaked_cluster_secrets(self, bundle_yaml: str, kubeconfig: str, error: ProviderCallError) -> list[str]:
        """The bundle's keys/secrets/tokens and the kubeconfig's client key found in clear in the provider blob, its
        stderr, the error or the outputs that are not declared secret (`secretsYaml`, `kubeconfig`)."""
        secrets = re.findall(r"(?:key|secret|token|bootstraptoken): (\S+)", bundle_yaml)
        secrets += re.findall(r"client-key-data: (\S+)", kubeconfig)
        assert len(secrets) > 5, "the control: the bundle and kubeconfig hold secrets to look for"
        shown = {key: value for key, value in self.outputs.items() if key not in ("secretsYaml", "kubeconfig")}
        texts = [base64.b64decode(self.blob).decode("latin-1"), self.server.stderr(), error.details, str(shown)]
        return [secret for secret in secrets for text in texts if secret in text]


@contextmanager
def provider_server(log: Path, config: dict[str, Any], *, secrets: Iterable[str] = ()) -> Iterator[ProviderServer]:
    """A started and configured provider server (one per config: configure() is cached per provider blob)."""
    with ProviderServer(log) as server:
        server.configure(config, secrets=secrets)
        yield server
