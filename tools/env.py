"""The one place that computes the environment the Pulumi CLI runs in, for people, tests and the CI driver.

- PATH starts with the CLI built by the setup (or uses a `pulumi` on PATH at the pinned version);
- PULUMI_HOME is isolated under the state folder (unless set); the setup's hcloud plugin is installed there, or,
  without Go, the one the user installed with the official CLI (~/.pulumi) is linked there;
- no traffic beyond this machine: update checks and automatic plugin downloads are off;
- the backend is a local file backend in the project's ignored `.state/` folder unless PULUMI_BACKEND_URL is set;
- the lab stacks' passphrase is the documented LAB_PASSPHRASE; other stacks take theirs from the environment.

Run a command in it: `.venv/bin/python -m tools.env --lab pulumi preview --stack lab`.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tools.gobuild import TOOLS_DIR, go_available
from tools.pulumi_tools import HCLOUD, HCLOUD_VERSION, PULUMI, PULUMI_VERSION

PROJECT_DIR = TOOLS_DIR.parent
LAB_PASSPHRASE = "talos-hetzner-lab"
"""Encrypts the lab stacks' secrets (Pulumi.lab.yaml). Public on purpose: the lab holds no real credentials."""

REQUIRE_ENGINE_VAR = "TALOS_HETZNER_REQUIRE_ENGINE"
"""Set to 1 by .ci/run: the real-engine tests fail instead of skipping when the engine is missing."""

_PASSPHRASE_VARS = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")


class EngineUnavailable(RuntimeError):
    """No Pulumi CLI at the pinned version: neither on PATH nor built by the setup."""


def _version_of(pulumi: str) -> str | None:
    try:
        result = subprocess.run(
            [pulumi, "version"],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


@functools.cache
def ambient_pulumi() -> Path | None:
    """A `pulumi` on PATH whose version is the pinned one (not the setup's own build)."""
    found = shutil.which("pulumi")
    if found is None or Path(found).parent == PULUMI.bin_dir():
        return None
    return Path(found) if _version_of(found) == f"v{PULUMI_VERSION}" else None


def pulumi_bin_dir() -> Path:
    """Directory of the `pulumi` to run; raises EngineUnavailable with what to do when there is none."""
    ambient = ambient_pulumi()
    if ambient is not None:
        return ambient.parent
    if PULUMI.is_built():
        return PULUMI.bin_dir()
    how = "run ./scripts/setup" if go_available() else f"install the official Pulumi CLI v{PULUMI_VERSION}"
    raise EngineUnavailable(f"no Pulumi CLI v{PULUMI_VERSION} on PATH or built by the setup (fix: {how})")


def engine_env(
    *,
    lab: bool,
    state_dir: Path | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment to run the CLI (or the Automation API) in; `lab` selects the lab passphrase."""
    env = dict(os.environ if base is None else base)
    state = state_dir or PROJECT_DIR / ".state"
    env["PATH"] = os.pathsep.join(p for p in (str(pulumi_bin_dir()), env.get("PATH", "")) if p)
    env.setdefault("PULUMI_HOME", str(state / "pulumi-home"))
    env["PULUMI_SKIP_UPDATE_CHECK"] = "true"
    env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] = "true"
    if "PULUMI_BACKEND_URL" not in env:
        (state / "backend").mkdir(parents=True, exist_ok=True)
        env["PULUMI_BACKEND_URL"] = (state / "backend").as_uri()
    if lab and not any(name in env for name in _PASSPHRASE_VARS):
        env["PULUMI_CONFIG_PASSPHRASE"] = LAB_PASSPHRASE
    _install_hcloud_plugin(env)
    return env


def _install_hcloud_plugin(env: dict[str, str]) -> None:
    """Put the pinned hcloud plugin into PULUMI_HOME: the setup's build (a copy, once per build), else the one the
    user installed with the official CLI (linked). Without either, programs that use hcloud fail naming the plugin;
    `hcloud_plugin_problem` says why beforehand.

    The plugin is not put on PATH: the engine warns on every run about plugins taken from PATH.
    """
    home = Path(env["PULUMI_HOME"])
    if not HCLOUD.is_built():
        user = installed_hcloud_plugin(user_pulumi_home())
        if user is not None and installed_hcloud_plugin(home) is None:
            _link_plugin(user, home / "plugins" / user.name)
        return
    stamp = home / "plugins" / f".hcloud-{HCLOUD_VERSION}-build"
    build = HCLOUD.install_dir().name
    if stamp.exists() and stamp.read_text() == build:
        return
    argv = [str(pulumi_bin_dir() / "pulumi"), "plugin", "install", "resource", "hcloud", HCLOUD_VERSION]
    argv += ["--file", str(HCLOUD.bin_dir()), "--reinstall"]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise EngineUnavailable(
            f"installing the hcloud plugin into {env['PULUMI_HOME']} failed: {result.stderr.strip()} "
            "(fix: .venv/bin/python -m tools.build hcloud)"
        )
    stamp.write_text(build)


def user_pulumi_home() -> Path:
    """The home the official CLI installs plugins into for this user: $PULUMI_HOME, else ~/.pulumi."""
    return Path(os.environ.get("PULUMI_HOME") or Path.home() / ".pulumi")


def installed_hcloud_plugin(home: Path) -> Path | None:
    """The pinned hcloud plugin's directory in the Pulumi home `home`, if completely installed there."""
    directory = home / "plugins" / f"resource-hcloud-v{HCLOUD_VERSION}"
    complete = (directory / "pulumi-resource-hcloud").is_file() and not Path(f"{directory}.partial").exists()
    return directory if complete else None


def _link_plugin(source: Path, target: Path) -> None:
    """A plugin directory whose entries link to `source`'s (the engine lists only real directories)."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        link = target / entry.name
        if not link.is_symlink():
            link.symlink_to(entry)


def hcloud_plugin_problem(home: Path) -> str | None:
    """Why programs that use hcloud cannot run with the Pulumi home `home`; None when the plugin is there."""
    if installed_hcloud_plugin(home) is not None:
        return None
    return (
        f"no hcloud plugin v{HCLOUD_VERSION} in the project's Pulumi home nor in {user_pulumi_home()} "
        f"(fix: run ./scripts/setup with Go installed, or `pulumi plugin install resource hcloud {HCLOUD_VERSION}`)"
    )


def engine_problem() -> str | None:
    """Why the real engine cannot run here; None when a pinned CLI is on PATH, built, or can be built with Go."""
    if ambient_pulumi() is not None or PULUMI.is_built() or go_available():
        return None
    return (
        f"Go is not installed and no pulumi v{PULUMI_VERSION} is on PATH "
        f"(fix: install the official Pulumi CLI v{PULUMI_VERSION} to run the real-engine tests)"
    )


def engine_required(environ: Mapping[str, str] = os.environ) -> bool:
    """CI sets REQUIRE_ENGINE_VAR=1: the real-engine tests must run there, so a missing engine fails them."""
    return environ.get(REQUIRE_ENGINE_VAR, "") == "1"


def copy_program(target: Path, source: Path = PROJECT_DIR) -> Path:
    """A scratch copy of a program's entry files (for runs that must not touch the checkout's stack files).

    Source packages and the virtualenv stay in the checkout: run with PYTHONPATH=PROJECT_DIR.
    """
    target.mkdir(parents=True)
    for name in ("Pulumi.yaml", "Pulumi.lab.yaml", "__main__.py"):
        if (source / name).exists():
            shutil.copyfile(source / name, target / name)
    project = target / "Pulumi.yaml"
    venv = PROJECT_DIR / ".venv"
    project.write_text(project.read_text().replace("virtualenv: .venv", f"virtualenv: {venv}"))
    return target


def main(argv: list[str]) -> int:
    """`python -m tools.env [--lab] command...`: run a command in the engine environment."""
    lab = bool(argv) and argv[0] == "--lab"
    command = argv[1:] if lab else argv
    if not command:
        print("usage: python -m tools.env [--lab] command [args...]", file=sys.stderr)
        return 2
    try:
        env = engine_env(lab=lab)
    except EngineUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return subprocess.run(command, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
