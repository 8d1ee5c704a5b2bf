"""Per-tenant token buckets with an injectable clock (pure logic, no I/O).

A bucket holds up to ``burst`` tokens and gains ``rate`` per second; a request takes one. When it is
empty the caller is told how long until one is back: the ``Retry-After`` of a 429.

    limits = RateLimiter(rate=20, burst=40, clock=time.monotonic)
    ok, retry_after_s = limits.take("acme")
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

__all__ = ["TokenBucket", "RateLimiter"]


class TokenBucket:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def take(self, n: float = 1.0) -> tuple[bool, float]:
        """(allowed, seconds until ``n`` tokens are available when refused; 0.0 when allowed)."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= n:
            self._tokens -= n
            return True, 0.0
        return False, (n - self._tokens) / self.rate

    @property
    def tokens(self) -> float:
        return self._tokens


class RateLimiter:
    """One bucket per key (tenant), created on first use; thread-safe."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()
        self._max_keys = max_keys

    def take(self, key: str, n: float = 1.0) -> tuple[bool, float]:
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self._max_keys:
                    self._buckets.clear()  # bounded memory: forgetting buckets only ever allows more
                bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, self._clock)
            return bucket.take(n)

    @staticmethod
    def retry_after_header(seconds: float) -> str:
        """Retry-After is whole seconds, at least 1."""
        return str(max(1, math.ceil(seconds)))
