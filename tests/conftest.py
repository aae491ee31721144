"""Fixtures every test directory shares."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

pytest_plugins = ["lab.testing"]  # one lab per test session, shared by every directory


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
