"""The replica's local copies: the sorted-set families (:class:`ListCache`) and the columns of
master / pid attributes (:class:`MasterTable`, what rerank reads).

**Lists.** Replica-local copies of the sorted-set families (semantic, co-view, best-sellers).

Each id's list: the local copy; else Redis; else a fallback (the dimension / rollup store, written
back to Redis). An expired copy is still served while the background refresher runs: it is queued
once (its expiry pushed a TTL ahead) and re-read off the request path. Each list is also kept
compiled (table rows + normalised scores as numpy arrays), memoised per list object.

While the hot cache is down (its calls fail fast through the :class:`~hotpath.recs.health.CacheGate`)
copies are served whatever their age, misses go to the fallback (no write-back), and nothing empty is
kept, so the first read after Redis returns fills it.

**Master table.** A pipelined HGETALL of 1,000 hashes costs milliseconds of client-side Python, so the serving path
reads attributes from numpy columns indexed by a master's row instead: each master's *best pid*
(see :func:`hotpath.recs.ranking.best_pid`) with its price, rating and promo fields. Rows are loaded
on first use in two pipelined round trips (``master:meta`` + ``master:pids``, then ``pid:attr`` +
``promo`` of its pids), falling back to the dimension store and writing the hot keys back.

Freshness: writers announce a change on the invalidation channel (``pid:{pid}|{t}`` or
``master:{mid}|{t}``, ``t`` the publish time); the subscription thread reloads that master at once,
and every row is re-read at least every ``local_master_ttl_s`` in case a message was lost.
With ``local_master_ttl_s = 0`` nothing is kept: every call re-reads Redis (the baseline shape).
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from uuid import UUID

import numpy as np

from hotpath.errors import ServiceUnavailable
from hotpath.recs.health import RecsMetrics
from hotpath.recs.model import Keys, PidAttrs
from hotpath.recs.ranking import best_pid, normalised, widget_terms
from hotpath.recs.settings import RecsSettings, WidgetRule
from hotpath.stores.base import DimensionStore, HotCache

__all__ = ["ListCache", "FAMILIES", "MasterTable", "parse_attrs", "attr_fields", "promo_fields", "DISPLAY_FIELDS"]


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


# ---------------------------------------------------------------------- the master table
NAN = math.nan
DISPLAY_FIELDS = ("title", "image_url", "url")
"""Fields of ``master:meta`` an item carries as they are (when the catalog has them)."""


def _f(v: str | None, default: float | None = None) -> float | None:
    if v is None or v == "":
        return default
    try:
        x = float(v)
    except ValueError:
        return default
    return default if math.isnan(x) else x


def parse_attrs(pid: str, attr: dict[str, str], promo: dict[str, str], meta_json: str | None) -> PidAttrs:
    """A pid's attributes from its hashes; ``pid:attr`` missing falls back to the mapping's metadata."""
    if not attr and meta_json:
        try:
            m = json.loads(meta_json)
            attr = {k: str(v) for k, v in m.items() if v is not None}
        except (ValueError, AttributeError):
            attr = {}
    return PidAttrs(
        pid=pid,
        price=_f(attr.get("price")),
        rating=_f(attr.get("rating")),
        boost=_f(promo.get("boost"), 1.0),
        out_of_stock=promo.get("out_of_stock", "0") in ("1", "true", "True"),
        ad_bid=_f(promo.get("ad_bid"), 0.0),
        flash_sale=promo.get("flash_sale", "0") in ("1", "true", "True"),
    )


def attr_fields(price: float | None, rating: float | None, master: str) -> dict[str, str]:
    d = {"master": master}
    if price is not None and not math.isnan(price):
        d["price"] = repr(float(price))
    if rating is not None and not math.isnan(rating):
        d["rating"] = repr(float(rating))
    return d


def promo_fields(boost: float = 1.0, out_of_stock: bool = False, ad_bid: float = 0.0, flash_sale: bool = False) -> dict:
    return {
        "boost": repr(float(boost)),
        "out_of_stock": "1" if out_of_stock else "0",
        "ad_bid": repr(float(ad_bid)),
        "flash_sale": "1" if flash_sale else "0",
    }


class MasterTable:
    """Columns by master row: category, inference time, best pid and its attributes."""

    refresh_batch = 250
    """Rows the background refresher re-reads per pipelined load (~40 ms of CPU)."""
    refresh_pause_s = 0.02
    """Pause between two refresher batches, so a backlog never holds the GIL for long."""

    def __init__(
        self,
        cache: HotCache,
        store: DimensionStore | None,
        keys: Keys,
        *,
        ttl_s: float,
        write_back_ttl_s: float | None = None,
        on_lookup: Callable[[str, str, int], None] = lambda f, o, n: None,
        clock: Callable[[], float] = time.monotonic,
        widgets: Mapping[str, WidgetRule] | None = None,
        hgetall_many: Callable[[Sequence[str]], list[dict[str, str]]] | None = None,
    ) -> None:
        self.cache, self.store, self.keys = cache, store, keys
        self._hgetall_many = hgetall_many or cache.hgetall_many
        self.widgets: dict[str, WidgetRule] = dict(widgets or {})
        self.ttl_s = ttl_s
        self.write_back_ttl_s = write_back_ttl_s
        self._on_lookup = on_lookup
        self._clock = clock
        self._lock = threading.RLock()
        self._row: dict[str, int] = {}
        self.master_ids: list[str] = []
        self.cat: list[str | None] = []
        self.inference_ts: list[float | None] = []
        self.known: list[bool] = []
        self.pids: list[list[PidAttrs]] = []
        self.best: list[PidAttrs | None] = []
        self.extra: list[dict[str, str] | None] = []
        """Per row, what a front end renders beside the ids (``title``, ``image_url``, ``url``: those
        of :data:`DISPLAY_FIELDS` the master's metadata has), or None."""
        self.loaded_at: list[float] = []
        self._pid_master: dict[str, str] = {}
        self._stale: set[str] = set()
        self._wake = threading.Event()
        self._refresher: threading.Thread | None = None
        self._stopping = False
        self._jitter = random.Random(0x5EED)
        cap = 1024
        self.price = np.full(cap, NAN)
        self.rating = np.full(cap, NAN)
        self.boost = np.ones(cap)
        self.oos = np.zeros(cap, dtype=bool)
        self.ad_bid = np.zeros(cap)
        self.flash = np.zeros(cap, dtype=bool)
        self.has_pid = np.zeros(cap, dtype=bool)
        self._loaded_at_np = np.zeros(cap)
        self.wterms: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {
            w: (np.ones(cap), np.zeros(cap), np.ones(cap, dtype=bool), np.zeros(cap, dtype=bool)) for w in self.widgets
        }
        """Per widget, by row: the best pid's ``(mult, add, keep, promo)`` under the widget's rule, so
        ``final = base * mult + add`` (see :func:`hotpath.recs.ranking.widget_terms`); kept current as rows are set."""

    # ------------------------------------------------------------------ rows
    def __len__(self) -> int:
        return len(self.master_ids)

    def _grow(self, n: int) -> None:
        cap = len(self.price)
        if n <= cap:
            return
        new = max(n, cap * 2)
        for name, fill in (("price", NAN), ("rating", NAN), ("boost", 1.0), ("ad_bid", 0.0), ("_loaded_at_np", 0.0)):
            a = np.full(new, fill)
            a[:cap] = getattr(self, name)
            setattr(self, name, a)
        for name in ("oos", "flash", "has_pid"):
            a = np.zeros(new, dtype=bool)
            a[:cap] = getattr(self, name)
            setattr(self, name, a)
        for w, old in list(self.wterms.items()):
            grown = (np.ones(new), np.zeros(new), np.ones(new, dtype=bool), np.zeros(new, dtype=bool))
            for a, o in zip(grown, old):
                a[:cap] = o
            self.wterms[w] = grown

    def _set(self, mid: str, known: bool, cat: str | None, ts: float | None, pids: list[PidAttrs],
             extra: dict[str, str] | None = None) -> int:  # fmt: skip
        with self._lock:
            r = self._row.get(mid)
            if r is None:
                r = len(self.master_ids)
                self._grow(r + 1)
                self._row[mid] = r
                self.master_ids.append(mid)
                self.cat.append(cat)
                self.inference_ts.append(ts)
                self.known.append(known)
                self.pids.append(pids)
                self.best.append(None)
                self.extra.append(extra)
                self.loaded_at.append(0.0)
            else:
                self.cat[r], self.inference_ts[r], self.known[r], self.pids[r] = cat, ts, known, pids
                self.extra[r] = extra
            for p in pids:
                self._pid_master[p.pid] = mid
            self._set_best(r)
            # back-dated by up to half a TTL: rows loaded together (warm-up) expire spread out, so
            # their re-reads form a steady trickle instead of a burst every TTL
            t = self._clock() - (self._jitter.random() * 0.5 * self.ttl_s if self.ttl_s > 0 else 0.0)
            self.loaded_at[r] = self._loaded_at_np[r] = t
            return r

    def _set_best(self, r: int) -> None:
        b = best_pid(self.pids[r])
        self.best[r] = b
        if b is None:
            self.has_pid[r] = False
            self.price[r], self.rating[r], self.boost[r] = NAN, NAN, 1.0
            self.oos[r], self.ad_bid[r], self.flash[r] = False, 0.0, False
        else:
            self.has_pid[r] = True
            self.price[r] = NAN if b.price is None else b.price
            self.rating[r] = NAN if b.rating is None else b.rating
            self.boost[r], self.oos[r], self.ad_bid[r], self.flash[r] = b.boost, b.out_of_stock, b.ad_bid, b.flash_sale
        for w, rule in self.widgets.items():
            cols = self.wterms[w]
            cols[0][r], cols[1][r], cols[2][r], cols[3][r] = widget_terms(b, rule)

    def rows(self, mids: Sequence[str]) -> list[int]:
        """Rows of ``mids``: missing ones are loaded now; expired ones are re-read now, or in the
        background (served meanwhile) once :meth:`start_refresher` runs."""
        if self.ttl_s > 0:
            get = self._row.get
            rows = [get(m) for m in mids]
            if None not in rows:
                self.refresh(np.array(rows, dtype=np.int64))
                return rows  # type: ignore[return-value]
            now = self._clock()
            need = [m for m, r in zip(mids, rows) if r is None or now - self.loaded_at[r] > self.ttl_s]
            self._on_lookup("master", "local", len(mids) - len(need))
        else:
            need = list(dict.fromkeys(mids))
        if need:
            self.load(need)
        row = self._row
        return [row[m] for m in mids]

    def refresh(self, rows: np.ndarray) -> None:
        """Re-read rows whose local copy is older than the TTL (all of them when the TTL is 0)."""
        if self.ttl_s > 0:
            old = self._loaded_at_np[rows] < self._clock() - self.ttl_s
            n_old = int(old.sum())
            self._on_lookup("master", "local", len(rows) - n_old)
            if not n_old:
                return
            rows = rows[old]
        ids = self.master_ids
        mids = list(dict.fromkeys(ids[int(r)] for r in rows))
        if self._refresher is not None and self.ttl_s > 0:
            self._loaded_at_np[rows] = self._clock()  # queued once; pub/sub keeps it fresh meanwhile
            with self._lock:
                self._stale.update(mids)
            self._wake.set()
            return
        self.load(mids)

    def start_refresher(self) -> None:
        """Re-read expired rows on a background thread instead of on the request path."""
        if self._refresher is None and self.ttl_s > 0:
            self._refresher = threading.Thread(target=self._refresh_loop, name="recs-table-refresh", daemon=True)
            self._refresher.start()

    def stop_refresher(self) -> None:
        self._stopping = True
        self._wake.set()

    def _refresh_loop(self) -> None:
        while not self._stopping:
            self._wake.wait(1.0)
            self._wake.clear()
            while self._stale and not self._stopping:
                with self._lock:
                    batch = [self._stale.pop() for _ in range(min(self.refresh_batch, len(self._stale)))]
                try:
                    self.load(batch)
                except Exception:  # a control loop logs a failing step and goes on
                    log.exception("background refresh of %d master rows failed", len(batch))
                    time.sleep(1.0)
                if self._stale:
                    time.sleep(self.refresh_pause_s)  # paced: the serving thread gets the GIL back

    # ------------------------------------------------------------------ loading
    def load(self, mids: Sequence[str]) -> None:
        """(Re)load rows: two pipelined reads from the hot cache, the dimension store for what it
        lacks (written back). With the cache down (:class:`ServiceUnavailable`) every row comes from
        the store without promo fields, and rows already held are kept as they are."""
        k = self.keys
        down = False
        try:
            hashes = self._hgetall_many([k.meta(m) for m in mids] + [k.pids(m) for m in mids])
        except ServiceUnavailable:
            down = True
            mids = [m for m in mids if m not in self._row]
            hashes = [{} for _ in range(2 * len(mids))]
        n = len(mids)
        metas, pidmaps = hashes[:n], hashes[n:]
        from_store: list[str] = []
        for m, meta, pm in zip(mids, metas, pidmaps):
            if not meta or not pm:
                from_store.append(m)
        if not down:
            self._on_lookup("master", "redis", n - len(from_store))
        if from_store:
            got = self._from_store(from_store, write_back=not down)
            pos = {m: i for i, m in enumerate(mids)}
            for m in from_store:
                metas[pos[m]], pidmaps[pos[m]] = got.get(m, ({}, {}))
        all_pids = [p for pm in pidmaps for p in pm]
        ph: list[dict[str, str]] = []
        if not down and all_pids:
            try:
                ph = self._hgetall_many([k.attr(p) for p in all_pids] + [k.promo(p) for p in all_pids])
            except ServiceUnavailable:
                ph = []
        np_ = len(all_pids)
        attrs = dict(zip(all_pids, ph[:np_]))
        promos = dict(zip(all_pids, ph[np_:]))
        for m, meta, pm in zip(mids, metas, pidmaps):
            pids = [parse_attrs(p, attrs.get(p, {}), promos.get(p, {}), pm[p]) for p in sorted(pm)]
            cat = meta.get("cat") or None
            ts = _f(meta.get("inference_ts"))
            extra = {f: meta[f] for f in DISPLAY_FIELDS if meta.get(f)} or None
            self._set(m, bool(meta or pm), cat, ts, pids, extra)

    def expire_all(self) -> int:
        """Queue every row for a background re-read (a resync after the cache came back); rows are
        served as they are meanwhile."""
        with self._lock:
            n = len(self.master_ids)
            self._loaded_at_np[:n] = self._clock()
            if self._refresher is not None:
                self._stale.update(self.master_ids)
            else:
                self._loaded_at_np[:n] = 0.0
                self.loaded_at = [0.0] * n
        self._wake.set()
        return n

    def _from_store(self, mids: list[str], *, write_back: bool = True) -> dict[str, tuple[dict, dict]]:
        if self.store is None:
            self._on_lookup("master", "absent", len(mids))
            return {}
        uuids = []
        for m in mids:
            try:
                uuids.append(UUID(m))
            except ValueError:
                pass
        rows = self.store.get_master_pids(uuids)
        sems = self.store.get_semantic(uuids)
        out: dict[str, tuple[dict, dict]] = {}
        k = self.keys
        for u in uuids:
            mp = rows.get(u)
            if mp is None:
                continue
            m = str(u)
            pm = {str(p): mp.metadata.get(p, "{}") for p in mp.pids}
            cat = title = None
            for meta_json in pm.values():
                try:
                    d = json.loads(meta_json)
                except ValueError:
                    continue
                cat, title = d.get("cat", cat), d.get("title", title)
                if cat:
                    break
            meta = {"cat": cat or "", "title": title or ""}
            sem = sems.get(u)
            if sem is not None:
                meta["inference_ts"] = repr(sem.inference_ts.timestamp())
            out[m] = (meta, pm)
            if write_back:
                try:
                    self.cache.hset(k.meta(m), meta, ttl_s=self.write_back_ttl_s)
                    if pm:
                        self.cache.hset(k.pids(m), pm, ttl_s=self.write_back_ttl_s)
                except ServiceUnavailable:
                    write_back = False
        self._on_lookup("master", "store", len(out))
        self._on_lookup("master", "absent", len(mids) - len(out))
        return out

    # ------------------------------------------------------------------ invalidation
    def invalidate(self, message: str) -> float | None:
        """Apply one invalidation message; returns its publish time when it carried one."""
        body, _, t = message.partition("|")
        kind, _, ident = body.partition(":")
        mid = self._pid_master.get(ident) if kind == "pid" else ident if kind == "master" else None
        if mid is not None and mid in self._row:
            self.load([mid])
        try:
            return float(t) if t else None
        except ValueError:
            return None
