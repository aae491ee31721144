"""Fixtures that run the real Pulumi CLI on a temporary copy of the project with a temporary backend.

The CLI is the pinned one on PATH or the setup's build (built here if Go is present and the cache is cold); the
hcloud plugin is the setup's build or, without Go, the user's own (~/.pulumi). Tests skip, with the reason, only
when neither Go nor a pinned `pulumi` is available, or (programs using hcloud) no hcloud plugin is found; with
TALOS_HETZNER_REQUIRE_ENGINE=1 (.ci/run) they fail instead. The user's `.state/` is never touched.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tools import gobuild
from tools.env import (
    LAB_PASSPHRASE,
    PROJECT_DIR,
    REQUIRE_ENGINE_VAR,
    ambient_pulumi,
    copy_program,
    engine_env,
    engine_problem,
    engine_required,
    hcloud_plugin_problem,
)
from tools.pulumi_tools import HCLOUD, PULUMI

SECRETS_PROGRAM = PROJECT_DIR / "tests/data/secrets_program"
_INHERITED_PULUMI_VARS = re.compile(r"^PULUMI_(BACKEND_URL|CONFIG_PASSPHRASE.*|HOME)$")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip a real-engine test for `reason`; fail it instead where the engine is required (CI)."""
    if engine_required():
        pytest.fail(f"{reason} [{REQUIRE_ENGINE_VAR}=1: the real-engine tests must run here]", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def engine_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PULUMI_HOME shared by the session (the hcloud plugin is installed or linked into it once)."""
    problem = engine_problem()
    if problem is not None:
        skip_or_fail(problem)
    if ambient_pulumi() is None:
        gobuild.build(PULUMI, progress=lambda _line: None)
    if gobuild.go_available():
        gobuild.build(HCLOUD, progress=lambda _line: None)
    return tmp_path_factory.mktemp("pulumi-home")


def require_hcloud_plugin(project: EngineProject) -> None:
    """Skip (or, in CI, fail) a test whose program uses hcloud when the project's home has no hcloud plugin."""
    problem = hcloud_plugin_problem(Path(project.env["PULUMI_HOME"]))
    if problem is not None:
        skip_or_fail(problem)


@dataclass
class EngineProject:
    """A copy of the program in a temporary directory, its backend, and every line the engine printed."""

    dir: Path
    backend: Path
    env: dict[str, str]
    transcript: list[str] = field(default_factory=list)

    def pulumi(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `pulumi <args>` non-interactively in the project; output goes to the transcript."""
        result = subprocess.run(
            ["pulumi", *args, "--non-interactive"],
            cwd=self.dir,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=600,
        )
        self.transcript += [result.stdout, result.stderr]
        if check and result.returncode != 0:
            raise AssertionError(
                f"pulumi {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def outputs(self) -> dict[str, Any]:
        """Stack outputs, secrets shown (kept out of the transcript)."""
        result = subprocess.run(
            ["pulumi", "stack", "output", "--json", "--show-secrets", "--non-interactive"],
            cwd=self.dir,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(result.stdout)

    def resources(self) -> list[dict[str, Any]]:
        """The resources in the stack's state (secrets as ciphertext)."""
        exported = json.loads(self.pulumi("stack", "export").stdout)
        return exported["deployment"].get("resources") or []

    def state_text(self) -> str:
        """Every file the backend holds (checkpoints, backups, history), as text."""
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.backend.rglob("*")) if p.is_file())


def start_project(program: Path, tmp_path: Path, engine_home: Path) -> EngineProject:
    """A scratch copy of `program` with its lab stack initialised in a fresh backend."""
    directory = copy_program(tmp_path / "project", program)
    backend = tmp_path / "backend"
    backend.mkdir()
    base = {k: v for k, v in os.environ.items() if not _INHERITED_PULUMI_VARS.match(k)}
    base |= {
        "PULUMI_BACKEND_URL": backend.as_uri(),
        "PULUMI_HOME": str(engine_home),
        "PULUMI_CONFIG_PASSPHRASE": LAB_PASSPHRASE,
        "PYTHONPATH": str(PROJECT_DIR),
    }
    env = engine_env(lab=True, state_dir=tmp_path / "state", base=base)
    project = EngineProject(directory, backend, env)
    project.pulumi("stack", "init", "lab")
    return project


@pytest.fixture
def lab_project(engine_home: Path, tmp_path: Path) -> EngineProject:
    """The secrets-only program's lab stack in a fresh backend (the whole program is tested in tests/e2e)."""
    return start_project(SECRETS_PROGRAM, tmp_path, engine_home)
