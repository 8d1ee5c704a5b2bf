"""The recommendation endpoints: what a Serve replica holds and calls in-process.

``related``: recent views -> seed masters and categories; semantic relations; co-view expansion;
merge (semantic 0.6 + category 0.4); dedupe by master; top-1000; best pid; rerank by the widget's
rule. ``bestsellers``: current + co-viewed + recent-interest categories -> top sellers (cache, then
the rollup store) -> union, dedupe, rerank, limit.

The jobs sit in their own modules: :mod:`~hotpath.recs.local` (the replica's local copies: the
sorted-set families and the columns of master / pid attributes), :mod:`~hotpath.recs.ranking` (the
scoring rules, the merge and the widget rule's rerank over those columns), :mod:`~hotpath.recs.health`
(whether Redis answers, with backoff; the service's metrics), :mod:`~hotpath.recs.model` (keys,
queries, answers). This module composes them and answers requests.

Redis down: every cache call goes through a :class:`~hotpath.recs.health.CacheGate`, so while it is
down requests are answered from the local copies and the dimension / rollup stores, marked
``degraded`` and counted; only a request nothing can answer fails (:class:`ServiceUnavailable`, 503).
When the invalidation subscription comes back (it reconnects by itself) the changes announced
meanwhile are re-read from the change log and every local copy is re-read in the background.

The user's history is a dependency: the caller passes what it read (the async HTTP path), or the
service reads it with ``history_reader`` (by default the hot cache's two recent-activity zsets).
No Ray, no HTTP, no network client here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from uuid import UUID

import numpy as np

from hotpath.errors import HotpathError, ServiceUnavailable
from hotpath.recs.health import CacheGate, GuardedCache, RecsMetrics
from hotpath.recs.local import ListCache, MasterTable
from hotpath.recs.model import ALL_CATEGORIES, BestsellersQuery, Item, Keys, RecsResult, RelatedQuery
from hotpath.recs.ranking import (
    Reranker,
    RowMerged,
    bestseller_cat_weights,
    merge_rows,
    related_categories,
    seed_categories,
    top_rows,
)
from hotpath.recs.settings import RecsSettings
from hotpath.stores.base import DimensionStore, HotCache, Subscription

__all__ = ["RecsService", "NO_HISTORY", "History"]

log = logging.getLogger(__name__)

History = Sequence[list[tuple[str, float]]]
"""A user's ``(recent views, recent categories)``, each ``(id, score)`` best first."""

NO_HISTORY: History = ([], [])
"""Pass as ``history`` when the user's history could not be read (the cache is down): the answer
is given without it and marked degraded."""

_RESYNC_MARGIN_S = 5.0
"""A resync re-reads the changes announced from this long before the subscription was lost."""


class RecsService:
    """Serves both endpoints from a hot cache, a dimension store and a rollup store.

    ``local=False`` turns every replica-local copy off: each request reads Redis for everything,
    candidates' hashes included (the straightforward pipeline the benchmark compares against).
    """

    def __init__(
        self,
        settings: RecsSettings,
        cache: HotCache,
        store: DimensionStore | None = None,
        rollups=None,
        *,
        local: bool = True,
        subscribe: bool = True,
        ztop_many: Callable[[Sequence[str], int], list[list[tuple[str, float]]]] | None = None,
        hgetall_many: Callable[[Sequence[str]], list[dict[str, str]]] | None = None,
        history_reader: Callable[[str], History] | None = None,
        clock: Callable[[], float] = time.time,
        gate: CacheGate | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = m = RecsMetrics()
        self.gate = gate or CacheGate()
        self.gate.on_down = lambda: m.cache_up.set(0)
        self.gate.on_up = lambda: m.cache_up.set(1)
        self.raw_cache = cache
        self.cache = GuardedCache(cache, self.gate)
        self.store, self.rollups = store, rollups
        self._ztop_many = self.gate.wrap(ztop_many or cache.ztop_many)
        self.keys = Keys(settings.key_prefix)
        self._latency = {e: m.latency.labels(e) for e in ("related", "bestsellers")}
        self._degraded = {e: m.degraded.labels(e) for e in ("related", "bestsellers")}
        self.clock = clock
        self.table = MasterTable(
            self.cache,
            store,
            self.keys,
            ttl_s=settings.local_master_ttl_s if local else 0.0,
            on_lookup=m.lookup,
            widgets=settings.widgets,
            hgetall_many=self.gate.wrap(hgetall_many or cache.hgetall_many),
        )
        self.lists = ListCache(
            settings,
            self.keys,
            m,
            ztop_many=self._ztop_many,
            write_back=lambda key, members, ttl: self.cache.zreplace(key, members, ttl_s=ttl),
            fallbacks={"semantic": self._semantic_from_store, "co_view": self._coview_from_store,
                       "bestsellers": self._bestsellers_from_rollups},  # fmt: skip
            rows_of=self.table.rows,
            local=local,
        )
        self.reranker = Reranker(self.table)
        self.read_history = history_reader or self._read_history
        self._stale_seen: set[str] = set()
        self._sub: Subscription | None = None
        if local and subscribe:
            self._sub = self._subscribe(cache)
            self.table.start_refresher()
            self.lists.start_refresher()

    def _subscribe(self, cache: HotCache) -> Subscription:
        channel = self.keys.channel(self.settings.invalidation_channel)
        return cache.subscribe(channel, self._on_invalidation, on_reconnect=self.resync)  # type: ignore[call-arg]

    def close(self) -> None:
        """Stop the invalidation subscription and release the rollup store (the cache and the
        dimension store belong to whoever opened them)."""
        if self._sub is not None:
            self._sub.close()
            self._sub = None
        self.lists.stop()
        self.table.stop_refresher()
        if self.rollups is not None:
            self.rollups.close()

    # ------------------------------------------------------------------ invalidation / resync
    def _on_invalidation(self, message: str) -> None:
        if message.startswith("master:"):
            self.lists.drop("semantic", message[7:].partition("|")[0])
        elif message.startswith("cat:"):  # a category's co-view / best-seller lists changed
            c = message[4:].partition("|")[0]
            self.lists.drop("co_view", c)
            self.lists.drop("bestsellers", c)
        sent = self.table.invalidate(message)
        if sent is not None:
            self.metrics.inval_lag.observe(max(0.0, time.time() - sent))

    def resync(self, lost_at: float | None = None) -> dict[str, int]:
        """Close the gap left by a lost subscription: apply every change announced since shortly
        before ``lost_at`` (from the change log, at once), then have every local copy re-read in
        the background (lists on their next use, rows by the table's refresher)."""
        since = (lost_at if lost_at is not None else time.time() - 3600.0) - _RESYNC_MARGIN_S
        applied = 0
        try:  # straight to the cache: the subscription just proved it answers (the gate may not know yet)
            changes = self.raw_cache.ztop(self.keys.changes, 100_000)
            self.gate.succeeded()
        except HotpathError as exc:
            log.warning("resync: change log unreadable: %s", exc.one_line())
            changes = []
        for ident, t in changes:
            if t < since:
                break  # best first = newest first
            self._on_invalidation(f"{ident}|")
            applied += 1
        lists = self.lists.expire_all()
        rows = self.table.expire_all()
        self.metrics.resyncs.inc()
        log.info("recs resync: %d changes re-applied, %d lists and %d rows queued for re-read", applied, lists, rows)
        return {"changes": applied, "lists": lists, "rows": rows}

    # ------------------------------------------------------------------ fallbacks of the list families
    def _semantic_from_store(self, ids: list[str]) -> dict[str, list[tuple[str, float]]]:
        if self.store is None:
            return {}
        rows = self.store.get_semantic([UUID(i) for i in ids])
        return {str(u): [(str(k), float(v)) for k, v in r.related_masters.items()] for u, r in rows.items()}

    def _coview_from_store(self, ids: list[str]) -> dict[str, list[tuple[str, float]]]:
        if self.store is None:
            return {}
        rows = self.store.get_coview(ids)
        return {c: [(k, float(v)) for k, v in r.related_cats.items()] for c, r in rows.items()}

    def _bestsellers_from_rollups(self, ids: list[str]) -> dict[str, list[tuple[str, float]]]:
        if self.rollups is None:
            return {}
        out = {}
        for c in ids:
            top = self.rollups.top_sellers(c, self.settings.bestsellers_per_cat)
            if top:
                out[c] = top
        return out

    # ------------------------------------------------------------------ the user's history
    def user_keys(self, user_id: str) -> tuple[list[str], int]:
        """The two keys of a user's history and how many members to read (for async callers)."""
        s = self.settings
        return [self.keys.recent_views(user_id), self.keys.recent_cats(user_id)], max(s.recent_views_n, s.recent_cats_n)

    def _read_history(self, user_id: str) -> History:
        return self._ztop_many(*self.user_keys(user_id))

    def _user(self, user_id: str | None, history: History | None) -> tuple[list, list, bool]:
        """``(views, categories, read)``; ``read`` False when the history could not be read."""
        if user_id is None:
            return [], [], True
        if history is None:
            try:
                history = self.read_history(user_id)
            except ServiceUnavailable:
                history = NO_HISTORY
        if history is NO_HISTORY:
            self.metrics.lookup("user", "unavailable")
            return [], [], False
        s = self.settings
        views, cats = history
        self.metrics.lookup("user", "redis" if views or cats else "absent")
        return views[: s.recent_views_n], cats[: s.recent_cats_n], True

    # ------------------------------------------------------------------ staleness
    def _check_stale(self, rows: dict[str, int]) -> list[str]:
        limit = self.clock() - self.settings.stale_after_days * 86400.0
        ts = self.table.inference_ts
        stale = [mid for mid, r in rows.items() if ts[r] is not None and ts[r] < limit]
        for mid in stale:
            self.metrics.stale_serves.inc()
            if mid not in self._stale_seen:
                self._stale_seen.add(mid)
                self.metrics.stale_masters.set(len(self._stale_seen))
                age = (self.clock() - ts[rows[mid]]) / 86400.0
                log.warning("master %s served from a %.0f-day-old inference; queued for refresh", mid, age)
                try:  # read by the refresh job
                    self.cache.zadd(self.keys.refresh_queue, {mid: self.clock()})
                except HotpathError:  # a failed enqueue must not fail the request
                    self._stale_seen.discard(mid)  # queued on a later serve
                    log.warning("could not queue master %s for refresh", mid)
        return stale

    # ------------------------------------------------------------------ endpoints
    def related(self, q: RelatedQuery, history: History | None = None, *,
            settings: RecsSettings | None = None) -> RecsResult:
        """``history``: the user's ``(views, categories)`` when the caller read them already (the
        async path), :data:`NO_HISTORY` when that read failed; None: read here. ``settings``: an A/B
        variant's settings for this request (weights, decay, co-view expansion, widget rules)."""
        t0 = time.perf_counter()
        s = settings or self.settings
        skips = self.gate.skips
        fallbacks: list[str] = []
        seeds: dict[str, float] = {}
        if q.master_id is not None:
            seeds[q.master_id] = 1.0
        views, rcats, read = self._user(q.user_id, history)
        for j, (mid, _) in enumerate(views):
            seeds.setdefault(mid, s.recent_view_weight * s.recent_view_decay**j)
        if not read:
            fallbacks.append("history_unavailable")
        elif q.user_id is not None and not views and not rcats:
            fallbacks.append("no_history")
        table, lists = self.table, self.lists
        rowlist = table.rows(list(seeds))
        known = {m: r for m, r in zip(seeds, rowlist) if table.known[r]}
        if q.master_id is not None and q.master_id not in known:
            fallbacks.append("unknown_master")
        stale = self._check_stale(known)
        sem = lists.get("semantic", known)
        cat = table.cat
        own, interest = seed_categories(((cat[known[m]], seeds[m]) for m in known), rcats, s)
        cov = lists.get("co_view", set(own) | set(interest))
        cov_n = {c: lists.normed("co_view", c, lst) for c, lst in cov.items()}
        expanded = related_categories(own, interest, cov_n, s, normalise=False)
        bs = lists.get("bestsellers", set(own) | set(interest) | set(expanded))
        comp = lists.compiled
        parts = {
            "semantic": [(*comp("semantic", m, sem[m], False), w) for m, w in seeds.items() if m in sem],
            "best_seller": [(*comp("bestsellers", c, bs[c], True), w) for c, w in own.items()],
            "co_view": [(*comp("bestsellers", c, bs[c], True), w) for c, w in expanded.items()],
            "user_interest": [(*comp("bestsellers", c, bs[c], True), w) for c, w in interest.items()],
        }
        exclude = np.array(rowlist, dtype=np.int64)
        cands = merge_rows(parts, exclude, "related", s)
        if not len(cands):
            fallbacks.append("global_bestsellers")
            cands = self._global(exclude)
        items = self.reranker.dicts(top_rows(cands, s.candidates_max, table.master_ids), q.widget, q.k,
                                     rule=self._variant_rule(settings, q.widget))
        return self._answer("related", t0, skips, not read, fallbacks, items, tuple(stale), q.widget)

    def _variant_rule(self, settings: RecsSettings | None, widget: str):
        """A variant's widget rule where it differs from the service's own (precomputed) one, else None."""
        if settings is None or settings is self.settings:
            return None
        rule = settings.widgets[widget]
        return None if rule == self.settings.widgets.get(widget) else rule

    def bestsellers(self, q: BestsellersQuery, history: History | None = None, *,
            settings: RecsSettings | None = None) -> RecsResult:
        t0 = time.perf_counter()
        s = settings or self.settings
        skips = self.gate.skips
        fallbacks: list[str] = []
        _, rcats, read = self._user(q.user_id, history)
        if not read:
            fallbacks.append("history_unavailable")
        lists = self.lists
        cur_cov = lists.get("co_view", [q.category_id])[q.category_id] if q.category_id else []
        weights = bestseller_cat_weights(q.category_id, cur_cov, rcats, s)
        bs = lists.get("bestsellers", weights) if weights else {}
        if q.category_id is not None and not bs.get(q.category_id):
            fallbacks.append("unknown_category")
        parts: dict[str, list] = {}
        for c, (w, sig) in weights.items():
            parts.setdefault(sig, []).append((*lists.compiled("bestsellers", c, bs[c], True), w))
        none = np.zeros(0, dtype=np.int64)
        cands = merge_rows(parts, none, "bestsellers", s)
        if not len(cands):
            fallbacks.append("global_bestsellers")
            cands = self._global(none)
        items = self.reranker.dicts(top_rows(cands, s.candidates_max, self.table.master_ids), q.widget, q.k,
                                     rule=self._variant_rule(settings, q.widget))
        return self._answer("bestsellers", t0, skips, not read, fallbacks, items, (), q.widget)

    def _answer(self, endpoint: str, t0: float, skips: int, history_lost: bool, fallbacks: list[str],
                items: list[dict], stale: tuple[str, ...], widget: str) -> RecsResult:  # fmt: skip
        degraded = history_lost or self.gate.skips != skips or not self.gate.up
        for r in fallbacks:
            self.metrics.fallbacks.labels(endpoint, r).inc()
        if degraded:
            if not items:
                self.metrics.unavailable.labels(endpoint).inc()
                raise ServiceUnavailable(f"recs {endpoint}: the hot cache is down and no local copy or store could answer")
            self._degraded[endpoint].inc()
        self._latency[endpoint].observe(time.perf_counter() - t0)
        return RecsResult(None, tuple(fallbacks), stale, widget, item_dicts=items, degraded=degraded)

    def _global(self, exclude: np.ndarray) -> RowMerged:
        lst = self.lists.get("bestsellers", [ALL_CATEGORIES])[ALL_CATEGORIES]
        part = (*self.lists.compiled("bestsellers", ALL_CATEGORIES, lst, True), 1.0)
        return merge_rows({"best_seller": [part]}, exclude, "bestsellers", self.settings)

    def rerank(self, cands: RowMerged, widget: str, k: int, *, refresh: bool = True) -> list[Item]:
        """Best pid per master from the local columns, the widget's rule, top ``k`` (see :class:`Reranker`)."""
        return self.reranker.items(cands, widget, k, refresh=refresh)

    # ------------------------------------------------------------------ warm-up
    def warm(self, *, masters: int = 0) -> dict[str, int]:
        """Fill the local copies ahead of traffic: every category's co-views and best-sellers, then
        the rows of up to ``masters`` masters (best-sellers first, then any hot master in Redis)."""
        k = self.keys
        plen = len(k.bestsellers(""))
        cats = [key[plen:] for key in self.cache.scan(k.bestsellers(""))]
        bs = self.lists.get("bestsellers", cats)
        cov = self.lists.get("co_view", [c for c in cats if c != ALL_CATEGORIES])
        mids: dict[str, None] = {}
        if masters:
            mids = dict.fromkeys(m for lst in bs.values() for m, _ in lst)
            if len(mids) < masters:
                mlen = len(k.meta(""))
                for key in self.cache.scan(k.meta("")):
                    mids.setdefault(key[mlen:])
                    if len(mids) >= masters:
                        break
            todo = list(mids)[:masters]
            for i in range(0, len(todo), 2000):
                self.table.rows(todo[i : i + 2000])
        return {"categories": len(bs), "co_views": len(cov), "masters": min(len(mids), masters)}

    def stale_masters_seen(self) -> set[str]:
        return set(self._stale_seen)

