"""The CI driver (ci/deploy.py) against the real CLI on the lab stack: preview as a gate, then up, outputs to files."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from lab.testing import requires_root
from tests.e2e.conftest import edit_stack
from tests.engine.conftest import EngineProject
from tools.env import PROJECT_DIR

pytestmark = [pytest.mark.engine, pytest.mark.slow, requires_root()]


def _deploy(project: EngineProject, *args: str, drop: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in project.env.items() if k not in drop}
    return subprocess.run(
        [sys.executable, "-m", "ci.deploy", "--stack", "lab", "--work-dir", str(project.dir), *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_deploy_previews_then_ups_and_writes_only_the_secret_outputs_asked_for(
    project: EngineProject, tmp_path: Path
) -> None:
    out = tmp_path / "out"

    result = _deploy(project, "--outputs-dir", str(out), "--secret-output", "kubeconfig")

    assert result.returncode == 0, result.stderr
    assert result.stdout.index("preview passed: create") < result.stdout.index("deploy: up of lab")
    outputs = project.outputs()
    assert sorted(p.name for p in out.iterdir()) == ["endpoint", "kubeconfig", "nodes", "secretsFingerprint"]
    assert (out / "kubeconfig").read_text() == outputs["kubeconfig"]
    assert stat.S_IMODE((out / "kubeconfig").stat().st_mode) == 0o600
    assert json.loads((out / "nodes").read_text()) == outputs["nodes"]
    assert "talosconfig is secret, not written (ask with --secret-output talosconfig)" in result.stdout
    shown = result.stdout + result.stderr
    for name in ("kubeconfig", "talosconfig", "secretsYaml"):
        assert outputs[name] not in shown


def test_deploy_failing_preview_stops_before_up(project: EngineProject, tmp_path: Path) -> None:
    edit_stack(project, lambda values: values.update(talosVersion="v1.9.0"))

    result = _deploy(project, "--outputs-dir", str(tmp_path / "out"))

    assert result.returncode == 1
    failure = result.stderr.split("preview of lab failed, nothing was changed: ", 1)[1]
    reported = failure.splitlines()  # every resource's check error, in the order the engine ran the checks
    assert any(
        r.startswith("pulumi-python:dynamic/talos:ClusterSecrets resource 'lab-secrets': property talos")
        for r in reported
    )
    assert "fix: pick a release of a supported minor" in failure
    assert "deploy: up of lab" not in result.stdout
    assert project.resources() == []


def test_deploy_without_backend_in_environment_refuses(project: EngineProject, tmp_path: Path) -> None:
    result = _deploy(project, "--outputs-dir", str(tmp_path / "out"), drop=("PULUMI_BACKEND_URL",))

    assert result.returncode == 1
    assert "PULUMI_BACKEND_URL is not set" in result.stderr
