"""Fixtures for the hetzner client tests: a scripted HTTP server and a sleeper that only records."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hetzner.scripted_http import ScriptedServer, Sleeper
from tests.hetzner.talos_ports import configured_port, maintenance_port

__all__ = ["configured_port", "maintenance_port"]


@pytest.fixture
def http() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def sleeper() -> Sleeper:
    return Sleeper()
