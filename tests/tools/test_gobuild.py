"""gobuild's build-time generate step, on a tiny wrapper module."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import gobuild
from tools.gobuild import BuildError, GoTool

pytestmark = pytest.mark.skipif(not gobuild.go_available(), reason="Go is not installed")

_MAIN = """package main

import "os"

func main() {
	if len(os.Args) == 3 && os.Args[1] == "gen" {
		if err := os.WriteFile(os.Args[2], []byte("generated"), 0o644); err != nil {
			panic(err)
		}
		return
	}
	os.Exit(3)
}
"""


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TALOS_HETZNER_CACHE", str(tmp_path / "cache"))
    directory = tmp_path / "demo"
    directory.mkdir()
    (directory / "go.mod").write_text("module example.test/demo\n\ngo 1.22\n")
    (directory / "main.go").write_text(_MAIN)
    return directory


def test_generate_runs_the_built_binary_in_the_bin_dir(module: Path) -> None:
    tool = GoTool("demo", module, (("./", "demo"),), generate=(("demo", "gen", "data.txt"),))

    bin_dir = gobuild.build(tool, progress=lambda _line: None)

    assert (bin_dir / "data.txt").read_text() == "generated"
    assert tool.is_built()


def test_failing_generate_names_the_step_and_leaves_no_build(module: Path) -> None:
    tool = GoTool("demo", module, (("./", "demo"),), generate=(("demo", "bogus"),))

    with pytest.raises(BuildError, match=r"demo: generate \(demo bogus\) failed \(exit 3\)") as failure:
        gobuild.build(tool, progress=lambda _line: None)

    assert "python -m tools.build demo" in str(failure.value)
    assert not tool.is_built()
