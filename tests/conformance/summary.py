"""The conformance summary printed at the end of a run: oracle cases per area, agreements, listed differences,
disagreements. `tests/conftest.py` calls `write_summary` from its terminal-summary hook (the top-level conftest is
the one the controller loads when the run is spread over workers)."""

from __future__ import annotations

from collections import Counter

import pytest

BUILD_PROPERTY = "oracle build"
_RANK = {"agree": 0, "difference": 1, "skipped": 2, "disagree": 3}


def write_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The table, under a title naming the oracle's build; nothing when the run had no oracle case."""
    rows = summarize(terminalreporter.stats)
    if not rows:
        return
    builds = {
        str(value)
        for reports in terminalreporter.stats.values()
        for report in reports
        if isinstance(report, pytest.TestReport)
        for name, value in report.user_properties
        if name == BUILD_PROPERTY
    }
    terminalreporter.section(f"Talos conformance ({', '.join(sorted(builds)) or 'oracle not built'})")
    for line in summary_table(rows):
        terminalreporter.write_line(line)


def summarize(stats: dict[str, list[object]]) -> dict[str, Counter[str]]:
    """Per area (module `test_<area>.py`): how many oracle cases agreed, met a listed difference, failed or skipped."""
    outcomes: dict[str, str] = {}
    for reports in stats.values():
        for report in reports:
            if not isinstance(report, pytest.TestReport) or "oracle" not in report.keywords:
                continue
            outcome = _outcome(report)
            if outcome and _RANK[outcome] > _RANK.get(outcomes.get(report.nodeid, ""), -1):
                outcomes[report.nodeid] = outcome
    rows: dict[str, Counter[str]] = {}
    for nodeid, outcome in outcomes.items():
        area = nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removeprefix("test_").removesuffix(".py")
        rows.setdefault(area, Counter())[outcome] += 1
    return dict(sorted(rows.items()))


def summary_table(rows: dict[str, Counter[str]]) -> list[str]:
    """The summary as a Markdown table, the form docs/conformance.md keeps it in."""
    columns = ("agree", "difference", "disagree", "skipped")
    lines = [
        "| area | cases | agree | listed differences | disagree | skipped |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    total: Counter[str] = Counter()
    for area, counts in rows.items():
        total.update(counts)
        lines.append(f"| {area} | {counts.total()} | " + " | ".join(str(counts[c]) for c in columns) + " |")
    lines.append(f"| **all** | {total.total()} | " + " | ".join(str(total[c]) for c in columns) + " |")
    return lines


def _outcome(report: pytest.TestReport) -> str:
    """A failure anywhere (or an expected one, pending a fix) is a disagreement; a passing call agrees, or meets
    a listed difference."""
    if report.failed or hasattr(report, "wasxfail"):
        return "disagree"
    if report.skipped:
        return "skipped"
    if report.when != "call":
        return ""
    return "difference" if "difference" in dict(report.user_properties) else "agree"
