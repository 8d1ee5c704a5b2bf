"""Brute-force reference of both endpoints, computed straight from a generated :class:`Catalog`.

No caches, no heaps, no pruning shortcuts: every master of the catalog is scored by the definition
of each signal, everything is sorted in full. Tests compare the service (Redis, stores, local
copies, vectorised rerank) against this on the same data: same items, same order.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from hotpath.recs.catalog import Catalog, master_uuid, pid_uuid
from hotpath.recs.keys import ALL_CATEGORIES
from hotpath.recs.model import BestsellersQuery, Candidate, Item, PidAttrs, RelatedQuery
from hotpath.recs.ranking import (
    best_pid,
    bestseller_cat_weights,
    make_item,
    normalised,
    related_categories,
    seed_categories,
    widget_terms,
)
from hotpath.recs.settings import RecsSettings

__all__ = ["Reference"]


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
