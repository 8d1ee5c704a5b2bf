"""Whether the hot cache (Redis) is usable, with reconnect backoff: what degraded serving decides by.

:class:`CacheGate` is a small circuit breaker. Every cache call of the serving path goes through it
(:class:`GuardedCache`, or :meth:`CacheGate.wrap` for a plain callable). A call that fails with
:class:`~hotpath.errors.ServiceUnavailable` opens the gate: for the backoff period (doubling from
``min_backoff_s`` to ``max_backoff_s``) calls fail at once without touching the network, so requests
are answered from the replica-local copies and the dimension / rollup stores instead of each waiting
on a dead connection; after it one call is let through (a probe), and a success closes the gate.

``skips`` counts calls refused or failed while open: a request that saw it move was degraded.
Plain and synchronous: no network client here.

**Metrics** (:class:`RecsMetrics`). Prometheus metrics of the recommendation service (one registry per service object).

* ``recs_request_seconds{endpoint}``            latency histogram per endpoint
* ``recs_cache_lookups_total{family,outcome}``  outcome: ``local`` (replica copy), ``redis``, ``store`` (fallback)
  or ``absent``; hit rate of a family = (local + redis) / all
* ``recs_fallbacks_total{endpoint,reason}``     answers given by a fallback rule
* ``recs_stale_master_serves_total``            times a master with old inference was served
* ``recs_stale_masters``                        distinct stale masters seen (each logged once)
* ``recs_invalidation_lag_seconds``             publish -> applied in the replica's local copy
* ``recs_degraded_total{endpoint}``              answers given while the hot cache (Redis) was down
* ``recs_unavailable_total{endpoint}``           requests nothing could answer (503)
* ``recs_cache_up``                              1 while the hot cache answers, 0 while reconnecting
* ``recs_resyncs_total``                         resyncs after the invalidation subscription came back
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from hotpath.errors import ServiceUnavailable

__all__ = ["CacheGate", "GuardedCache", "RecsMetrics"]


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


_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0)


class RecsMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.latency = Histogram("recs_request_seconds", "Request latency", ["endpoint"], buckets=_BUCKETS, registry=r)
        self.lookups = Counter("recs_cache_lookups", "Cache lookups by outcome", ["family", "outcome"], registry=r)
        self.fallbacks = Counter("recs_fallbacks", "Fallback answers", ["endpoint", "reason"], registry=r)
        self.stale_serves = Counter("recs_stale_master_serves", "Stale masters served", registry=r)
        self.stale_masters = Gauge("recs_stale_masters", "Distinct stale masters seen", registry=r)
        self.inval_lag = Histogram(
            "recs_invalidation_lag_seconds", "Invalidation publish to apply", buckets=_BUCKETS, registry=r
        )
        self.degraded = Counter("recs_degraded", "Answers given while the hot cache was down", ["endpoint"], registry=r)
        self.unavailable = Counter("recs_unavailable", "Requests nothing could answer", ["endpoint"], registry=r)
        self.cache_up = Gauge("recs_cache_up", "1 while the hot cache answers", registry=r)
        self.cache_up.set(1)
        self.resyncs = Counter("recs_resyncs", "Resyncs after a resubscription", registry=r)
        self.hit_ratio = Gauge("recs_cache_hit_ratio", "Hit ratio per key family", ["family"], registry=r)
        self._counts: dict[tuple[str, str], int] = {}
        self._children: dict[tuple[str, str], object] = {}
        self._pushed: dict[tuple[str, str], int] = {}
        self._sync_lock = threading.Lock()

    def lookup(self, family: str, outcome: str, n: int = 1) -> None:
        """Count ``n`` lookups; a plain dict update (several per request), copied into the
        Prometheus counter when metrics are read (:meth:`exposition`, :meth:`count`)."""
        if n:
            key = (family, outcome)
            self._counts[key] = self._counts.get(key, 0) + n

    def _sync(self) -> None:
        with self._sync_lock:
            self._sync_locked()

    def _sync_locked(self) -> None:
        for key, n in list(self._counts.items()):
            done = self._pushed.get(key, 0)
            if n > done:
                c = self._children.get(key)
                if c is None:
                    c = self._children[key] = self.lookups.labels(*key)
                c.inc(n - done)
                self._pushed[key] = n

    def hit_rates(self) -> dict[str, float]:
        fams: dict[str, list[int]] = {}
        for (fam, outcome), n in self._counts.items():
            f = fams.setdefault(fam, [0, 0])
            f[1] += n
            if outcome in ("local", "redis"):
                f[0] += n
        return {fam: (h / t if t else 1.0) for fam, (h, t) in fams.items()}

    def exposition(self) -> bytes:
        self._sync()
        for fam, rate in self.hit_rates().items():
            self.hit_ratio.labels(fam).set(rate)
        return generate_latest(self.registry)

    def count(self, name: str, labels: dict[str, str] | None = None) -> float:
        self._sync()
        v = self.registry.get_sample_value(name, labels or {})
        return float(v or 0.0)
