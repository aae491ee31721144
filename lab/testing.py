"""Pytest fixtures for the lab: the servers start once per session, each test gets a fresh datacenter.

Loaded for the whole suite by `pytest_plugins = ["lab.testing"]` in tests/conftest.py. Tests that need the
rescue sandbox (root) are skipped with a reason when not run as root.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

import pytest

from lab.delays import Delays
from lab.services import Lab, LabSpec


def requires_root() -> pytest.MarkDecorator:
    """Mark a test that boots rescue systems (loop devices and namespaces need root)."""
    return pytest.mark.skipif(os.geteuid() != 0, reason="the lab's rescue sandbox needs root")


@pytest.fixture(scope="session")
def lab_servers() -> Iterator[Lab]:
    """The lab, started once per test session."""
    with Lab(LabSpec()) as lab:
        yield lab


@pytest.fixture
def lab(lab_servers: Lab) -> Iterator[Lab]:
    """The session's lab, restored to a fresh datacenter after the test (servers, disks, API state, faults)."""
    yield lab_servers
    lab_servers.reset()


def slow_image_downloads(lab: Lab, seconds: float = 1.0) -> Delays:
    """Until the test ends (or the returned delays are set back), the ~3.4 MB test image streams onto a disk for
    about `seconds`: a drop lands mid-write."""
    before = lab.delays
    lab.set_delays(dataclasses.replace(before, bandwidth=3.4e6 / seconds))
    return before
