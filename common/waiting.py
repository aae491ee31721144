"""Deadlines, progress callbacks and bounded waiting loops.

Long operations take a `Deadline` (an absolute end on a monotonic clock) instead of a timeout per step, so
nested waits share one budget, and a `Progress` callback instead of printing. `wait_until` polls with a
capped exponential backoff and never sleeps past the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

Progress = Callable[[str], None]
"""Receives one human-readable line per step, e.g. `writing image 41% (1m12s)`."""

Clock = Callable[[], float]
Sleep = Callable[[float], None]


def no_progress(_line: str) -> None:
    """Discard progress lines (the default where a caller passes none)."""


def format_elapsed(seconds: float) -> str:
    """Render a duration the way progress lines show it: `850ms`, `42s`, `1m12s`, `2h03m`."""
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


@dataclass(frozen=True)
class Deadline:
    """An absolute point in time by which an operation must be done."""

    end: float
    start: float
    clock: Clock = field(default=time.monotonic, repr=False, compare=False)

    @classmethod
    def after(cls, seconds: float, clock: Clock = time.monotonic) -> Deadline:
        """A deadline `seconds` from now."""
        now = clock()
        return cls(end=now + seconds, start=now, clock=clock)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.end - self.clock())

    def expired(self) -> bool:
        return self.clock() >= self.end

    def elapsed(self) -> float:
        """Seconds since the deadline was set."""
        return self.clock() - self.start

    def within(self, seconds: float) -> Deadline:
        """A sub-deadline `seconds` from now that never ends after this one (for one attempt of many)."""
        now = self.clock()
        return Deadline(end=min(self.end, now + seconds), start=now, clock=self.clock)


class WaitTimeout(TimeoutError):
    """Gave up waiting."""

    def __init__(self, what: str, elapsed: float, last: str | None = None) -> None:
        message = f"gave up waiting for {what} after {format_elapsed(elapsed)}"
        if last:
            message += f" (last: {last})"
        super().__init__(message)
        self.what, self.elapsed, self.last = what, elapsed, last


class NotYet(Exception):
    """Raised by a `wait_until` check to say "not yet" and why; the reason ends up in WaitTimeout."""


@dataclass(frozen=True)
class Backoff:
    """Polling intervals: `first`, then multiplied by `factor` per poll, capped at `cap` seconds."""

    first: float = 0.1
    factor: float = 2.0
    cap: float = 1.0

    def delay(self, poll: int) -> float:
        """The pause after poll number `poll` (0-based)."""
        return min(self.cap, self.first * self.factor**poll)


def wait_until(
    check: Callable[[], T | None],
    deadline: Deadline,
    *,
    what: str,
    backoff: Backoff = Backoff(),
    progress: Progress = no_progress,
    sleep: Sleep = time.sleep,
) -> T:
    """Call `check` until it returns something other than None; raise WaitTimeout at the deadline.

    `check` may raise NotYet("reason") instead of returning None; each new reason is reported once through
    `progress`, and the last one is part of the timeout error. Other exceptions propagate at once. The
    check always runs at least once, even on an expired deadline.
    """
    last: str | None = None
    poll = 0
    while True:
        try:
            result = check()
        except NotYet as reason:
            if str(reason) != last:
                last = str(reason)
                progress(f"waiting for {what}: {last}")
            result = None
        if result is not None:
            return result
        remaining = deadline.remaining()
        if remaining <= 0:
            raise WaitTimeout(what, deadline.elapsed(), last)
        sleep(min(backoff.delay(poll), remaining))
        poll += 1
