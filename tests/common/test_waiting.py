"""Deadlines and wait_until on a fake clock: no real sleeping."""

from __future__ import annotations

import pytest

from common.waiting import Backoff, Deadline, NotYet, WaitTimeout, format_elapsed, wait_until


class FakeTime:
    """A clock that only moves when something sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.pauses: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


def test_deadline_remaining_elapsed_and_expiry() -> None:
    time = FakeTime()
    deadline = Deadline.after(10, clock=time.clock)

    time.sleep(4)

    assert (deadline.remaining(), deadline.elapsed(), deadline.expired()) == (6, 4, False)
    time.sleep(7)
    assert deadline.remaining() == 0 and deadline.expired()


def test_deadline_within_never_outlives_parent() -> None:
    time = FakeTime()
    parent = Deadline.after(5, clock=time.clock)

    assert parent.within(60).remaining() == 5
    assert parent.within(2).remaining() == 2


def test_wait_until_returns_first_result_with_capped_backoff() -> None:
    time = FakeTime()
    answers = iter([None, None, None, None, "up"])

    result = wait_until(
        lambda: next(answers),
        Deadline.after(60, clock=time.clock),
        what="x",
        backoff=Backoff(first=0.5, factor=2, cap=1.5),
        sleep=time.sleep,
    )

    assert result == "up" and time.pauses == [0.5, 1.0, 1.5, 1.5]


def test_wait_until_timeout_carries_last_reason_and_reports_each_new_one() -> None:
    time = FakeTime()
    lines: list[str] = []
    reasons = iter(["refused", "refused", "auth failed"] + ["auth failed"] * 100)

    def check() -> None:
        raise NotYet(next(reasons))

    with pytest.raises(WaitTimeout) as raised:
        wait_until(check, Deadline.after(3, clock=time.clock), what="rescue", progress=lines.append, sleep=time.sleep)

    assert str(raised.value) == "gave up waiting for rescue after 3s (last: auth failed)"
    assert lines == ["waiting for rescue: refused", "waiting for rescue: auth failed"]
    assert sum(time.pauses) == pytest.approx(3)  # never sleeps past the deadline


def test_wait_until_expired_deadline_still_checks_once() -> None:
    time = FakeTime()

    assert wait_until(lambda: 1, Deadline.after(0, clock=time.clock), what="x", sleep=time.sleep) == 1


def test_wait_until_other_errors_propagate() -> None:
    def check() -> None:
        raise ValueError("broken")

    with pytest.raises(ValueError):
        wait_until(check, Deadline.after(10), what="x", sleep=lambda _: None)


@pytest.mark.parametrize(("seconds", "text"), [(0.85, "850ms"), (42, "42s"), (72, "1m12s"), (7380, "2h03m")])
def test_format_elapsed(seconds: float, text: str) -> None:
    assert format_elapsed(seconds) == text
