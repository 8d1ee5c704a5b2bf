"""Best-seller lists served from the hot cache, refreshed from a rollup store (Druid) in the background.

    BestsellerRefresher.start()   a daemon thread: every ``interval_s`` one ``top_sellers_all`` over the
                                  trailing ``window_s`` -> ``zreplace_many`` of ``cat:bestsellers:{cat}``
                                  (and ``_all``), TTL ``ttl_s``
    BestsellerRefresher.serve()   the read path: the cache first, the rollup store on a miss (written back)

The keys are the recs product's (``hotpath.recs.keys.Keys.bestsellers``, same prefix): the recs
service keeps reading ``cat:bestsellers:{cat}`` as it does with DuckDB, and finds fresher lists.

Metrics (prometheus-client, default registry; plain numbers in :meth:`BestsellerRefresher.metrics`):
``hotpath_bestsellers_refresh_lag_seconds`` (age of the last successful refresh),
``hotpath_bestsellers_refresh_seconds`` (histogram of one refresh), ``hotpath_bestsellers_cache_lookups_total``
(label ``outcome`` = hit | miss) -> the cache hit rate, ``hotpath_bestsellers_refresh_errors_total``.
"""

from __future__ import annotations

import logging
import threading
import time

from prometheus_client import Counter, Gauge, Histogram

from hotpath.stores.base import HotCache
from hotpath.stores.rollup_base import RollupStore

__all__ = ["BestsellerRefresher", "bestsellers_key"]

log = logging.getLogger(__name__)

REFRESH_LAG = Gauge("hotpath_bestsellers_refresh_lag_seconds", "Seconds since the last successful best-seller refresh")
REFRESH_SECONDS = Histogram(
    "hotpath_bestsellers_refresh_seconds",
    "Duration of one best-seller refresh from the rollup store",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
REFRESH_ERRORS = Counter("hotpath_bestsellers_refresh_errors_total", "Best-seller refreshes that failed")
LOOKUPS = Counter("hotpath_bestsellers_cache_lookups_total", "Served best-seller lookups", ["outcome"])


def bestsellers_key(prefix: str, cat_id: str) -> str:
    """``{prefix}cat:bestsellers:{cat}``: the recs product's key (see hotpath/recs/keys.py)."""
    return f"{prefix}cat:bestsellers:{cat_id}"


class BestsellerRefresher:
    def __init__(
        self,
        rollups: RollupStore,
        cache: HotCache,
        *,
        n: int = 50,
        interval_s: float = 5.0,
        ttl_s: float = 120.0,
        window_s: float | None = 86_400.0,
        prefix: str = "",
    ) -> None:
        self.rollups, self.cache = rollups, cache
        self.n, self.interval_s, self.ttl_s, self.window_s, self.prefix = n, interval_s, ttl_s, window_s, prefix
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_ok: float | None = None
        self.refreshes = 0
        self.errors = 0
        self.hits = 0
        self.misses = 0
        REFRESH_LAG.set_function(self.lag_s)

    def lag_s(self) -> float:
        """Seconds since the last successful refresh (``inf`` before the first)."""
        return float("inf") if self.last_ok is None else time.time() - self.last_ok

    def refresh_once(self) -> int:
        """One refresh; returns how many lists were written."""
        t0 = time.perf_counter()
        since = None if self.window_s is None else int((time.time() - self.window_s) * 1000)
        tops = self.rollups.top_sellers_all(self.n, since_ms=since)
        self.cache.zreplace_many(
            {bestsellers_key(self.prefix, cat): dict(top) for cat, top in tops.items()}, ttl_s=self.ttl_s
        )
        REFRESH_SECONDS.observe(time.perf_counter() - t0)
        self.last_ok = time.time()
        self.refreshes += 1
        return len(tops)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh_once()
            except Exception as exc:  # noqa: BLE001 - keep serving the last lists; counted and logged
                self.errors += 1
                REFRESH_ERRORS.inc()
                log.warning("best-seller refresh failed: %s", exc)
            self._stop.wait(self.interval_s)

    def start(self) -> BestsellerRefresher:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="bestsellers-refresh", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval_s + 30)
            self._thread = None

    def serve(self, cat_id: str, n: int) -> list[tuple[str, float]]:
        """Top ``n`` of a category: the cache, else the rollup store (written back with the TTL)."""
        key = bestsellers_key(self.prefix, cat_id)
        got = self.cache.ztop(key, n)
        if got:
            self.hits += 1
            LOOKUPS.labels("hit").inc()
            return got
        self.misses += 1
        LOOKUPS.labels("miss").inc()
        top = self.rollups.top_sellers(cat_id, max(n, self.n))
        if top:
            self.cache.zreplace(key, dict(top), ttl_s=self.ttl_s)
        return top[:n]

    def metrics(self) -> dict[str, float]:
        looked = self.hits + self.misses
        return {
            "refresh_lag_s": self.lag_s(),
            "refreshes": self.refreshes,
            "refresh_errors": self.errors,
            "cache_hits": self.hits,
            "cache_misses": self.misses,
            "cache_hit_rate": self.hits / looked if looked else 0.0,
        }
