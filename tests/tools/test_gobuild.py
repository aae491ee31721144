"""gobuild on a tiny local wrapper module: progress, cache reuse, the generate step, failures naming the step."""

from __future__ import annotations

import re
import shutil
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


def test_build_reports_progress_and_a_second_build_reuses_the_cache(module: Path) -> None:
    tool = GoTool("demo", module, (("./", "demo"),))
    first: list[str] = []
    second: list[str] = []

    bin_dir = gobuild.build(tool, progress=first.append)
    built_at = (bin_dir / "demo").stat().st_mtime_ns
    assert gobuild.build(tool, progress=second.append) == bin_dir

    assert first[:2] == ["demo: downloading modules", "demo: building demo"]
    assert re.fullmatch(rf"demo: built in \d+s -> {re.escape(str(tool.install_dir()))}", first[-1])
    assert second == [f"demo: cached in {tool.install_dir()}"]
    assert (bin_dir / "demo").stat().st_mtime_ns == built_at


def test_fresh_copy_of_the_module_reuses_the_build_and_a_source_change_does_not(module: Path, tmp_path: Path) -> None:
    gobuild.build(GoTool("demo", module, (("./", "demo"),)), progress=lambda _line: None)
    clone = shutil.copytree(module, tmp_path / "clone" / "demo")

    assert GoTool("demo", clone, (("./", "demo"),)).is_built()
    (clone / "main.go").write_text(_MAIN.replace("os.Exit(3)", "os.Exit(4)"))
    assert not GoTool("demo", clone, (("./", "demo"),)).is_built()


def test_failing_compile_names_the_step_and_how_to_retry(module: Path) -> None:
    (module / "main.go").write_text("package main\n\nfunc main() { undefined() }\n")
    tool = GoTool("demo", module, (("./", "demo"),))

    with pytest.raises(BuildError, match=r"demo: go build demo failed \(exit 1\)") as failure:
        gobuild.build(tool, progress=lambda _line: None)

    assert "undefined: undefined" in str(failure.value)  # the compiler's own words
    assert "retry with: .venv/bin/python -m tools.build demo" in str(failure.value)
    assert not tool.is_built()
    assert list(tool.install_dir().parent.iterdir()) == []  # no staging directory left behind


def test_main_prints_each_step_and_the_total_time(module: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gobuild.main({"demo": GoTool("demo", module, (("./", "demo"),))}, []) == 0

    lines = capsys.readouterr().out.splitlines()
    assert "demo: building demo" in lines
    assert re.fullmatch(r"tools ready in \d+s", lines[-1])


def test_main_failure_exits_1_naming_the_step(module: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (module / "main.go").write_text("package main\n\nfunc main() { undefined() }\n")

    assert gobuild.main({"demo": GoTool("demo", module, (("./", "demo"),))}, []) == 1

    err = capsys.readouterr().err
    assert err.startswith("error: demo: go build demo failed")
    assert "python -m tools.build demo" in err


def test_main_refuses_an_unknown_tool_naming_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert gobuild.main({"demo": GoTool("demo", Path("unused"), ())}, ["dmeo"]) == 2

    assert "unknown tool 'dmeo'; known: demo" in capsys.readouterr().err
