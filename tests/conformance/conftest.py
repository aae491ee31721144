"""The conformance suite's fixtures: the Talos oracle (built once per session), lab Talos nodes, and the oracle's
build named on each oracle test's report (the summary, tests/conformance/summary.py, reads it on the controller
when the run is spread over workers)."""

from __future__ import annotations

import pytest

from lab.talos.testing import cluster, talos_network, talos_nodes  # noqa: F401  (lab nodes for the wire checks)
from tests.conformance.oracle import Oracle
from tests.conformance.summary import BUILD_PROPERTY
from tools.gobuild import build, go_available
from tools.talos_oracle import TALOS_ORACLE


@pytest.fixture(scope="session")
def oracle(request: pytest.FixtureRequest) -> Oracle:
    """Talos' machinery behind the oracle binary; skips only when Go is absent (a failed build is an error)."""
    if not go_available():
        pytest.skip("Go is not installed: the Talos oracle is built from Talos' Go machinery (install Go 1.26+)")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")

    def progress(line: str) -> None:
        if reporter is not None:
            reporter.write_line(line)

    return Oracle(build(TALOS_ORACLE, progress=progress) / "talos-oracle")


@pytest.fixture(scope="session")
def oracle_build(oracle: Oracle) -> str:
    info = oracle.info()
    return f"machinery {info['machinery']}, {info['go']}"


@pytest.fixture(autouse=True)
def name_oracle_build(request: pytest.FixtureRequest) -> None:
    """Name the oracle's build (machinery and Go versions) on every test that uses it."""
    if "oracle" in request.fixturenames:
        request.node.user_properties.append((BUILD_PROPERTY, request.getfixturevalue("oracle_build")))
