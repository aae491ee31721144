"""End to end on the lab through the real engine: the project's lab stack aimed at the test session's lab.

`lab_stack(lab, tmp_path)` copies the program (tests/engine/conftest.py's `start_project`: a temporary backend,
the lab passphrase), rewrites the lab stack's addresses and URLs for this session's lab (its own 127.N net and
ports), sets the lab's credentials as stack secrets and returns the project, ready for `pulumi up`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from lab.processes import process_tree
from lab.services import Lab
from tests.engine.conftest import EngineProject, engine_home, require_hcloud_plugin, start_project
from tools.env import PROJECT_DIR

__all__ = ["engine_home"]

PROJECT = "talos-hetzner"
RESCUE_KEY = (
    ed25519.Ed25519PrivateKey.generate()
    .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    .decode()
)
LAB_NET = "127.10."
"""The net the committed Pulumi.lab.yaml is written for (`python -m lab`)."""


@pytest.fixture
def project(lab: Lab, engine_home: Path, tmp_path: Path) -> EngineProject:
    """The lab stack in a fresh backend, aimed at this test's (fresh) lab."""
    return lab_stack(lab, tmp_path, engine_home)


def lab_stack(lab: Lab, tmp_path: Path, home: Path) -> EngineProject:
    """The program's lab stack in a fresh backend, aimed at `lab`, credentials set."""
    project = start_project(PROJECT_DIR, tmp_path, home)
    require_hcloud_plugin(project)  # the lab stack has Cloud nodes
    path = project.dir / "Pulumi.lab.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"] = retarget(document["config"], lab)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    secrets = {
        "robotPassword": lab.spec.robot_password,
        "hcloud:token": lab.spec.cloud_token,
        "rescueSshKey": RESCUE_KEY,
    }
    for key, value in secrets.items():
        project.pulumi("config", "set", "--secret", key, stdin=value)
    return project


def retarget(config: dict[str, Any], lab: Lab) -> dict[str, Any]:
    """The stack config with net 10's addresses moved to `lab`'s net, and the lab's URLs and Robot user."""
    assert lab.network is not None
    moved = _replace(config, LAB_NET, f"127.{lab.network.net}.")
    moved["hcloud:endpoint"] = lab.cloud_url
    moved[f"{PROJECT}:robotUrl"] = lab.robot_url
    moved[f"{PROJECT}:robotUser"] = lab.spec.robot_user
    moved[f"{PROJECT}:image"] = {**moved.get(f"{PROJECT}:image", {}), "factoryUrl": lab.factory_url}
    return moved


def _replace(value: Any, old: str, new: str) -> Any:
    if isinstance(value, dict):
        return {key: _replace(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace(item, old, new) for item in value]
    return value.replace(old, new) if isinstance(value, str) else value


def edit_stack(project: EngineProject, change: Callable[[dict[str, Any]], None]) -> None:
    """Change the lab stack's config (the `talos-hetzner:` keys, without the prefix) as a user edits the file."""
    path = project.dir / "Pulumi.lab.yaml"
    document = yaml.safe_load(path.read_text())
    values = {key.split(":", 1)[1]: value for key, value in document["config"].items() if key.startswith(PROJECT)}
    change(values)
    others = {key: value for key, value in document["config"].items() if not key.startswith(PROJECT)}
    document["config"] = {**others, **{f"{PROJECT}:{key}": value for key, value in values.items()}}
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def planned(project: EngineProject, *args: str) -> dict[str, str]:
    """Resource name -> operation, for every resource `pulumi preview` would change."""
    preview = json.loads(project.pulumi("preview", "--json", *args).stdout)
    return {step["urn"].rsplit("::", 1)[1]: step["op"] for step in preview["steps"] if step["op"] != "same"}


def up_until_killed(project: EngineProject, marker: str, timeout: float = 300) -> str:
    """Run `pulumi up` and kill it and its plugins with SIGKILL as soon as a line containing `marker` shows."""
    proc = subprocess.Popen(
        ["pulumi", "up", "--yes", "--skip-preview", "--non-interactive"],
        cwd=project.dir,
        env=project.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen = ""
    for line in proc.stdout:
        seen += line
        if marker in line or time.monotonic() > deadline:
            break
    for pid in process_tree(proc.pid):  # the plugins run in process groups of their own
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    project.transcript.append(seen)
    assert marker in seen, f"never saw {marker!r}:\n{seen[-3000:]}"
    return seen
