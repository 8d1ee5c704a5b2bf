"""Whether the hot cache (Redis) is usable, with reconnect backoff: what degraded serving decides by.

:class:`CacheGate` is a small circuit breaker. Every cache call of the serving path goes through it
(:class:`GuardedCache`, or :meth:`CacheGate.wrap` for a plain callable). A call that fails with
:class:`~hotpath.errors.ServiceUnavailable` opens the gate: for the backoff period (doubling from
``min_backoff_s`` to ``max_backoff_s``) calls fail at once without touching the network, so requests
are answered from the replica-local copies and the dimension / rollup stores instead of each waiting
on a dead connection; after it one call is let through (a probe), and a success closes the gate.

``skips`` counts calls refused or failed while open: a request that saw it move was degraded.
Plain and synchronous: no network client here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from hotpath.errors import ServiceUnavailable

__all__ = ["CacheGate", "GuardedCache"]


class CacheGate:
    def __init__(
        self,
        *,
        min_backoff_s: float = 0.05,
        max_backoff_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        on_down: Callable[[], None] | None = None,
        on_up: Callable[[], None] | None = None,
    ) -> None:
        self.min_backoff_s, self.max_backoff_s = min_backoff_s, max_backoff_s
        self._clock = clock
        self._lock = threading.Lock()
        self.up = True
        self.down_since: float | None = None
        """``time.time()`` when the gate last opened (for a resync window); None while up."""
        self._backoff = min_backoff_s
        self._retry_at = 0.0
        self.skips = 0
        self.outages = 0
        self.on_down, self.on_up = on_down, on_up

    def allow(self) -> bool:
        """True when a call may go out: the gate is closed, or a probe is due."""
        if self.up:
            return True
        with self._lock:
            if self._clock() >= self._retry_at:
                self._retry_at = self._clock() + self._backoff  # one probe per backoff period
                return True
            self.skips += 1
            return False

    def failed(self) -> None:
        with self._lock:
            self.skips += 1
            was_up = self.up
            if was_up:
                self.up = False
                self.down_since = time.time()
                self.outages += 1
                self._backoff = self.min_backoff_s
            else:
                self._backoff = min(self._backoff * 2, self.max_backoff_s)
            self._retry_at = self._clock() + self._backoff
        if was_up and self.on_down is not None:
            self.on_down()

    def succeeded(self) -> None:
        if self.up:
            return
        with self._lock:
            was_down = not self.up
            self.up = True
            self.down_since = None
            self._backoff = self.min_backoff_s
        if was_down and self.on_up is not None:
            self.on_up()

    def call(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        if not self.allow():
            raise ServiceUnavailable("hot cache unavailable (reconnecting with backoff)")
        try:
            out = fn(*args, **kw)
        except ServiceUnavailable:
            self.failed()
            raise
        self.succeeded()
        return out

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def gated(*args: Any, **kw: Any) -> Any:
            return self.call(fn, *args, **kw)

        return gated


class GuardedCache:
    """A :class:`~hotpath.stores.base.HotCache` whose calls go through a :class:`CacheGate`
    (``subscribe`` / ``close`` go straight to the cache: the subscription reconnects by itself)."""

    _DIRECT = frozenset({"subscribe", "close", "address"})

    def __init__(self, cache: Any, gate: CacheGate) -> None:
        self.inner, self.gate = cache, gate

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name in self._DIRECT or name.startswith("_") or not callable(attr):
            return attr
        return self.gate.wrap(attr)
