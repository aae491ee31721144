"""The conformance summary: how runs are counted, and that docs/conformance.md explains every listed difference."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import pytest

from tests.conformance.differences import DIFFERENCES
from tests.conformance.summary import summarize, summary_table

DOCS = Path(__file__).parents[2] / "docs" / "conformance.md"


def _report(
    name: str,
    when: Literal["setup", "call", "teardown"],
    outcome: Literal["passed", "failed", "skipped"],
    *,
    oracle: bool = True,
    properties: tuple[tuple[str, object], ...] = (),
) -> pytest.TestReport:
    keywords: dict[str, Literal[1]] = {"oracle": 1} if oracle else {}
    longrepr = ("x.py", 1, "skipped") if outcome == "skipped" else None
    nodeid = f"tests/conformance/{name}"
    return pytest.TestReport(nodeid, ("x.py", 1, name), keywords, outcome, longrepr, when, user_properties=properties)


def test_summarize_counts_each_oracle_case_once_by_its_worst_phase() -> None:
    stats = {
        "passed": [
            _report("test_patches.py::test_a[1]", "call", "passed"),
            _report("test_patches.py::test_a[2]", "call", "passed", properties=(("difference", "x"),)),
            _report("test_patches.py::test_a[3]", "call", "passed"),
            _report("test_summary.py::test_meta", "call", "passed", oracle=False),
        ],
        "error": [_report("test_patches.py::test_a[3]", "teardown", "failed")],
        "skipped": [_report("test_secrets.py::test_b", "setup", "skipped")],
        "": [_report("test_patches.py::test_a[1]", "setup", "passed")],
    }

    rows = summarize(stats)

    assert {area: dict(counts) for area, counts in rows.items()} == {
        "patches": {"agree": 1, "difference": 1, "disagree": 1},
        "secrets": {"skipped": 1},
    }


def test_summary_table_has_a_row_per_area_and_a_total() -> None:
    stats = {"passed": [_report("test_secrets.py::test_b", "call", "passed")]}

    assert summary_table(summarize(stats))[2:] == ["| secrets | 1 | 1 | 0 | 0 | 0 |", "| **all** | 1 | 1 | 0 | 0 | 0 |"]


def test_docs_explain_exactly_the_listed_differences() -> None:
    documented = set(re.findall(r"^### `([a-z0-9-]+)`", DOCS.read_text(encoding="utf-8"), flags=re.MULTILINE))

    assert documented == set(DIFFERENCES)
