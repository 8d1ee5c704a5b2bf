"""Prometheus metrics of the recommendation service (one registry per service object).

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

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["RecsMetrics"]

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
