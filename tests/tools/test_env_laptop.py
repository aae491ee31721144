"""tools.env on a laptop: the official Pulumi CLI on PATH at the pinned version, no Go, the user's own plugins.

PATH, HOME and the tool cache are fakes in a temporary directory; the `pulumi` on PATH is a script that answers
`pulumi version`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tools import env as engine
from tools.env import REQUIRE_ENGINE_VAR, engine_env, engine_problem, engine_required, hcloud_plugin_problem
from tools.pulumi_tools import HCLOUD_VERSION, PULUMI_VERSION

PLUGIN = f"resource-hcloud-v{HCLOUD_VERSION}"


@pytest.fixture
def laptop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A PATH holding only a `pulumi` (no Go), an empty HOME, no PULUMI_HOME, an empty tool cache."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.delenv("PULUMI_HOME", raising=False)
    monkeypatch.setenv("TALOS_HETZNER_CACHE", str(tmp_path / "cache"))
    install_cli(bin_dir, f"v{PULUMI_VERSION}")
    engine.ambient_pulumi.cache_clear()
    yield tmp_path
    engine.ambient_pulumi.cache_clear()


def install_cli(bin_dir: Path, version: str) -> None:
    script = bin_dir / "pulumi"
    script.write_text(f'#!/bin/sh\n[ "$1" = version ] && echo {version}\n')
    script.chmod(0o755)


def install_user_plugin(home: Path) -> Path:
    """The hcloud plugin as `pulumi plugin install` leaves it in a Pulumi home."""
    directory = home / "plugins" / PLUGIN
    directory.mkdir(parents=True)
    binary = directory / "pulumi-resource-hcloud"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    return binary


def test_pinned_cli_on_path_without_go_runs_the_engine(laptop: Path) -> None:
    assert engine_problem() is None
    assert engine.pulumi_bin_dir() == laptop / "bin"


def test_cli_of_another_version_without_go_says_to_install_the_official_one(laptop: Path) -> None:
    install_cli(laptop / "bin", "v3.1.0")

    problem = engine_problem()

    assert problem is not None
    assert f"install the official Pulumi CLI v{PULUMI_VERSION}" in problem


def test_users_hcloud_plugin_is_linked_into_the_engine_home(laptop: Path) -> None:
    user_binary = install_user_plugin(laptop / "user" / ".pulumi")
    home = laptop / "test-home"

    engine_env(lab=True, state_dir=laptop / "state", base={"PATH": "/usr/bin", "PULUMI_HOME": str(home)})

    linked = home / "plugins" / PLUGIN
    assert linked.is_dir() and not linked.is_symlink()  # the engine lists only real directories
    assert (linked / "pulumi-resource-hcloud").resolve() == user_binary.resolve()
    assert hcloud_plugin_problem(home) is None


def test_users_own_pulumi_home_variable_is_where_the_plugin_is_looked_for(
    laptop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_user_plugin(laptop / "custom-home")
    monkeypatch.setenv("PULUMI_HOME", str(laptop / "custom-home"))
    home = laptop / "test-home"

    engine_env(lab=True, state_dir=laptop / "state", base={"PULUMI_HOME": str(home)})

    assert hcloud_plugin_problem(home) is None


def test_partly_installed_user_plugin_is_not_used(laptop: Path) -> None:
    install_user_plugin(laptop / "user" / ".pulumi")
    (laptop / "user" / ".pulumi" / "plugins" / f"{PLUGIN}.partial").write_text("")
    home = laptop / "test-home"

    engine_env(lab=True, state_dir=laptop / "state", base={"PULUMI_HOME": str(home)})

    assert not (home / "plugins" / PLUGIN).exists()
    assert hcloud_plugin_problem(home) is not None


def test_without_any_hcloud_plugin_the_problem_says_where_it_looked_and_the_fix(laptop: Path) -> None:
    home = laptop / "test-home"

    env = engine_env(lab=True, state_dir=laptop / "state", base={"PULUMI_HOME": str(home)})

    problem = hcloud_plugin_problem(Path(env["PULUMI_HOME"]))
    assert problem is not None
    assert str(laptop / "user" / ".pulumi") in problem
    assert f"pulumi plugin install resource hcloud {HCLOUD_VERSION}" in problem


@pytest.mark.parametrize(("value", "required"), [("1", True), ("0", False), ("", False), (None, False)])
def test_engine_is_required_only_when_the_variable_is_1(value: str | None, required: bool) -> None:
    environ = {} if value is None else {REQUIRE_ENGINE_VAR: value}

    assert engine_required(environ) is required
