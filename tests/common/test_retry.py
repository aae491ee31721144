"""RetryPolicy decisions without sleeping."""

from __future__ import annotations

from common.retry import RetryPolicy
from common.waiting import Deadline


def test_delay_exponential_with_full_jitter_capped() -> None:
    policy = RetryPolicy(attempts=10, base=1.0, cap=8.0)

    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (6, 8.0)]:
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(0 <= delay <= ceiling for delay in delays)
        assert max(delays) > ceiling / 2  # jitter spreads over the range


def test_delay_honours_server_pause_up_to_cap() -> None:
    policy = RetryPolicy(cap=30.0)

    assert policy.delay(0, retry_after=7) == 7
    assert policy.delay(4, retry_after=3600) == 30.0


def test_allows_stops_at_attempts_and_deadline() -> None:
    policy = RetryPolicy(attempts=2)

    assert policy.allows(1, 1.0, None) and not policy.allows(2, 1.0, None)
    assert not policy.allows(0, 10.0, Deadline.after(5.0))
    assert policy.allows(0, 1.0, Deadline.after(5.0))
