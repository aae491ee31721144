"""Request limits as the two Hetzner APIs document them.

Robot: a fixed number of requests per interval and per endpoint group (e.g. 50 resets per hour); over it,
403 RATE_LIMIT_EXCEEDED. Cloud: a bucket of 3600 requests per project that refills by one per second;
over it, 429 with RateLimit-* headers.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass


class SlidingWindow:
    """At most `limit` events in any `interval` seconds."""

    def __init__(self, limit: int, interval: float) -> None:
        self.limit, self.interval = limit, interval
        self._events: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self, now: float | None = None) -> bool:
        """Record one event if the window has room; False when over the limit."""
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._events and self._events[0] <= now - self.interval:
                self._events.popleft()
            if len(self._events) >= self.limit:
                return False
            self._events.append(now)
            return True


@dataclass(frozen=True)
class BucketState:
    """What the RateLimit-* headers report."""

    limit: int
    remaining: int
    reset: int
    """UNIX time at which the bucket is full again."""

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }


class TokenBucket:
    """`limit` tokens, refilled at `rate` per second; each request takes one."""

    def __init__(self, limit: int, rate: float) -> None:
        self.limit, self.rate = limit, rate
        self._tokens = float(limit)
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> tuple[bool, BucketState]:
        """Take a token if one is left; report the bucket either way."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.limit, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            allowed = self._tokens >= 1
            if allowed:
                self._tokens -= 1
            return allowed, self._state()

    def drain(self) -> BucketState:
        """Empty the bucket (a client that burst through its budget)."""
        with self._lock:
            self._tokens = 0.0
            self._stamp = time.monotonic()
            return self._state()

    def _state(self) -> BucketState:
        missing = self.limit - self._tokens
        return BucketState(self.limit, int(self._tokens), int(time.time() + missing / self.rate))
