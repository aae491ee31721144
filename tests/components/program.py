"""Run the real `__main__.py` under Pulumi's mocks and record what it registers, with every resource option.

`run_program(stack)` loads a stack file's config (plus the secrets a user would set), runs the program with
`pulumi.runtime.set_mocks`, and returns each registration request (type, name, parent, dependencies, protect,
retainOnDelete, additionalSecretOutputs) and the resolved stack outputs with their secret flags. The mocks give each
resource plausible outputs, and, as the engine does, mark the outputs named in `additionalSecretOutputs` secret.
"""

from __future__ import annotations

import asyncio
import json
import runpy
from dataclasses import dataclass, field
from typing import Any

import pulumi
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from pulumi.runtime import mocks, rpc
from pulumi.runtime.settings import get_root_resource

from tools.env import PROJECT_DIR

PROJECT = "talos-hetzner"
PROGRAM = PROJECT_DIR / "__main__.py"
RESCUE_KEY = (
    ed25519.Ed25519PrivateKey.generate()
    .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    .decode()
)
SECRETS = {
    f"{PROJECT}:robotPassword": "robot-Pa55-never-shown",
    f"{PROJECT}:rescueSshKey": RESCUE_KEY,
    "hcloud:token": "t" * 64,
}
FAKE_OUTPUTS: dict[str, dict[str, Any]] = {
    "pulumi-python:dynamic/talos:ClusterSecrets": {"secretsYaml": "SECRET-bundle", "fingerprint": "ab" * 32},
    "pulumi-python:dynamic/talos:ClusterBootstrap": {"talosconfig": "SECRET-talosconfig", "kubeconfig": "SECRET-kube"},
    "pulumi-python:dynamic/talos:TalosMachineConfig": {"machineConfig": "SECRET-config", "configSha256": "cd" * 32},
    "pulumi-python:dynamic/hetzner:RescueInstall": {"installDisk": {"byId": "/dev/disk/by-id/nvme-eui.1"}},
}
MOCK_SECRETS = ("SECRET-", *SECRETS.values())
"""Strings that must never appear in a plain (non-secret) stack output."""
STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    parent: str
    dependencies: list[str]
    protect: bool
    retain_on_delete: bool
    secret_outputs: list[str]
    inputs: dict[str, Any]


@dataclass
class ProgramRun:
    resources: list[Registration] = field(default_factory=list)
    outputs: dict[str, tuple[Any, bool]] = field(default_factory=dict)
    """Stack output name -> (value, is secret)."""

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> Registration:
        [found] = [r for r in self.resources if r.name == name]
        return found


class FakeCloud(mocks.Mocks):
    """Outputs a deployment would give, numbered per resource: ids, addresses, and the providers' outputs."""

    def __init__(self) -> None:
        self.count = 0

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.count += 1
        state = dict(args.inputs)
        state.pop("__provider", None)
        state.update(FAKE_OUTPUTS.get(args.typ, {}))
        if args.typ == "hcloud:index/server:Server":
            state["ipv4Address"] = f"127.99.2.{self.count}"
            state["ipv6Address"] = f"2001:db8:99:{self.count}::1"
        return str(1000 + self.count), state

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None


class RecordingMonitor(mocks.MockMonitor):
    """Keeps every registration request; marks `additionalSecretOutputs` secret, as the engine does."""

    def __init__(self, fake: FakeCloud) -> None:
        super().__init__(fake)
        self.run = ProgramRun()

    def RegisterResource(self, request: Any) -> Any:
        """Runs on an executor thread; the event loop the mocks make for that thread is closed again here."""
        before = _thread_loop()
        try:
            return self._register(request)
        finally:
            made = _thread_loop()
            if made is not None and made is not before:
                made.close()
                asyncio.set_event_loop(None)

    def _register(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == STACK_TYPE:
            return response
        secret = set(request.additionalSecretOutputs)
        state = rpc.deserialize_properties(response.object) if response.object else {}
        wrapped = {key: rpc.wrap_rpc_secret(value) if key in secret else value for key, value in state.items()}
        response.object.CopyFrom(mocks._sync_await(rpc.serialize_properties(wrapped, {})))
        self.run.resources.append(
            Registration(
                type=request.type,
                name=request.name,
                urn=response.urn,
                parent=request.parent,
                dependencies=list(request.dependencies),
                protect=request.protect,
                retain_on_delete=request.retainOnDelete,
                secret_outputs=sorted(secret),
                inputs=rpc.deserialize_properties(request.object),
            )
        )
        return response


def _thread_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_event_loop()
    except RuntimeError:
        return None


def stack_config(stack: str) -> dict[str, str]:
    """The stack file's config as the engine hands it to a program: full keys, objects as JSON text."""
    document = yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text())
    values = {**document["config"], **SECRETS}
    values.setdefault(f"{PROJECT}:robotUser", "#ws+lab")
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in values.items()}


def run_program(
    stack: str,
    *,
    preview: bool = False,
    config: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
) -> ProgramRun:
    """Run `__main__.py` for `stack` under mocks; the registrations and the resolved stack outputs."""
    previous = getattr(asyncio.get_event_loop_policy()._local, "_loop", None)  # type: ignore[attr-defined]
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # the mocks' futures live on it; closed at the end
    monitor = RecordingMonitor(FakeCloud())
    mocks.set_mocks(monitor.mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor)
    keys = list(SECRETS) if secret_keys is None else secret_keys
    pulumi.runtime.set_all_config(config if config is not None else stack_config(stack), keys)

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        runpy.run_path(str(PROGRAM), run_name="__main__")
        exported: dict[str, Any] = get_root_resource().outputs  # type: ignore[union-attr]
        return pulumi.Output.all(*[_resolved(name, value, monitor.run) for name, value in exported.items()])

    try:
        program()
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
        asyncio.set_event_loop(previous)
    return monitor.run


def _resolved(name: str, value: Any, run: ProgramRun) -> pulumi.Output[None]:
    output = pulumi.Output.from_input(value)

    async def record() -> None:
        run.outputs[name] = (await output.future(), await output.is_secret())

    return pulumi.Output.from_input(record())


def secret_in(text: Any) -> list[str]:
    """The mock secrets found in a value (as JSON)."""
    shown = json.dumps(text, default=str)
    return [secret for secret in MOCK_SECRETS if secret in shown]
