"""Retry policies as values: how many attempts and how long to pause, decided apart from sleeping.

A transport asks `policy.delay(attempt, retry_after)` and sleeps itself (through an injected sleeper), so
the decision can be tested without waiting. Whether an error may be retried at all is the transport's
decision (it knows which requests may have acted); the policy only bounds how often and how long.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from common.waiting import Deadline


@dataclass(frozen=True)
class RetryPolicy:
    """Up to `attempts` retries with full-jitter exponential backoff capped at `cap` seconds.

    A server-given pause (`retry_after`, e.g. Robot's rate-limit `interval`) is honoured up to `cap`.
    """

    attempts: int = 5
    base: float = 1.0
    cap: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """The pause before retry number `attempt` (0-based)."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.cap))
        return random.uniform(0, min(self.cap, self.base * 2**attempt))

    def exhausted(self, attempt: int) -> bool:
        """True when retry number `attempt` (0-based) is not allowed any more."""
        return attempt >= self.attempts

    def allows(self, attempt: int, pause: float, deadline: Deadline | None) -> bool:
        """True when retry `attempt` after `pause` seconds stays within the attempts and the deadline."""
        if self.exhausted(attempt):
            return False
        return deadline is None or pause < deadline.remaining()
