"""tools.build: a pinned `pulumi` on PATH is used as is; without Go nothing is built and setup goes on."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import build
from tools.pulumi_tools import HCLOUD_VERSION


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []
    monkeypatch.setattr(build.gobuild, "main", lambda _tools, names: calls.append(names) or 0)
    monkeypatch.setattr(build.gobuild, "go_available", lambda: True)
    return calls


def test_pinned_pulumi_on_path_is_not_rebuilt(
    built: list[list[str]], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(build, "ambient_pulumi", lambda: Path("/usr/local/bin/pulumi"))

    assert build.main([]) == 0

    assert built == [[name for name in build.TOOLS if name != "pulumi"]]
    assert "pulumi: using /usr/local/bin/pulumi" in capsys.readouterr().out


def test_without_pulumi_on_path_everything_is_built(built: list[list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "ambient_pulumi", lambda: None)

    assert build.main([]) == 0

    assert built == [list(build.TOOLS)]


def test_without_go_nothing_is_built_and_the_message_says_what_to_install(
    built: list[list[str]], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(build, "ambient_pulumi", lambda: None)
    monkeypatch.setattr(build.gobuild, "go_available", lambda: False)

    assert build.main(["pulumi"]) == 0

    assert built == []
    out = capsys.readouterr().out
    assert "Install Go, or the official Pulumi CLI" in out
    assert f"pulumi plugin install resource hcloud {HCLOUD_VERSION}" in out
