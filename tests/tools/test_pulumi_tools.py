"""Pins of the engine tools: requirements.txt and the wrapper modules' go.mod files agree (the built binaries'
versions are checked in tests/engine/test_tools.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools.pulumi_tools import PULUMI, PULUMI_VERSION, pinned_version


def _required(go_mod: Path, module: str) -> str:
    match = re.search(rf"^\s*{re.escape(module)} (v\S+)", go_mod.read_text(), re.MULTILINE)
    assert match, f"{go_mod} does not require {module}"
    return match.group(1)


@pytest.mark.parametrize("module", ["github.com/pulumi/pulumi/pkg/v3", "github.com/pulumi/pulumi/sdk/v3"])
def test_cli_wrapper_requires_the_pinned_sdk_version(module: str) -> None:
    assert _required(PULUMI.module_dir / "go.mod", module) == f"v{PULUMI_VERSION}"


def test_pinned_version_reads_exact_pins_only(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pulumi==3.259.0\npulumi-hcloud>=1.0\n")

    assert pinned_version("pulumi", requirements) == "3.259.0"
    with pytest.raises(ValueError, match="pin pulumi-hcloud exactly"):
        pinned_version("pulumi-hcloud", requirements)
