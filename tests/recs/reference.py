"""Brute-force reference of both endpoints, computed straight from a generated :class:`Catalog`.

No caches, no heaps, no pruning shortcuts: every master of the catalog is scored by the definition
of each signal, everything is sorted in full. Tests compare the service (Redis, stores, local
copies, vectorised rerank) against this on the same data: same items, same order.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Iterable, Mapping, Sequence

from hotpath.recs.catalog import Catalog, master_uuid, pid_uuid
from hotpath.recs.model import ALL_CATEGORIES
from hotpath.recs.model import BestsellersQuery, Candidate, Item, PidAttrs, RelatedQuery
from hotpath.recs.ranking import (
    add_promo,
    best_pid,
    bestseller_cat_weights,
    normalised,
    related_categories,
    seed_categories,
    widget_terms,
)
from hotpath.recs.settings import RecsSettings


# ----------------------------------------------------------------------------- the merge by definition
def base_score(c: Candidate, settings: RecsSettings) -> float:
    cat = max(c.best_seller, c.co_view, c.user_interest)
    return settings.semantic_weight * c.semantic + settings.coview_weight * cat


def _max_into(d: dict[str, float], pairs: Iterable[tuple[str, float]], w: float, skip: Mapping[str, float]) -> None:
    get = d.get
    for mid, s in pairs:
        v = w * s
        if v > get(mid, 0.0) and mid not in skip:
            d[mid] = v


class Merged:
    """Merged candidates as columns: master ids, base scores, and each signal's values by master."""

    __slots__ = ("mids", "base", "signals")

    def __init__(self, mids: list[str], base: list[float], signals: dict[str, dict[str, float]]) -> None:
        self.mids, self.base, self.signals = mids, base, signals

    def __len__(self) -> int:
        return len(self.mids)

    def candidate(self, i: int) -> Candidate:
        m = self.mids[i]
        g = self.signals
        c = Candidate(
            m,
            g["semantic"].get(m, 0.0),
            g["best_seller"].get(m, 0.0),
            g["co_view"].get(m, 0.0),
            g["user_interest"].get(m, 0.0),
        )
        c.base = self.base[i]
        return c

    def candidates(self) -> list[Candidate]:
        return [self.candidate(i) for i in range(len(self.mids))]

    def without(self, exclude: Iterable[str]) -> "Merged":
        ex = set(exclude)
        keep = [i for i, m in enumerate(self.mids) if m not in ex]
        return Merged([self.mids[i] for i in keep], [self.base[i] for i in keep], self.signals)


def _merged(sem, own, cov, intr, base_fn) -> Merged:
    mids = list(set(sem).union(own, cov, intr))
    sg, og, cg, ig = sem.get, own.get, cov.get, intr.get
    base = [base_fn(sg(m, 0.0), max(og(m, 0.0), cg(m, 0.0), ig(m, 0.0))) for m in mids]
    return Merged(mids, base, {"semantic": sem, "best_seller": own, "co_view": cov, "user_interest": intr})


def gather_related(
    seeds: Mapping[str, float],
    semantic: Mapping[str, Sequence[tuple[str, float]]],
    own_cats: Mapping[str, float],
    interest_cats: Mapping[str, float],
    expanded_cats: Mapping[str, float],
    bestsellers: Mapping[str, Sequence[tuple[str, float]]],
    settings: RecsSettings,
    *,
    normalise: bool = True,
) -> Merged:
    """Merge the signals into one candidate per master (dedupe by master), seeds excluded.

    ``semantic``: a seed's related masters with similarity; ``bestsellers``: a category's top
    sellers with sales (normalised here per category, unless the caller passes them normalised
    already with ``normalise=False``). Each signal keeps its best (max) value;
    ``base = semantic_weight * semantic + coview_weight * max(category signals)``.
    """
    sem: dict[str, float] = {}
    for seed, w in seeds.items():
        _max_into(sem, semantic.get(seed, ()), w, seeds)
    norm = normalised if normalise else lambda pairs: pairs
    per_signal = []
    for cats in (own_cats, expanded_cats, interest_cats):
        d: dict[str, float] = {}
        for cat, w in cats.items():
            _max_into(d, norm(bestsellers.get(cat, ())), w, seeds)
        per_signal.append(d)
    own, cov, intr = per_signal
    sw, cw = settings.semantic_weight, settings.coview_weight
    return _merged(sem, own, cov, intr, lambda s, c: sw * s + cw * c)


def gather_bestsellers(
    cat_weights: Mapping[str, tuple[float, str]],
    bestsellers: Mapping[str, Sequence[tuple[str, float]]],
    settings: RecsSettings,
) -> Merged:
    """Union of the categories' top sellers: each signal = max of category weight * normalised sales.

    ``cat_weights``: category -> (weight, signal name: best_seller / co_view / user_interest);
    ``base = max(signals)``.
    """
    per: dict[str, dict[str, float]] = {"best_seller": {}, "co_view": {}, "user_interest": {}}
    for cat, (w, attr) in cat_weights.items():
        _max_into(per[attr], normalised(bestsellers.get(cat, ())), w, {})
    return _merged({}, per["best_seller"], per["co_view"], per["user_interest"], lambda s, c: c)


def top_candidates(m: Merged, n: int) -> Merged:
    """The ``n`` best by (base desc, master id asc), via a heap (the design's top-1000 prune).

    Order is not kept (rerank sorts); with ``n`` or fewer candidates nothing is done.
    """
    if len(m) <= n:
        return m
    top = heapq.nsmallest(n, zip(m.base, m.mids), key=lambda bm: (-bm[0], bm[1]))
    return Merged([mid for _, mid in top], [b for b, _ in top], m.signals)


def make_item(c: Candidate, a: PidAttrs | None, category: str | None, final: float, promo: bool) -> Item:
    signals = []
    scores: dict[str, float] = {"base": c.base}
    for name in ("semantic", "best_seller", "co_view", "user_interest"):
        v = getattr(c, name)
        if v > 0:
            signals.append(name)
            scores[name] = v
    if promo and a is not None:
        add_promo(signals, scores, a)
    return Item(
        master_id=c.master_id,
        pid=a.pid if a else None,
        category=category,
        score=final,
        signals=tuple(signals),
        scores=scores,
        price=a.price if a else None,
        rating=a.rating if a else None,
    )


__all__ = ["Reference", "Merged", "gather_related", "gather_bestsellers", "top_candidates", "make_item"]


def _top(pairs, n):
    return sorted(pairs, key=lambda kv: (-kv[1], kv[0]))[:n]


class Reference:
    def __init__(self, cat: Catalog, settings: RecsSettings, promos: Mapping[str, PidAttrs] | None = None) -> None:
        self.cat, self.s = cat, settings
        self.promos = dict(promos or {})
        self._index = {master_uuid(i): i for i in range(cat.n_masters)}

    # ---------------------------------------------------------------- data by definition
    def pid_attrs(self, j: int) -> PidAttrs:
        pid = pid_uuid(j)
        if pid in self.promos:
            return self.promos[pid]
        c = self.cat
        nan = lambda x: None if math.isnan(x) else float(x)  # noqa: E731
        return PidAttrs(
            pid, nan(c.pid_price[j]), nan(c.pid_rating[j]), float(c.pid_boost[j]), bool(c.pid_oos[j]),
            float(c.pid_ad_bid[j]), bool(c.pid_flash[j]),
        )

    def category(self, mid: str) -> str | None:
        i = self._index.get(mid)
        return None if i is None else self.cat.cat_ids[int(self.cat.master_leaf[i])]

    def top_sellers(self, cat_id: str) -> list[tuple[str, float]]:
        c = self.cat
        if cat_id == ALL_CATEGORIES:
            idx = range(c.n_masters)
        else:
            try:
                leaf = c.cat_ids.index(cat_id)
            except ValueError:
                return []
            idx = range(int(c.leaf_start[leaf]), int(c.leaf_start[leaf + 1]))
        return _top(((master_uuid(i), float(c.sales[i])) for i in idx), self.s.bestsellers_per_cat)

    def coview(self, cat_id: str) -> list[tuple[str, float]]:
        try:
            leaf = self.cat.cat_ids.index(cat_id)
        except ValueError:
            return []
        return _top(((self.cat.cat_ids[d], s) for d, s in self.cat.coview_of(leaf)), self.s.coview_n)

    def user(self, uid: str | None) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        if uid is None or not uid.startswith("u") or not uid[1:].isdigit() or int(uid[1:]) >= len(self.cat.user_views):
            return [], []
        u = int(uid[1:])
        views = _top(((master_uuid(m), t) for m, t in self.cat.user_views[u]), self.s.recent_views_n)
        cats = _top(((self.cat.cat_ids[c], s) for c, s in self.cat.user_cats[u]), self.s.recent_cats_n)
        return views, cats

    # ---------------------------------------------------------------- scoring every master
    def _score_all(self, seeds, sem_w, cat_w_by_signal) -> dict[str, Candidate]:
        """Every master of the catalog scored by definition; those with a positive signal kept."""
        sem_of = {}
        for seed in sem_w:
            i = self._index[seed]
            sem_of[seed] = dict((master_uuid(d), s) for d, s in _top(
                ((d, s) for d, s in self.cat.semantic_of(i)), self.s.semantic_n))
        norm = {}
        for sig, cats in cat_w_by_signal.items():
            for cat in cats:
                norm[cat] = dict(normalised(self.top_sellers(cat)))
        out = {}
        for i in range(self.cat.n_masters):
            mid = master_uuid(i)
            if mid in seeds:
                continue
            c = Candidate(mid)
            c.semantic = max([sem_w[s] * sem_of[s][mid] for s in sem_w if mid in sem_of[s]] or [0.0])
            for sig, cats in cat_w_by_signal.items():
                v = max([w * norm[cat][mid] for cat, w in cats.items() if mid in norm[cat]] or [0.0])
                setattr(c, sig, v)
            if c.semantic > 0 or c.best_seller > 0 or c.co_view > 0 or c.user_interest > 0:
                out[mid] = c
        return out

    def _finish(self, cands: dict[str, Candidate], widget: str, k: int, bestsellers_mode: bool) -> list[Item]:
        s = self.s
        for c in cands.values():
            cat = max(c.best_seller, c.co_view, c.user_interest)
            c.base = cat if bestsellers_mode else s.semantic_weight * c.semantic + s.coview_weight * cat
        ranked = sorted(cands.values(), key=lambda c: (-c.base, c.master_id))[: s.candidates_max]
        rule = s.widgets[widget]
        scored = []
        for c in ranked:
            i = self._index[c.master_id]
            a = best_pid([self.pid_attrs(j) for j in self.cat.pids_of(i)])
            mult, add, keep, promo = widget_terms(a, rule)
            if not keep:
                continue
            f = c.base * mult + add
            scored.append((f, c, a, promo))
        scored.sort(key=lambda t: (-t[0], t[1].master_id))
        return [
            dataclasses.replace(make_item(c, a, self.category(c.master_id), f, promo),
                                title=self.cat.title(self._index[c.master_id]))  # fmt: skip
            for f, c, a, promo in scored[:k]
        ]

    # ---------------------------------------------------------------- endpoints
    def related(self, q: RelatedQuery) -> list[Item]:
        s = self.s
        seeds: dict[str, float] = {}
        if q.master_id is not None:
            seeds[q.master_id] = 1.0
        views, rcats = self.user(q.user_id)
        for j, (m, _) in enumerate(views):
            seeds.setdefault(m, s.recent_view_weight * s.recent_view_decay**j)
        known = {m: w for m, w in seeds.items() if m in self._index}
        own, interest = seed_categories(((self.category(m), w) for m, w in known.items()), rcats, s)
        cov = {c: self.coview(c) for c in set(own) | set(interest)}
        expanded = related_categories(own, interest, cov, s)
        cands = self._score_all(seeds, known, {"best_seller": own, "co_view": expanded, "user_interest": interest})
        if not cands:  # the global best-sellers, scored as the best-seller list scores them
            cands = self._score_all(seeds, {}, {"best_seller": {ALL_CATEGORIES: 1.0}})
            return self._finish(cands, q.widget, q.k, True)
        return self._finish(cands, q.widget, q.k, False)

    def bestsellers(self, q: BestsellersQuery) -> list[Item]:
        _, rcats = self.user(q.user_id)
        cur_cov = self.coview(q.category_id) if q.category_id else []
        weights = bestseller_cat_weights(q.category_id, cur_cov, rcats, self.s)
        by_sig: dict[str, dict[str, float]] = {"best_seller": {}, "co_view": {}, "user_interest": {}}
        for cat, (w, sig) in weights.items():
            by_sig[sig][cat] = w
        cands = self._score_all({}, {}, by_sig)
        if not cands:
            cands = self._score_all({}, {}, {"best_seller": {ALL_CATEGORIES: 1.0}})
        return self._finish(cands, q.widget, q.k, True)
