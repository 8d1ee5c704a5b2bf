"""Bulk load of a generated :class:`~hotpath.recs.catalog.Catalog` into the three stores.

* dimension store (durable): all semantic rows, co-view rows, master -> pids (pid metadata JSON
  carries price, rating, category, title);
* rollup store: order events (a few per master, summing to its sales);
* hot cache: for *hot* masters (the most popular ``hot_fraction`` of each leaf) ``master:meta``,
  ``master:pids``, ``pid:attr``, ``promo`` and ``master:sem`` (TTL 24 h); for every leaf
  ``cat:co_view`` and ``cat:bestsellers`` (from the rollup store, plus ``_all``); users' recent
  views and categories.

Writes go in chunks; ``progress(stage, done, total)`` is called after each.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID, SafeUUID

import numpy as np

from hotpath.recs.catalog import Catalog, master_uuid, pid_uuid
from hotpath.recs.local import attr_fields, promo_fields
from hotpath.recs.model import ALL_CATEGORIES, Keys
from hotpath.recs.settings import RecsSettings
from hotpath.stores.base import CategoryCoView, DimensionStore, HotCache, MasterPids, SemanticRelations

__all__ = ["load_catalog", "LoadReport", "set_promo", "announce", "warm_hot_mirror", "Progress", "CHANGE_LOG_KEEP_S"]

Progress = Callable[[str, int, int], None]


@dataclass
class LoadReport:
    masters: int = 0
    pids: int = 0
    hot_masters: int = 0
    orders: int = 0
    users: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {**self.__dict__, "total_s": round(sum(self.seconds.values()), 2)}


def _num(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _meta_json(price: float, rating: float, leaf: str, title: str) -> str:
    """A pid's metadata JSON (what ``json.dumps`` gives, built directly: the loader's hot loop)."""
    p = "null" if price != price else repr(price)
    r = "null" if rating != rating else repr(rating)
    return f'{{"price": {p}, "rating": {r}, "cat": "{leaf}", "title": "{title}"}}'


_M_BASE = UUID(master_uuid(0)).int
_P_BASE = UUID(pid_uuid(0)).int


def _uuid_from_int(x: int) -> UUID:
    """``UUID(int=x)`` without re-validating (the value is built from a valid UUID): 10x faster."""
    u = object.__new__(UUID)
    object.__setattr__(u, "int", x)
    object.__setattr__(u, "is_safe", SafeUUID.unknown)
    return u


def master_uuid_obj(i: int) -> UUID:
    return _uuid_from_int(_M_BASE | i)


def pid_uuid_obj(j: int) -> UUID:
    return _uuid_from_int(_P_BASE | j)


def load_catalog(
    cat: Catalog,
    settings: RecsSettings,
    cache: HotCache,
    bulk,
    store: DimensionStore | None,
    rollups,
    *,
    hot_fraction: float = 1.0,
    chunk: int = 20_000,
    progress: Progress = lambda stage, done, total: None,
) -> LoadReport:
    keys = Keys(settings.key_prefix)
    rep = LoadReport(masters=cat.n_masters, pids=cat.n_pids, users=len(cat.user_views))
    M = cat.n_masters
    leaf_size = np.diff(cat.leaf_start)[cat.master_leaf]
    hot = cat.master_rank < np.maximum(1, np.ceil(leaf_size * hot_fraction))
    rep.hot_masters = int(hot.sum())
    cats = cat.cat_ids
    sem_lo = np.searchsorted(cat.sem_src, np.arange(M + 1))

    if store is not None:
        store.ensure_schema()
    if rollups is not None:
        rollups.ensure_schema()

    # ---------------------------------------------------------------- masters
    t0 = time.perf_counter()
    price_l, rating_l = cat.pid_price.tolist(), cat.pid_rating.tolist()
    boost_l, oos_l, bid_l, flash_l = (a.tolist() for a in (cat.pid_boost, cat.pid_oos, cat.pid_ad_bid, cat.pid_flash))
    leaf_l, ts_l, pstart_l = cat.master_leaf.tolist(), cat.inference_ts.tolist(), cat.pid_start.tolist()
    dst_l, score_l, semlo_l = cat.sem_dst.tolist(), cat.sem_score.tolist(), sem_lo.tolist()
    hot_l = hot.tolist()
    for lo in range(0, M, chunk):
        hi = min(M, lo + chunk)
        sem_rows, pid_rows = [], []
        for i in range(lo, hi):
            mid = master_uuid(i)
            leaf = cats[leaf_l[i]]
            title = cat.title(i)
            a, b = semlo_l[i], semlo_l[i + 1]
            dsts, scores = dst_l[a:b], score_l[a:b]
            ts = ts_l[i]
            p0, p1 = pstart_l[i], pstart_l[i + 1]
            pmeta = {pid_uuid(j): _meta_json(price_l[j], rating_l[j], leaf, title) for j in range(p0, p1)}
            if store is not None:
                sem_rows.append(
                    SemanticRelations(
                        master_uuid_obj(i),
                        {master_uuid_obj(d): v for d, v in zip(dsts, scores)},
                        datetime.fromtimestamp(ts, UTC),
                        "synthetic-v1",
                    )
                )
                pid_rows.append(
                    MasterPids(
                        master_uuid_obj(i),
                        [pid_uuid_obj(j) for j in range(p0, p1)],
                        {pid_uuid_obj(j): v for j, v in zip(range(p0, p1), pmeta.values())},
                    )
                )
            if hot_l[i]:
                rel = {master_uuid(d): v for d, v in zip(dsts, scores)}
                bulk.hash(keys.meta(mid), {"cat": leaf, "title": title, "inference_ts": str(ts)})
                bulk.hash(keys.pids(mid), pmeta)
                bulk.zset(keys.sem(mid), rel, settings.semantic_ttl_s)
                for j in range(p0, p1):
                    pid = pid_uuid(j)
                    bulk.hash(keys.attr(pid), attr_fields(price_l[j], rating_l[j], mid))
                    if boost_l[j] != 1.0 or oos_l[j] or bid_l[j] or flash_l[j]:
                        bulk.hash(keys.promo(pid), promo_fields(boost_l[j], oos_l[j], bid_l[j], flash_l[j]))
        if store is not None:
            store.put_semantic(sem_rows)
            store.put_master_pids(pid_rows)
        bulk.flush()
        progress("masters", hi, M)
    rep.seconds["masters"] = time.perf_counter() - t0

    # ---------------------------------------------------------------- co-views
    t0 = time.perf_counter()
    rows = []
    for leaf in range(cat.n_leaves):
        rel = {cats[d]: s for d, s in cat.coview_of(leaf)}
        rows.append(CategoryCoView(cats[leaf], rel))
        bulk.zset(keys.coview(cats[leaf]), rel)
    if store is not None:
        store.put_coview(rows)
    bulk.flush()
    progress("co_views", cat.n_leaves, cat.n_leaves)
    rep.seconds["co_views"] = time.perf_counter() - t0

    # ---------------------------------------------------------------- orders -> rollups -> best-sellers
    t0 = time.perf_counter()
    if rollups is not None:
        now_ms = int(cat.generated_at * 1000)
        parts = 3
        q = cat.sales // parts
        qty = np.stack([q, q, cat.sales - 2 * q], axis=1).ravel()
        midx = np.repeat(np.arange(M), parts)
        ok = qty > 0
        qty, midx = qty[ok], midx[ok]
        ts = now_ms - (np.arange(len(qty)) % 86_400) * 1000
        cat_arr = np.array(cats, dtype=object)
        for lo in range(0, len(qty), 1_000_000):
            hi = min(len(qty), lo + 1_000_000)
            ids = np.array([master_uuid(int(i)) for i in midx[lo:hi]], dtype=object)
            rollups.record_order_columns(ids, cat_arr[cat.master_leaf[midx[lo:hi]]], qty[lo:hi], ts[lo:hi])
            progress("orders", hi, len(qty))
        rep.orders = int(len(qty))
        tops = rollups.top_sellers_all(settings.bestsellers_per_cat)
        for c in cats + [ALL_CATEGORIES]:
            bulk.zset(keys.bestsellers(c), dict(tops.get(c, [])))
        bulk.flush()
    rep.seconds["bestsellers"] = time.perf_counter() - t0

    # ---------------------------------------------------------------- users
    t0 = time.perf_counter()
    for u, (views, ucats) in enumerate(zip(cat.user_views, cat.user_cats)):
        uid = f"u{u}"
        bulk.zset(keys.recent_views(uid), {master_uuid(m): t for m, t in views}, settings.user_recent_ttl_s)
        bulk.zset(keys.recent_cats(uid), {cats[c]: s for c, s in ucats}, settings.user_recent_ttl_s)
    bulk.flush()
    progress("users", len(cat.user_views), len(cat.user_views))
    rep.seconds["users"] = time.perf_counter() - t0
    return rep


def set_promo(
    cache: HotCache,
    settings: RecsSettings,
    pid: str,
    *,
    boost: float = 1.0,
    out_of_stock: bool = False,
    ad_bid: float = 0.0,
    flash_sale: bool = False,
) -> None:
    """Write a pid's promo hash and announce it (what a promo job does): see :func:`announce`."""
    keys = Keys(settings.key_prefix)
    cache.hset(keys.promo(pid), promo_fields(boost, out_of_stock, ad_bid, flash_sale))
    announce(cache, settings, f"pid:{pid}")


CHANGE_LOG_KEEP_S = 3600.0
"""How long ``recs:changes`` remembers a change (a replica resyncs from it after a lost subscription)."""


def announce(cache: HotCache, settings: RecsSettings, ident: str, *, now: float | None = None) -> None:
    """Tell the replicas that ``ident`` (``pid:{pid}`` or ``master:{mid}``) changed: record it in the
    change log (for a replica whose subscription was down) and publish it on the invalidation channel."""
    keys = Keys(settings.key_prefix)
    t = time.time() if now is None else now
    cache.zadd(keys.changes, {ident: t})
    cache.zprune_below(keys.changes, t - CHANGE_LOG_KEEP_S)  # what no resync will ask for
    cache.publish(keys.channel(settings.invalidation_channel), f"{ident}|{t!r}")


def warm_hot_mirror(
    settings: RecsSettings,
    bulk,
    store: DimensionStore,
    rollups,
    *,
    masters: list[str] | None = None,
    chunk: int = 2000,
    progress: Progress = lambda stage, done, total: None,
) -> dict[str, int]:
    """Rebuild the Redis hot mirror from the dimension and rollup stores (after Redis lost its data).

    Best-seller lists of every category (rollups), their co-view lists (dimension store), and for every
    master on a best-seller list plus ``masters``: ``master:meta``, ``master:pids``, ``pid:attr`` and the
    semantic relations (dimension store). Not rebuilt: promo fields (the ``promos`` topic is their
    source: replay it with ``hotpath recs promos --from-start``) and users' recent activity (the
    streaming jobs rewrite it)."""
    keys = Keys(settings.key_prefix)
    tops = rollups.top_sellers_all(settings.bestsellers_per_cat)
    for c, lst in tops.items():
        bulk.zset(keys.bestsellers(c), dict(lst))
    bulk.flush()
    cats = [c for c in tops if c != ALL_CATEGORIES]
    progress("bestsellers", len(tops), len(tops))
    cov = store.get_coview(cats)
    for c, row in cov.items():
        bulk.zset(keys.coview(c), {k: float(v) for k, v in row.related_cats.items()})
    bulk.flush()
    progress("co_views", len(cov), len(cats))
    mids = list(dict.fromkeys([m for lst in tops.values() for m, _ in lst] + list(masters or ())))
    done = 0
    for lo in range(0, len(mids), chunk):
        uuids = [UUID(m) for m in mids[lo : lo + chunk]]
        pid_rows = store.get_master_pids(uuids)
        sems = store.get_semantic(uuids)
        for u in uuids:
            mid = str(u)
            mp = pid_rows.get(u)
            if mp is not None:
                pmeta = {str(p): mp.metadata.get(p, "{}") for p in mp.pids}
                cat = title = None
                for p, text in pmeta.items():
                    try:
                        d = json.loads(text)
                    except ValueError:
                        d = {}
                    cat, title = cat or d.get("cat"), title or d.get("title")
                    bulk.hash(keys.attr(p), attr_fields(d.get("price"), d.get("rating"), mid))
                meta = {"cat": cat or "", "title": title or ""}
                sem = sems.get(u)
                if sem is not None:
                    meta["inference_ts"] = repr(sem.inference_ts.timestamp())
                bulk.hash(keys.meta(mid), meta)
                if pmeta:
                    bulk.hash(keys.pids(mid), pmeta)
                done += 1
            sem = sems.get(u)
            if sem is not None:
                bulk.zset(keys.sem(mid), {str(k): float(v) for k, v in sem.related_masters.items()}, settings.semantic_ttl_s)
        bulk.flush()
        progress("masters", min(lo + chunk, len(mids)), len(mids))
    return {"categories": len(tops), "co_views": len(cov), "masters": done}
