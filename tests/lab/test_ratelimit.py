from lab.ratelimit import SlidingWindow, TokenBucket


def test_sliding_window_refuses_over_limit_and_recovers_after_interval() -> None:
    window = SlidingWindow(limit=2, interval=10)
    assert window.acquire(now=0) and window.acquire(now=1)
    assert not window.acquire(now=5)
    assert window.acquire(now=10.5)


def test_token_bucket_reports_remaining_and_refuses_when_drained() -> None:
    bucket = TokenBucket(limit=3, rate=0.001)
    allowed, state = bucket.acquire()
    assert allowed and state.limit == 3 and state.remaining == 2
    drained = bucket.drain()
    assert drained.remaining == 0
    allowed, state = bucket.acquire()
    assert not allowed
    assert set(state.headers()) == {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"}
