"""Fixtures every test directory shares."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from pulumi._utils import ContextProperty
from pulumi.runtime import config, settings

from tests.conformance.summary import write_summary

pytest_plugins = ["lab.testing"]  # one lab per test session, shared by every directory


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    write_summary(terminalreporter)


@pytest.fixture(autouse=True)
def main_thread_event_loop() -> Iterator[None]:
    """Give each test a fresh main-thread event loop.

    `pulumi.runtime.test` (program tests with mocks) needs `asyncio.get_event_loop()`, which fails once an
    earlier test's `asyncio.run()` has unset the loop.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    policy = asyncio.get_event_loop_policy()
    try:
        current = policy.get_event_loop()  # the test may have replaced ours (pulumi.runtime.test does)
    except RuntimeError:
        current = None
    asyncio.set_event_loop(None)
    for each in {loop, current} - {None}:
        if not each.is_running():
            each.close()


_SETTINGS_FIELDS = [name for name, value in vars(settings.Settings).items() if isinstance(value, ContextProperty)]
_PRISTINE_SETTINGS = {name: getattr(settings.SETTINGS, name) for name in _SETTINGS_FIELDS}


@pytest.fixture(autouse=True)
def pulumi_runtime_restored() -> Iterator[None]:
    """After each test, Pulumi's global runtime state (project, stack, monitor, config) as before any program ran:
    `pulumi.get_stack()` and friends answer the same whatever ran before (module fixtures included)."""
    yield
    for name, value in _PRISTINE_SETTINGS.items():
        setattr(settings.SETTINGS, name, value)
    config.CONFIG.set({})
    config._SECRET_KEYS.set(set())


@pytest.fixture
def pulumi_mocks_loops(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Close the event loops Pulumi's mocks open on their worker threads (`_ensure_event_loop`), which
    they never close; use it in every test that calls `pulumi.runtime.set_mocks`."""
    opened: list[asyncio.AbstractEventLoop] = []
    new_event_loop = asyncio.new_event_loop

    def tracked() -> asyncio.AbstractEventLoop:
        loop = new_event_loop()
        opened.append(loop)
        return loop

    monkeypatch.setattr(asyncio, "new_event_loop", tracked)
    yield
    for loop in opened:
        if not loop.is_running():
            loop.close()
