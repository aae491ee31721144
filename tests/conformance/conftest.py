"""The conformance suite's fixtures (the Talos oracle, built once per session; lab Talos nodes) and its end-of-run
summary."""

from __future__ import annotations

from collections import Counter

import pytest

from lab.talos.testing import cluster, talos_network, talos_nodes  # noqa: F401  (lab nodes for the wire checks)
from tests.conformance.oracle import Oracle
from tools.gobuild import build, go_available
from tools.talos_oracle import TALOS_ORACLE

_ORACLE_INFO = pytest.StashKey[dict[str, str]]()
_RANK = {"agree": 0, "difference": 1, "skipped": 2, "disagree": 3}


@pytest.fixture(scope="session")
def oracle(request: pytest.FixtureRequest) -> Oracle:
    """Talos' machinery behind the oracle binary; skips only when Go is absent (a failed build is an error)."""
    if not go_available():
        pytest.skip("Go is not installed: the Talos oracle is built from Talos' Go machinery (install Go 1.26+)")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")

    def progress(line: str) -> None:
        if reporter is not None:
            reporter.write_line(line)

    oracle = Oracle(build(TALOS_ORACLE, progress=progress) / "talos-oracle")
    request.config.stash[_ORACLE_INFO] = oracle.info()
    return oracle


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Print cases per area, agreements, listed differences and disagreements of this run."""
    rows = summarize(terminalreporter.stats)
    if not rows:
        return
    info = config.stash.get(_ORACLE_INFO, {})
    built = f"machinery {info['machinery']}, {info['go']}" if info else "oracle not built"
    terminalreporter.section(f"Talos conformance ({built})")
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
