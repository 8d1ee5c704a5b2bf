"""The whole recommendation hot path in one object: what a Serve replica holds and calls in-process.

``related``: recent views -> seed masters and categories; semantic relations; co-view expansion;
merge (semantic 0.6 + category 0.4); dedupe by master; top-1000; best pid; rerank by the widget's
rule. ``bestsellers``: current + co-viewed + recent-interest categories -> top sellers (cache, then
the rollup store) -> union, dedupe, rerank, limit.

Reads: a replica-local copy (short TTL; pub/sub keeps attributes fresh) -> Redis -> the dimension /
rollup store, writing hot keys back. Every lookup is counted per key family. No Ray, no HTTP here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from uuid import UUID

import numpy as np

from hotpath.recs.keys import ALL_CATEGORIES, Keys
from hotpath.recs.metrics import RecsMetrics
from hotpath.recs.model import BestsellersQuery, Item, RecsResult, RelatedQuery
from hotpath.recs.ranking import (
    SIGNAL_NAMES,
    RowMerged,
    add_promo,
    bestseller_cat_weights,
    merge_rows,
    normalised,
    related_categories,
    seed_categories,
    top_rows,
)
from hotpath.recs.settings import RecsSettings, WidgetRule
from hotpath.recs.table import MasterTable
from hotpath.stores.base import DimensionStore, HotCache, Subscription

__all__ = ["RecsService"]

log = logging.getLogger(__name__)


def _sorted_top(pairs: Iterable[tuple[str, float]], n: int) -> list[tuple[str, float]]:
    return sorted(pairs, key=lambda kv: (-kv[1], kv[0]))[:n]


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
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.cache, self.store, self.rollups = cache, store, rollups
        self._ztop_many = ztop_many or cache.ztop_many
        self.keys = Keys(settings.key_prefix)
        self.metrics = RecsMetrics()
        self._latency = {e: self.metrics.latency.labels(e) for e in ("related", "bestsellers")}
        self.clock = clock
        self.local_ttl = settings.local_ttl_s if local else 0.0
        self._family_ttl = {"semantic": settings.local_semantic_ttl_s if local else 0.0}
        self.table = MasterTable(
            cache,
            store,
            self.keys,
            ttl_s=settings.local_master_ttl_s if local else 0.0,
            on_lookup=self.metrics.lookup,
            widgets=settings.widgets,
            hgetall_many=hgetall_many,
        )
        self._z: dict[tuple[str, str], tuple[float, list[tuple[str, float]]]] = {}
        self._comp: dict[tuple[str, str], tuple[list, np.ndarray, np.ndarray]] = {}
        self._norm: dict[tuple[str, str], tuple[list, list]] = {}
        self._stale_seen: set[str] = set()
        self.refresh_queue: list[str] = []
        self._sub: Subscription | None = None
        # expired sorted-set copies: served meanwhile, re-read on a background thread (see _zsets)
        self._zlock = threading.Lock()
        self._zdue: set[tuple[str, str]] = set()
        self._zwake = threading.Event()
        self._zthread: threading.Thread | None = None
        self._zdropped: dict[tuple[str, str], float] = {}
        self._stopping = False
        if local and subscribe:
            self._sub = cache.subscribe(self.keys.channel(settings.invalidation_channel), self._on_invalidation)
            self.table.start_refresher()
            self._zthread = threading.Thread(target=self._zrefresh_loop, name="recs-zset-refresh", daemon=True)
            self._zthread.start()

    def close(self) -> None:
        """Stop the invalidation subscription and release the rollup store (the cache and the
        dimension store belong to whoever opened them)."""
        if self._sub is not None:
            self._sub.close()
            self._sub = None
        self._stopping = True
        self._zwake.set()
        self.table.stop_refresher()
        if self.rollups is not None:
            self.rollups.close()

    # ------------------------------------------------------------------ invalidation
    def _on_invalidation(self, message: str) -> None:
        if message.startswith("master:"):
            self._drop_list(("semantic", message[7:].partition("|")[0]))
        elif message.startswith("cat:"):  # a category's co-view / best-seller lists changed
            c = message[4:].partition("|")[0]
            self._drop_list(("co_view", c))
            self._drop_list(("bestsellers", c))
        sent = self.table.invalidate(message)
        if sent is not None:
            self.metrics.inval_lag.observe(max(0.0, time.time() - sent))

    def _drop_list(self, key: tuple[str, str]) -> None:
        """Forget a local list copy; a background re-read already under way does not bring it back."""
        self._z.pop(key, None)
        if self._zthread is not None:
            if len(self._zdropped) > 100_000:
                self._zdropped.clear()
            self._zdropped[key] = time.monotonic()

    # ------------------------------------------------------------------ sorted-set families
    def _zspec(self, family: str) -> tuple[Callable[[str], str], int, float]:
        """(key of an id, members kept, local TTL) of a sorted-set family."""
        s, k = self.settings, self.keys
        if family == "semantic":
            return k.sem, s.semantic_n, self._family_ttl["semantic"]
        if family == "co_view":
            return k.coview, s.coview_n, self.local_ttl
        return k.bestsellers, s.bestsellers_per_cat, self.local_ttl

    def _zsets(
        self,
        family: str,
        ids: Iterable[str],
        n: int,
        key: Callable[[str], str],
        fallback: Callable[[list[str]], dict[str, list[tuple[str, float]]]] | None,
        write_back_ttl: float | None,
    ) -> dict[str, list[tuple[str, float]]]:
        """Each id's list: the local copy; else Redis; else ``fallback`` (written back).

        An expired local copy is still served when the background refresher runs: it is queued
        once (its expiry pushed a TTL ahead) and re-read off the request path, so no request pays a
        Redis round trip for data it already has; without the refresher it is re-read now."""
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
            elif self._zthread is not None:
                out[i] = e[1]
                z[(family, i)] = (now + self._zspec(family)[2], e[1])
                if due is None:
                    due = []
                due.append((family, i))
            else:
                missing.append(i)
        if due:
            with self._zlock:
                self._zdue.update(due)
            self._zwake.set()
        m = self.metrics
        m.lookup(family, "local", len(out))
        if not missing:
            return out
        lists = self._ztop_many([key(i) for i in missing], n)
        absent = []
        for i, lst in zip(missing, lists):
            if lst:
                out[i] = lst
            else:
                absent.append(i)
        m.lookup(family, "redis", len(missing) - len(absent))
        if absent and fallback is not None:
            got = fallback(absent)
            m.lookup(family, "store", len(got))
            m.lookup(family, "absent", len(absent) - len(got))
            for i, lst in got.items():
                lst = _sorted_top(lst, n)
                out[i] = lst
                if lst:
                    self.cache.zreplace(key(i), dict(lst), ttl_s=write_back_ttl)
        elif absent:
            m.lookup(family, "absent", len(absent))
        for i in missing:
            out.setdefault(i, [])
        ttl = self._family_ttl.get(family, self.local_ttl)
        if ttl > 0:
            exp = now + ttl
            for i in missing:
                z[(family, i)] = (exp, out[i])
            if len(z) > 200_000:
                z.clear()
        return out

    def _zrefresh_loop(self) -> None:
        """Re-read queued expired copies in batches (one pipelined read per family and batch).

        A list still in Redis replaces the copy; one gone from Redis drops it, so the next request
        reads through (the store / rollup fallback, written back) as on a first use."""
        while not self._stopping:
            self._zwake.wait(1.0)
            time.sleep(0.25)  # coalesce: one pipelined read for everything that expired meanwhile
            self._zwake.clear()
            while self._zdue and not self._stopping:
                with self._zlock:
                    batch = [self._zdue.pop() for _ in range(min(2000, len(self._zdue)))]
                by_family: dict[str, list[str]] = {}
                for fam, i in batch:
                    by_family.setdefault(fam, []).append(i)
                for fam, ids in by_family.items():
                    key, n, ttl = self._zspec(fam)
                    t_read = time.monotonic()
                    try:
                        lists = self._ztop_many([key(i) for i in ids], n)
                    except Exception:  # a control loop logs a failing step and goes on
                        log.exception("background refresh of %d %s lists failed", len(ids), fam)
                        time.sleep(1.0)
                        continue
                    exp = time.monotonic() + ttl
                    z, dropped = self._z, self._zdropped
                    for i, lst in zip(ids, lists):
                        if lst and dropped.get((fam, i), -1.0) < t_read:
                            z[(fam, i)] = (exp, lst)
                        else:  # gone from Redis, or invalidated while it was being read
                            z.pop((fam, i), None)

    def _semantic(self, mids: Iterable[str]) -> dict[str, list[tuple[str, float]]]:
        s = self.settings

        def from_store(ids: list[str]) -> dict[str, list[tuple[str, float]]]:
            if self.store is None:
                return {}
            rows = self.store.get_semantic([UUID(i) for i in ids])
            return {str(u): [(str(k), float(v)) for k, v in r.related_masters.items()] for u, r in rows.items()}

        return self._zsets("semantic", mids, s.semantic_n, self.keys.sem, from_store, s.semantic_ttl_s)

    def _coview(self, cats: Iterable[str]) -> dict[str, list[tuple[str, float]]]:
        def from_store(ids: list[str]) -> dict[str, list[tuple[str, float]]]:
            if self.store is None:
                return {}
            rows = self.store.get_coview(ids)
            return {c: [(k, float(v)) for k, v in r.related_cats.items()] for c, r in rows.items()}

        return self._zsets("co_view", cats, self.settings.coview_n, self.keys.coview, from_store, None)

    def _bestsellers(self, cats: Iterable[str]) -> dict[str, list[tuple[str, float]]]:
        s = self.settings

        def from_rollups(ids: list[str]) -> dict[str, list[tuple[str, float]]]:
            if self.rollups is None:
                return {}
            out = {}
            for c in ids:
                top = self.rollups.top_sellers(c, s.bestsellers_per_cat)
                if top:
                    out[c] = top
            return out

        return self._zsets(
            "bestsellers", cats, s.bestsellers_per_cat, self.keys.bestsellers, from_rollups, s.bestsellers_ttl_s
        )

    def user_keys(self, user_id: str) -> tuple[list[str], int]:
        """The two keys of a user's history and how many members to read (for async callers)."""
        s = self.settings
        return [self.keys.recent_views(user_id), self.keys.recent_cats(user_id)], max(s.recent_views_n, s.recent_cats_n)

    def _user(self, user_id: str | None, fetched: list | None = None) -> tuple[list, list]:
        """The user's recent views and categories; ``fetched`` is what an async caller already read."""
        if user_id is None:
            return [], []
        s = self.settings
        if fetched is None:
            fetched = self._ztop_many(*self.user_keys(user_id))
        views, cats = fetched
        self.metrics.lookup("user", "redis" if views or cats else "absent")
        return views[: s.recent_views_n], cats[: s.recent_cats_n]

    # ------------------------------------------------------------------ staleness
    def _check_stale(self, rows: dict[str, int]) -> list[str]:
        limit = self.clock() - self.settings.stale_after_days * 86400.0
        stale = []
        ts = self.table.inference_ts
        for mid, r in rows.items():
            t = ts[r]
            if t is not None and t < limit:
                stale.append(mid)
        for mid in stale:
            self.metrics.stale_serves.inc()
            if mid not in self._stale_seen:
                self._stale_seen.add(mid)
                self.metrics.stale_masters.set(len(self._stale_seen))
                age = (self.clock() - ts[rows[mid]]) / 86400.0
                log.warning("master %s served from a %.0f-day-old inference; queued for refresh", mid, age)
                self.refresh_queue.append(mid)
                try:
                    self.cache.zadd(self.keys.refresh_queue, {mid: self.clock()})
                except Exception:  # a failed enqueue must not fail the request
                    log.exception("could not queue master %s for refresh", mid)
        return stale

    # ------------------------------------------------------------------ endpoints
    def related(self, q: RelatedQuery, user_history: list | None = None, *, settings: RecsSettings | None = None) -> RecsResult:
        """``user_history``: the user's two zsets when the caller read them already (async path).
        ``settings``: an A/B variant's settings for this request (weights, decay, widget rules)."""
        t0 = time.perf_counter()
        s = settings or self.settings
        fallbacks: list[str] = []
        seeds: dict[str, float] = {}
        if q.master_id is not None:
            seeds[q.master_id] = 1.0
        views, rcats = self._user(q.user_id, user_history)
        for j, (mid, _) in enumerate(views):
            seeds.setdefault(mid, s.recent_view_weight * s.recent_view_decay**j)
        if q.user_id is not None and not views and not rcats:
            fallbacks.append("no_history")
        rowlist = self.table.rows(list(seeds))
        known = {m: r for m, r in zip(seeds, rowlist) if self.table.known[r]}
        if q.master_id is not None and q.master_id not in known:
            fallbacks.append("unknown_master")
        stale = self._check_stale({m: known[m] for m in known})
        sem = self._semantic(known)
        cat = self.table.cat
        own, interest = seed_categories(((cat[known[m]], seeds[m]) for m in known), rcats, s)
        cov = self._coview(set(own) | set(interest))
        cov_n = {c: self._normed("co_view", c, lst) for c, lst in cov.items()}
        expanded = related_categories(own, interest, cov_n, s, normalise=False)
        bs = self._bestsellers(set(own) | set(interest) | set(expanded))
        parts = {
            "semantic": [(*self._compiled("semantic", m, sem[m], False), w) for m, w in seeds.items() if m in sem],
            "best_seller": [(*self._compiled("bestsellers", c, bs[c], True), w) for c, w in own.items()],
            "co_view": [(*self._compiled("bestsellers", c, bs[c], True), w) for c, w in expanded.items()],
            "user_interest": [(*self._compiled("bestsellers", c, bs[c], True), w) for c, w in interest.items()],
        }
        exclude = np.array(rowlist, dtype=np.int64)
        cands = merge_rows(parts, exclude, "related", s)
        if not len(cands):
            fallbacks.append("global_bestsellers")
            cands = self._global(exclude)
        for r in fallbacks:
            self.metrics.fallbacks.labels("related", r).inc()
        items = self._rerank(top_rows(cands, s.candidates_max, self.table.master_ids), q.widget, q.k, settings=settings)
        self._latency["related"].observe(time.perf_counter() - t0)
        return RecsResult(None, tuple(fallbacks), tuple(stale), q.widget, item_dicts=items)

    def _global(self, exclude: np.ndarray) -> RowMerged:
        lst = self._bestsellers([ALL_CATEGORIES])[ALL_CATEGORIES]
        part = (*self._compiled("bestsellers", ALL_CATEGORIES, lst, True), 1.0)
        return merge_rows({"best_seller": [part]}, exclude, "bestsellers", self.settings)

    def _normed(self, family: str, ident: str, lst: list[tuple[str, float]]) -> list[tuple[str, float]]:
        """``normalised(lst)``, memoised per list object (a local copy is normalised once)."""
        key = (family, ident)
        e = self._norm.get(key)
        if e is not None and e[0] is lst:
            return e[1]
        out = normalised(lst)
        if self.local_ttl > 0 or self._family_ttl.get(family, 0) > 0:
            self._norm[key] = (lst, out)
            if len(self._norm) > 200_000:
                self._norm.clear()
        return out

    def _compiled(self, family: str, ident: str, lst: list[tuple[str, float]], norm: bool) -> tuple[np.ndarray, np.ndarray]:
        """A list as (table rows, scores), normalised by its top when ``norm``; memoised per list object."""
        key = (family, ident)
        e = self._comp.get(key)
        if e is not None and e[0] is lst:
            return e[1], e[2]
        pairs = normalised(lst) if norm else lst
        rows = np.array(self.table.rows([m for m, _ in pairs]), dtype=np.int64)
        scores = np.array([v for _, v in pairs], dtype=np.float64)
        if self.local_ttl > 0 or self._family_ttl.get(family, 0) > 0:
            self._comp[key] = (lst, rows, scores)
            if len(self._comp) > 200_000:
                self._comp.clear()
        return rows, scores

    def bestsellers(self, q: BestsellersQuery, user_history: list | None = None, *, settings: RecsSettings | None = None) -> RecsResult:
        t0 = time.perf_counter()
        s = settings or self.settings
        fallbacks: list[str] = []
        _, rcats = self._user(q.user_id, user_history)
        cur_cov = self._coview([q.category_id])[q.category_id] if q.category_id else []
        weights = bestseller_cat_weights(q.category_id, cur_cov, rcats, s)
        bs = self._bestsellers(weights) if weights else {}
        if q.category_id is not None and not bs.get(q.category_id):
            fallbacks.append("unknown_category")
        parts: dict[str, list] = {}
        for c, (w, sig) in weights.items():
            parts.setdefault(sig, []).append((*self._compiled("bestsellers", c, bs[c], True), w))
        none = np.zeros(0, dtype=np.int64)
        cands = merge_rows(parts, none, "bestsellers", s)
        if not len(cands):
            fallbacks.append("global_bestsellers")
            cands = self._global(none)
        for r in fallbacks:
            self.metrics.fallbacks.labels("bestsellers", r).inc()
        items = self._rerank(top_rows(cands, s.candidates_max, self.table.master_ids), q.widget, q.k, settings=settings)
        self._latency["bestsellers"].observe(time.perf_counter() - t0)
        return RecsResult(None, tuple(fallbacks), (), q.widget, item_dicts=items)

    # ------------------------------------------------------------------ rerank (vectorised)
    def rerank(self, cands: RowMerged, widget: str, k: int, *, refresh: bool = True) -> list[Item]:
        """Best pid per master from the local columns, the widget's rule, top ``k``.

        ``refresh`` re-reads rows older than the local TTL first (all rows without local copies)."""
        return [Item.from_json(d) for d in self._rerank(cands, widget, k, refresh=refresh)]

    def _rerank(self, cands: RowMerged, widget: str, k: int, *, refresh: bool = True, settings: RecsSettings | None = None) -> list[dict]:
        """:meth:`rerank` as the items' JSON form (:meth:`Item.to_json`), built straight from the
        columns: no per-item Candidate / Item objects on the serving path."""
        if not len(cands):
            return []
        rule: WidgetRule = (settings or self.settings).widgets[widget]
        t = self.table
        rows = cands.rows
        if refresh:
            t.refresh(rows)
        base = cands.base
        terms = t.wterms.get(widget) if rule is self.settings.widgets.get(widget) else None
        if terms is not None:  # precomputed per row as rows load (same numbers as below)
            final = base * terms[0][rows] + terms[1][rows]
            keep = terms[2][rows]
            promo = terms[3][rows]
        else:
            final, keep, promo = self._rule_terms(rows, base, rule)
        return self._top_items(cands, rows, final, keep, promo, k)

    def _rule_terms(self, rows: np.ndarray, base: np.ndarray, rule: WidgetRule):
        """``(final, keep, promo)`` of candidate rows from the table's raw columns."""
        t = self.table
        has = t.has_pid[rows]
        boost = t.boost[rows]
        flash = t.flash[rows] & has
        bid = t.ad_bid[rows]
        keep = np.ones(len(rows), dtype=bool)
        if rule.drop_out_of_stock:
            keep &= ~(t.oos[rows] & has)
        if rule.min_rating > 0:
            rating = t.rating[rows]
            keep &= ~has | (~np.isnan(rating) & (rating >= rule.min_rating))
        mult = np.ones(len(rows))
        boosted = has & (boost != 1.0) if rule.boost_power else np.zeros(len(rows), dtype=bool)
        if rule.boost_power == 1.0:
            mult = np.where(boosted, np.maximum(boost, 0.0), mult)
        elif rule.boost_power:
            mult = np.where(boosted, np.maximum(boost, 0.0) ** rule.boost_power, mult)
        mult = np.where(flash, mult * rule.flash_sale_mult, mult)
        add = np.where(flash, 0.0 + rule.flash_sale_add, 0.0)
        bidded = has & (bid != 0.0) if rule.ad_bid_weight else np.zeros(len(rows), dtype=bool)
        if rule.ad_bid_weight:
            add = np.where(bidded, add + rule.ad_bid_weight * bid, add)
        final = base * mult + add
        promo = boosted | bidded | (flash & ((rule.flash_sale_mult != 1.0) | (rule.flash_sale_add != 0.0)))
        return final, keep, promo

    def _top_items(self, cands: RowMerged, rows, final, keep, promo, k: int) -> list[dict]:
        t = self.table
        mids = t.master_ids
        base = cands.base
        idx = np.flatnonzero(keep)
        if len(idx) > k:
            f = final[idx]
            kth = np.partition(-f, k - 1)[k - 1]
            idx = idx[-f <= kth]  # everything tied with the k-th too
        fl = final[idx].tolist()
        rl = rows[idx].tolist()
        order = sorted(range(len(rl)), key=lambda j: (-fl[j], mids[rl[j]]))[:k]
        sel = idx[order]
        g = cands.signals
        cols = [(name, g[name][sel].tolist()) for name in SIGNAL_NAMES]
        base_l = base[sel].tolist()
        promo_l = promo[sel].tolist()
        best, cat = t.best, t.cat
        out = []
        for n, j in enumerate(order):
            r = rl[j]
            scores = {"base": base_l[n]}
            signals = []
            for name, col in cols:
                v = col[n]
                if v > 0:
                    signals.append(name)
                    scores[name] = v
            a = best[r]
            if a is None:
                out.append({"master_id": mids[r], "pid": None, "category": cat[r], "score": fl[j],
                            "signals": signals, "scores": scores, "price": None, "rating": None})  # fmt: skip
                continue
            if promo_l[n]:
                add_promo(signals, scores, a)
            out.append({"master_id": mids[r], "pid": a.pid, "category": cat[r], "score": fl[j],
                        "signals": signals, "scores": scores, "price": a.price, "rating": a.rating})  # fmt: skip
        return out

    def warm(self, *, masters: int = 0) -> dict[str, int]:
        """Fill the local copies ahead of traffic: every category's co-views and best-sellers, then
        the rows of up to ``masters`` masters (best-sellers first, then any hot master in Redis)."""
        k = self.keys
        plen = len(k.bestsellers(""))
        cats = [key[plen:] for key in self.cache.scan(k.bestsellers(""))]
        bs = self._bestsellers(cats)
        cov = self._coview([c for c in cats if c != ALL_CATEGORIES])
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

    # ------------------------------------------------------------------ misc
    def stale_masters_seen(self) -> set[str]:
        return set(self._stale_seen)

    @staticmethod
    def inference_age_days(ts: datetime, now: float) -> float:
        return (now - ts.timestamp()) / 86400.0
