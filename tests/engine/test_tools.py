"""The engine's tools as built (or found) report the pinned versions, and the hcloud plugin serves the tokens of the
pinned pulumi_hcloud package."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pulumi_hcloud
import pytest
from google.protobuf import empty_pb2
from pulumi.runtime.proto import provider_pb2_grpc

from tests.engine.conftest import skip_or_fail
from tools.env import engine_env, hcloud_plugin_problem, installed_hcloud_plugin, pulumi_bin_dir
from tools.pulumi_tools import HCLOUD_VERSION, PULUMI_VERSION

pytestmark = pytest.mark.engine

MISSING_UPSTREAM = {"hcloud:index/getNetworkMembers:getNetworkMembers"}
"""pulumi_hcloud functions missing from terraform-provider-hcloud v1.68.0, the newest served (docs/engine.md)."""
_TOKEN = re.compile(r"""pulumi\.(?:type_token|runtime\.(?:invoke|call)\w*)\(['"]([^'"]+)['"]""")


@pytest.fixture
def env(engine_home: Path, tmp_path: Path) -> dict[str, str]:
    """The engine environment on the session's home, the hcloud plugin installed or linked there."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")} | {"PULUMI_HOME": str(engine_home)}
    environment = engine_env(lab=False, state_dir=tmp_path / "state", base=base)
    problem = hcloud_plugin_problem(engine_home)
    if problem is not None:
        skip_or_fail(problem)
    return environment


def _version(argv: list[str]) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.strip()


def test_cli_reports_the_pinned_sdk_version(engine_home: Path) -> None:
    assert _version([str(pulumi_bin_dir() / "pulumi"), "version"]) == f"v{PULUMI_VERSION}"


def test_language_host_reports_the_pinned_sdk_version(engine_home: Path) -> None:
    host = pulumi_bin_dir() / "pulumi-language-python"

    assert _version([str(host), "-version"]).removeprefix("v") == PULUMI_VERSION


@pytest.fixture
def hcloud_plugin(env: dict[str, str], engine_home: Path) -> Iterator[provider_pb2_grpc.ResourceProviderStub]:
    """The installed hcloud plugin, started on its own (it prints its port), as a gRPC client."""
    directory = installed_hcloud_plugin(engine_home)
    assert directory is not None
    # The engine address is only dialled when the provider logs through the engine; nothing here does.
    plugin = subprocess.Popen(
        [str(directory / "pulumi-resource-hcloud"), "127.0.0.1:1"], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert plugin.stdout is not None
        port = int(_first_line(plugin, timeout=60))
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield provider_pb2_grpc.ResourceProviderStub(channel)
    finally:
        plugin.terminate()
        plugin.wait(timeout=30)
        if plugin.stdout is not None:
            plugin.stdout.close()


def test_hcloud_plugin_reports_the_pinned_package_version(
    hcloud_plugin: provider_pb2_grpc.ResourceProviderStub,
) -> None:
    assert hcloud_plugin.GetPluginInfo(empty_pb2.Empty(), timeout=60).version == HCLOUD_VERSION


def _package_tokens() -> set[str]:
    """Every resource, function and provider-method token the pinned pulumi_hcloud package uses."""
    root = Path(pulumi_hcloud.__file__).parent
    tokens = {token for path in root.rglob("*.py") for token in _TOKEN.findall(path.read_text(encoding="utf-8"))}
    return tokens - {"pulumi:providers:hcloud"}  # the provider resource itself is the schema's `provider`


def test_hcloud_plugin_schema_serves_the_packages_tokens(env: dict[str, str], tmp_path: Path) -> None:
    result = subprocess.run(
        ["pulumi", "package", "get-schema", f"hcloud@{HCLOUD_VERSION}", "--non-interactive"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    schema = json.loads(result.stdout)
    served = set(schema["resources"]) | set(schema["functions"])
    package = _package_tokens()

    assert len(package) > 70  # the control: the package's tokens were found
    assert package - served == MISSING_UPSTREAM
    assert served - package == set()


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The process' first stdout line; fails (instead of hanging the suite) when none comes within `timeout`."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, f"the hcloud plugin printed no port within {timeout:.0f} s (exit code {process.poll()})"
    return process.stdout.readline()
