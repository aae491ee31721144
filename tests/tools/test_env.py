"""The engine environment: isolated home, local backend, no downloads, the lab passphrase only for the lab."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tools import env as engine
from tools.env import LAB_PASSPHRASE, EngineUnavailable, engine_env

BIN = Path("/opt/pulumi/bin")


@pytest.fixture(autouse=True)
def no_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CLI in BIN and no hcloud build: engine_env computes without running anything."""
    monkeypatch.setattr(engine, "pulumi_bin_dir", lambda: BIN)
    monkeypatch.setattr(engine, "HCLOUD", SimpleNamespace(is_built=lambda: False))


def test_lab_env_is_offline_local_and_uses_the_lab_passphrase(tmp_path: Path) -> None:
    env = engine_env(lab=True, state_dir=tmp_path, base={"PATH": "/usr/bin"})

    assert env["PATH"] == f"{BIN}:/usr/bin"
    assert env["PULUMI_HOME"] == str(tmp_path / "pulumi-home")
    assert env["PULUMI_BACKEND_URL"] == (tmp_path / "backend").as_uri()
    assert (tmp_path / "backend").is_dir()
    assert env["PULUMI_SKIP_UPDATE_CHECK"] == "true"
    assert env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] == "true"
    assert env["PULUMI_CONFIG_PASSPHRASE"] == LAB_PASSPHRASE


def test_other_stacks_take_the_passphrase_from_the_environment(tmp_path: Path) -> None:
    env = engine_env(lab=False, state_dir=tmp_path, base={})

    assert "PULUMI_CONFIG_PASSPHRASE" not in env


def test_given_backend_home_and_passphrase_file_win(tmp_path: Path) -> None:
    base = {
        "PULUMI_BACKEND_URL": "s3://state",
        "PULUMI_HOME": "/home/ci/.pulumi",
        "PULUMI_CONFIG_PASSPHRASE_FILE": "/run/secrets/passphrase",
    }

    env = engine_env(lab=True, state_dir=tmp_path, base=base)

    assert env["PULUMI_BACKEND_URL"] == "s3://state"
    assert env["PULUMI_HOME"] == "/home/ci/.pulumi"
    assert "PULUMI_CONFIG_PASSPHRASE" not in env


def test_no_cli_without_go_says_to_install_the_official_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    monkeypatch.setattr(engine, "ambient_pulumi", lambda: None)
    monkeypatch.setattr(engine, "PULUMI", SimpleNamespace(is_built=lambda: False))
    monkeypatch.setattr(engine, "go_available", lambda: False)

    with pytest.raises(EngineUnavailable, match="install the official Pulumi CLI v"):
        engine.pulumi_bin_dir()
