"""The CI driver (ci/deploy.py) against the real CLI: preview as a gate, then up, outputs to files."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from talos.secrets import SecretsBundle
from tests.engine.conftest import EngineProject
from tools.env import PROJECT_DIR

pytestmark = pytest.mark.engine


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


def test_deploy_previews_then_ups_and_writes_outputs(lab_project: EngineProject, tmp_path: Path) -> None:
    out = tmp_path / "out"

    result = _deploy(lab_project, "--outputs-dir", str(out), "--secret-output", "secretsYaml")

    assert result.returncode == 0, result.stderr
    assert result.stdout.index("preview passed") < result.stdout.index("deploy: up of lab")
    bundle = SecretsBundle.from_yaml((out / "secretsYaml").read_text())
    assert stat.S_IMODE((out / "secretsYaml").stat().st_mode) == 0o600
    assert (out / "secretsFingerprint").read_text() == lab_project.outputs()["secretsFingerprint"]
    assert bundle.cluster_secret not in result.stdout + result.stderr


def test_deploy_writes_secret_outputs_only_when_asked(lab_project: EngineProject, tmp_path: Path) -> None:
    out = tmp_path / "out"

    result = _deploy(lab_project, "--outputs-dir", str(out))

    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["secretsFingerprint"]
    assert "secretsYaml is secret, not written" in result.stdout


def test_deploy_failing_preview_stops_before_up(lab_project: EngineProject, tmp_path: Path) -> None:
    lab_project.pulumi("config", "set", "talosVersion", "v1.9.0")

    result = _deploy(lab_project, "--outputs-dir", str(tmp_path / "out"))

    assert result.returncode == 1
    assert "preview of lab failed, nothing was changed" in result.stderr
    assert "deploy: up of lab" not in result.stdout
    assert lab_project.resources() == []


def test_deploy_without_backend_in_environment_refuses(lab_project: EngineProject, tmp_path: Path) -> None:
    result = _deploy(lab_project, "--outputs-dir", str(tmp_path / "out"), drop=("PULUMI_BACKEND_URL",))

    assert result.returncode == 1
    assert "PULUMI_BACKEND_URL is not set" in result.stderr
