"""Replica-local copies of the sorted-set families (semantic, co-view, best-sellers).

Each id's list: the local copy; else Redis; else a fallback (the dimension / rollup store, written
back to Redis). An expired copy is still served while the background refresher runs: it is queued
once (its expiry pushed a TTL ahead) and re-read off the request path. Each list is also kept
compiled (table rows + normalised scores as numpy arrays), memoised per list object.

While the hot cache is down (its calls fail fast through the :class:`~hotpath.recs.health.CacheGate`)
copies are served whatever their age, misses go to the fallback (no write-back), and nothing empty is
kept, so the first read after Redis returns fills it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from hotpath.errors import ServiceUnavailable
from hotpath.recs.keys import Keys
from hotpath.recs.metrics import RecsMetrics
from hotpath.recs.ranking import normalised
from hotpath.recs.settings import RecsSettings

__all__ = ["ListCache", "FAMILIES"]

log = logging.getLogger(__name__)

FAMILIES = ("semantic", "co_view", "bestsellers")
Fallback = Callable[[list[str]], dict[str, list[tuple[str, float]]]]


def _sorted_top(pairs: Iterable[tuple[str, float]], n: int) -> list[tuple[str, float]]:
    return sorted(pairs, key=lambda kv: (-kv[1], kv[0]))[:n]


class ListCache:
    """``get(family, ids)`` -> each id's list, with local copies, Redis and a per-family fallback."""

    def __init__(
        self,
        settings: RecsSettings,
        keys: Keys,
        metrics: RecsMetrics,
        *,
        ztop_many: Callable[[Sequence[str], int], list[list[tuple[str, float]]]],
        write_back: Callable[[str, dict[str, float], float | None], None],
        fallbacks: dict[str, Fallback | None],
        rows_of: Callable[[list[str]], list[int]],
        local: bool = True,
    ) -> None:
        s = settings
        self.settings, self.keys, self.metrics = s, keys, metrics
        self._ztop_many, self._write_back, self._fallbacks, self._rows_of = ztop_many, write_back, fallbacks, rows_of
        self.local = local
        self._spec = {  # family -> (key of an id, members kept, local TTL, write-back TTL)
            "semantic": (keys.sem, s.semantic_n, s.local_semantic_ttl_s if local else 0.0, s.semantic_ttl_s),
            "co_view": (keys.coview, s.coview_n, s.local_ttl_s if local else 0.0, None),
            "bestsellers": (keys.bestsellers, s.bestsellers_per_cat, s.local_ttl_s if local else 0.0, s.bestsellers_ttl_s),
        }
        self._z: dict[tuple[str, str], tuple[float, list[tuple[str, float]]]] = {}
        self._comp: dict[tuple[str, str], tuple[list, np.ndarray, np.ndarray]] = {}
        self._norm: dict[tuple[str, str], tuple[list, list]] = {}
        self._lock = threading.Lock()
        self._due: set[tuple[str, str]] = set()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._dropped: dict[tuple[str, str], float] = {}
        self._stopping = False

    # ------------------------------------------------------------------ life cycle
    def start_refresher(self) -> None:
        if self._thread is None and self.local:
            self._thread = threading.Thread(target=self._refresh_loop, name="recs-zset-refresh", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    # ------------------------------------------------------------------ invalidation
    def drop(self, family: str, ident: str) -> None:
        """Forget a local copy; a background re-read already under way does not bring it back."""
        key = (family, ident)
        self._z.pop(key, None)
        if self._thread is not None:
            if len(self._dropped) > 100_000:
                self._dropped.clear()
            self._dropped[key] = time.monotonic()

    def expire_all(self) -> int:
        """Mark every copy expired (a resync after the cache came back): each is still served and
        re-read in the background on its next use (or at once without the refresher)."""
        z = self._z
        for k, (_, lst) in list(z.items()):
            z[k] = (0.0, lst)
        return len(z)

    def __len__(self) -> int:
        return len(self._z)

    # ------------------------------------------------------------------ reads
    def get(self, family: str, ids: Iterable[str]) -> dict[str, list[tuple[str, float]]]:
        key, n, ttl, wb_ttl = self._spec[family]
        out: dict[str, list[tuple[str, float]]] = {}
        missing: list[str] = []
        now = time.monotonic()
        z = self._z
        due: list[tuple[str, str]] | None = None
        for i in ids:
            e = z.get((family, i))
            if e is None:
                missing.append(i)
            elif e[0] > now:
                out[i] = e[1]
            elif self._thread is not None:
                out[i] = e[1]
                z[(family, i)] = (now + ttl, e[1])
                if due is None:
                    due = []
                due.append((family, i))
            else:
                missing.append(i)
        if due:
            with self._lock:
                self._due.update(due)
            self._wake.set()
        m = self.metrics
        m.lookup(family, "local", len(out))
        if not missing:
            return out
        down = False
        try:
            lists = self._ztop_many([key(i) for i in missing], n)
        except ServiceUnavailable:
            down = True
            lists = [[] for _ in missing]
            stale = [i for i in missing if (family, i) in z]  # expired copies: better than nothing
            for i in stale:
                out[i] = z[(family, i)][1]
            if stale:
                m.lookup(family, "local", len(stale))
                missing = [i for i in missing if i not in out]
                lists = [[] for _ in missing]
        absent = []
        for i, lst in zip(missing, lists):
            if lst:
                out[i] = lst
            else:
                absent.append(i)
        if not down:
            m.lookup(family, "redis", len(missing) - len(absent))
        fallback = self._fallbacks.get(family)
        if absent and fallback is not None:
            got = fallback(absent)
            m.lookup(family, "store", len(got))
            m.lookup(family, "absent", len(absent) - len(got))
            for i, lst in got.items():
                lst = _sorted_top(lst, n)
                out[i] = lst
                if lst and not down:
                    try:
                        self._write_back(key(i), dict(lst), wb_ttl)
                    except ServiceUnavailable:
                        down = True
        elif absent:
            m.lookup(family, "absent", len(absent))
        for i in missing:
            out.setdefault(i, [])
        if ttl > 0:
            exp = now + ttl
            for i in missing:
                if out[i] or not down:
                    z[(family, i)] = (exp, out[i])
            if len(z) > 200_000:
                z.clear()
        return out

    def _refresh_loop(self) -> None:
        """Re-read queued expired copies in batches (one pipelined read per family and batch).

        A list still in Redis replaces the copy; one gone from Redis drops it, so the next request
        reads through (the store / rollup fallback, written back) as on a first use. While the cache
        is down the copies are kept as they are."""
        while not self._stopping:
            self._wake.wait(1.0)
            time.sleep(0.25)  # coalesce: one pipelined read for everything that expired meanwhile
            self._wake.clear()
            while self._due and not self._stopping:
                with self._lock:
                    batch = [self._due.pop() for _ in range(min(2000, len(self._due)))]
                by_family: dict[str, list[str]] = {}
                for fam, i in batch:
                    by_family.setdefault(fam, []).append(i)
                for fam, ids in by_family.items():
                    key, n, ttl, _ = self._spec[fam]
                    t_read = time.monotonic()
                    try:
                        lists = self._ztop_many([key(i) for i in ids], n)
                    except ServiceUnavailable:
                        time.sleep(0.5)  # kept, served as they are; re-queued on their next use
                        continue
                    except Exception:  # a control loop logs a failing step and goes on
                        log.exception("background refresh of %d %s lists failed", len(ids), fam)
                        time.sleep(1.0)
                        continue
                    exp = time.monotonic() + ttl
                    z, dropped = self._z, self._dropped
                    for i, lst in zip(ids, lists):
                        if lst and dropped.get((fam, i), -1.0) < t_read:
                            z[(fam, i)] = (exp, lst)
                        else:  # gone from Redis, or invalidated while it was being read
                            z.pop((fam, i), None)

    # ------------------------------------------------------------------ compiled forms
    def normed(self, family: str, ident: str, lst: list[tuple[str, float]]) -> list[tuple[str, float]]:
        """``normalised(lst)``, memoised per list object (a local copy is normalised once)."""
        key = (family, ident)
        e = self._norm.get(key)
        if e is not None and e[0] is lst:
            return e[1]
        out = normalised(lst)
        if self.local:
            self._norm[key] = (lst, out)
            if len(self._norm) > 200_000:
                self._norm.clear()
        return out

    def compiled(self, family: str, ident: str, lst: list[tuple[str, float]], norm: bool) -> tuple[np.ndarray, np.ndarray]:
        """A list as (table rows, scores), normalised by its top when ``norm``; memoised per list object."""
        key = (family, ident)
        e = self._comp.get(key)
        if e is not None and e[0] is lst:
            return e[1], e[2]
        pairs = normalised(lst) if norm else lst
        rows = np.array(self._rows_of([m for m, _ in pairs]), dtype=np.int64)
        scores = np.array([v for _, v in pairs], dtype=np.float64)
        if self.local:
            self._comp[key] = (lst, rows, scores)
            if len(self._comp) > 200_000:
                self._comp.clear()
        return rows, scores
