"""The scoring rules of the serving path, as plain functions over plain data.

The rules (category weights, expansion, ``widget_terms``, ``best_pid``, ``make_item``) are shared by
the service (:mod:`hotpath.recs.service`) and the brute-force test oracle (``tests/recs/reference.py``).
The merge is ``merge_rows`` over numpy columns (what the service runs); its readable definition
over dicts (``gather_related`` / ``gather_bestsellers``) lives with the test oracle, which holds them
equal, exactly, and scores every master of the catalog by the definitions.

Order everywhere: score descending, then master id ascending (ties are defined, never arbitrary).

**Rerank** (:class:`Reranker`). Rerank merged candidates by a widget's rule, straight from the master table's numpy columns.

Each row's ``(mult, add, keep, promo)`` under every widget is kept by the table as rows load
(:func:`hotpath.recs.ranking.widget_terms`, the one implementation of the rule), so a request does
``final = base * mult[rows] + add[rows]``, drops what ``keep`` refuses, and builds the top ``k``
items' JSON form (what :meth:`~hotpath.recs.model.Item.to_json` gives) without per-item objects.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from hotpath.recs.model import Item, PidAttrs
from hotpath.recs.settings import RecsSettings, WidgetRule

if TYPE_CHECKING:
    from hotpath.recs.local import MasterTable

__all__ = ["add_promo", "normalised", "seed_categories", "expand_categories", "limit_top", "related_categories", "bestseller_cat_weights", "best_pid", "pid_sort_key", "widget_terms", "RowMerged", "merge_rows", "top_rows", "Reranker"]


INF = math.inf


def normalised(pairs: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """Scores divided by the list's highest (a list of zeros or negatives gives zeros)."""
    if not pairs:
        return []
    top = max(s for _, s in pairs)
    if top <= 0:
        return [(m, 0.0) for m, _ in pairs]
    return [(m, s / top) for m, s in pairs]


def seed_categories(
    seed_master_cats: Iterable[tuple[str, float]],
    recent_cats: Sequence[tuple[str, float]],
    settings: RecsSettings,
) -> tuple[dict[str, float], dict[str, float]]:
    """The seed categories with weights: ``(own, interest)``.

    ``own``: each seed master's category at the seed's weight. ``interest``: the user's recent
    categories, normalised, times ``recent_cat_weight``.
    """
    own: dict[str, float] = {}
    for cat, w in seed_master_cats:
        if cat and w > own.get(cat, 0.0):
            own[cat] = w
    interest: dict[str, float] = {}
    for cat, s in normalised(recent_cats):
        w = settings.recent_cat_weight * s
        if w > interest.get(cat, 0.0):
            interest[cat] = w
    return own, interest


def expand_categories(
    seeds: Mapping[str, float],
    coview: Mapping[str, Sequence[tuple[str, float]]],
    settings: RecsSettings,
    *,
    normalise: bool = True,
) -> dict[str, float]:
    """Co-viewed categories of each seed: weight = seed weight * expand weight * normalised co-view.

    ``normalise=False``: the caller passes the co-view lists normalised already."""
    out: dict[str, float] = {}
    get = out.get
    ew_ = settings.coview_expand_weight
    for cat, w in seeds.items():
        lst = coview.get(cat, ())
        for rel, s in normalised(lst) if normalise else lst:
            ew = w * ew_ * s
            if ew > get(rel, 0.0):
                out[rel] = ew
    return out


def limit_top(weights: Mapping[str, float], n: int) -> dict[str, float]:
    """The ``n`` heaviest entries by (weight desc, key asc)."""
    if len(weights) <= n:
        return dict(weights)
    ks = sorted(weights)  # key asc, then a stable sort by weight desc (reverse keeps ties in order)
    ks.sort(key=weights.__getitem__, reverse=True)
    return {k: weights[k] for k in ks[:n]}


def related_categories(
    own: Mapping[str, float],
    interest: Mapping[str, float],
    coview: Mapping[str, Sequence[tuple[str, float]]],
    settings: RecsSettings,
    *,
    normalise: bool = True,
) -> dict[str, float]:
    """Co-view expansion of the seed categories (own and interest), cut to ``expanded_cats_max``."""
    seeds = dict(own)
    for cat, w in interest.items():
        if w > seeds.get(cat, 0.0):
            seeds[cat] = w
    return limit_top(expand_categories(seeds, coview, settings, normalise=normalise), settings.expanded_cats_max)


def bestseller_cat_weights(
    current: str | None,
    current_coview: Sequence[tuple[str, float]],
    recent_cats: Sequence[tuple[str, float]],
    settings: RecsSettings,
) -> dict[str, tuple[float, str]]:
    """Categories of the best-seller list: current (1.0), its co-viewed, the user's recent interests.

    A category reached twice keeps its heaviest role (the first listed on a tie).
    """
    out: dict[str, tuple[float, str]] = {}

    def put(cat: str, w: float, role: str) -> None:
        if w > 0 and w > out.get(cat, (0.0, ""))[0]:
            out[cat] = (w, role)

    if current is not None:
        put(current, 1.0, "best_seller")
        for cat, s in normalised(current_coview):
            put(cat, settings.coview_expand_weight * s, "co_view")
    for cat, s in normalised(recent_cats):
        put(cat, settings.recent_cat_weight * s, "user_interest")
    return out


def pid_sort_key(a: PidAttrs) -> tuple:
    """Best pid first: in stock, then highest rating, then lowest price, then pid."""
    return (
        a.out_of_stock,
        -(a.rating if a.rating is not None else -1.0),
        a.price if a.price is not None else INF,
        a.pid,
    )


def best_pid(pids: Sequence[PidAttrs]) -> PidAttrs | None:
    return min(pids, key=pid_sort_key) if pids else None


def widget_terms(a: PidAttrs | None, rule: WidgetRule) -> tuple[float, float, bool, bool]:
    """The widget rule, the one implementation: ``(mult, add, keep, promo)`` of a master whose
    best pid is ``a``, so ``final = base * mult + add``; ``keep`` False drops it; ``promo`` names
    the promo signal on the item. The service computes it once per row as rows load
    (:class:`hotpath.recs.local.MasterTable`); the test oracle calls it per candidate."""
    if a is None:
        return 1.0, 0.0, True, False  # no pid known: served without a pid rather than dropped
    keep = not (rule.drop_out_of_stock and a.out_of_stock)
    if rule.min_rating > 0 and (a.rating is None or not a.rating >= rule.min_rating):
        keep = False
    boosted = bool(rule.boost_power) and a.boost != 1.0
    mult = 1.0
    if boosted:
        mult = max(a.boost, 0.0) if rule.boost_power == 1.0 else max(a.boost, 0.0) ** rule.boost_power
    add = 0.0
    if a.flash_sale:
        mult = mult * rule.flash_sale_mult
        add = 0.0 + rule.flash_sale_add
    bidded = bool(rule.ad_bid_weight) and a.ad_bid != 0.0
    if bidded:
        add = add + rule.ad_bid_weight * a.ad_bid
    promo = boosted or bidded or (a.flash_sale and (rule.flash_sale_mult != 1.0 or rule.flash_sale_add != 0.0))
    return mult, add, keep, promo


def add_promo(signals: list[str], scores: dict[str, float], a: PidAttrs) -> None:
    """Name the ``promo`` signal and its figures (boost, ad bid, flash sale) on an item."""
    signals.append("promo")
    scores["boost"] = a.boost
    if a.ad_bid:
        scores["ad_bid"] = a.ad_bid
    if a.flash_sale:
        scores["flash_sale"] = 1.0


# --------------------------------------------------------------------------- vectorised merge
SIGNAL_NAMES = ("semantic", "best_seller", "co_view", "user_interest")

Part = tuple[np.ndarray, np.ndarray, float]
"""``(rows, scores, weight)``: a list's masters as table rows, their (normalised) scores, its weight."""


class RowMerged:
    """Merged candidates as numpy columns over table rows (what the service reranks).

    ``rows`` are unique; ``signals[name][i]`` is the signal's value for ``rows[i]`` (0 when absent).
    """

    __slots__ = ("rows", "base", "signals")

    def __init__(self, rows: np.ndarray, base: np.ndarray, signals: dict[str, np.ndarray]) -> None:
        self.rows, self.base, self.signals = rows, base, signals

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, idx: np.ndarray) -> "RowMerged":
        return RowMerged(self.rows[idx], self.base[idx], {k: v[idx] for k, v in self.signals.items()})


def merge_rows(parts: Mapping[str, Sequence[Part]], exclude: np.ndarray, base: str, settings: RecsSettings) -> RowMerged:
    """The vector form of :func:`gather_related` / :func:`gather_bestsellers` (same numbers).

    Each signal keeps, per row, the max of ``weight * score`` over its parts (positive values only);
    rows in ``exclude`` (the seeds) are dropped. ``base`` is ``"related"`` (semantic_weight *
    semantic + coview_weight * max(category signals)) or ``"bestsellers"`` (max of category signals).

    One pass over all parts at once (a few dozen numpy calls whatever the number of parts): rows,
    values and signal ids concatenated; dedupe by a sort (``np.unique``'s hash path costs ~5x more
    on a few thousand rows); one ``maximum.at`` into a (signal, row) matrix.
    """
    row_parts: list[np.ndarray] = []
    score_parts: list[np.ndarray] = []
    weights: list[float] = []
    lens: list[int] = []
    sids: list[int] = []
    for k, name in enumerate(SIGNAL_NAMES):
        for p in parts.get(name, ()):
            n = len(p[0])
            if n:
                row_parts.append(p[0])
                score_parts.append(p[1])
                weights.append(p[2])
                lens.append(n)
                sids.append(k)
    if not row_parts:
        z = np.zeros(0)
        return RowMerged(np.zeros(0, dtype=np.int64), z, {n: z for n in SIGNAL_NAMES})
    r = np.concatenate(row_parts)
    v = np.repeat(np.array(weights), lens) * np.concatenate(score_parts)
    sid = np.repeat(np.array(sids, dtype=np.int64), lens)
    keep_ = v > 0
    if len(exclude):
        ex = np.sort(exclude)
        pos = np.searchsorted(ex, r)
        np.minimum(pos, len(ex) - 1, out=pos)
        keep_ &= ex[pos] != r
    if not keep_.all():
        r, v, sid = r[keep_], v[keep_], sid[keep_]
    order = np.argsort(r, kind="stable")
    sr = r[order]
    first = np.empty(len(sr), dtype=bool)
    first[:1] = True
    np.not_equal(sr[1:], sr[:-1], out=first[1:])
    rows = sr[first]
    gid = np.cumsum(first) - 1
    out = np.zeros((len(SIGNAL_NAMES), len(rows)))
    np.maximum.at(out, (sid[order], gid), v[order])
    sig = {name: out[k] for k, name in enumerate(SIGNAL_NAMES)}
    cat = np.maximum(np.maximum(out[1], out[2]), out[3])
    if base == "related":
        b = settings.semantic_weight * out[0] + settings.coview_weight * cat
    else:
        b = cat
    return RowMerged(rows, b, sig)


def top_rows(m: RowMerged, n: int, master_ids: Sequence[str]) -> RowMerged:
    """The ``n`` best by (base desc, master id asc); nothing is done with ``n`` or fewer."""
    if len(m) <= n:
        return m
    kth = np.partition(-m.base, n - 1)[n - 1]
    sure = np.flatnonzero(-m.base < kth)
    tied = np.flatnonzero(-m.base == kth)
    tied = sorted(tied.tolist(), key=lambda i: master_ids[int(m.rows[i])])[: n - len(sure)]
    return m.take(np.concatenate([sure, np.array(tied, dtype=np.int64)]))


class Reranker:
    def __init__(self, table: MasterTable) -> None:
        self.table = table

    def items(self, cands: RowMerged, widget: str, k: int, *, refresh: bool = True) -> list[Item]:
        return [Item.from_json(d) for d in self.dicts(cands, widget, k, refresh=refresh)]

    def dicts(self, cands: RowMerged, widget: str, k: int, *, refresh: bool = True,
              rule: WidgetRule | None = None) -> list[dict]:
        """Best pid per master, the widget's rule, top ``k`` by (final desc, master id asc).

        ``refresh`` re-reads rows older than the local TTL first (all rows without local copies).
        ``rule``: another rule than the table's for this widget (an A/B variant's): its terms are
        computed for the candidate rows alone, by the same :func:`widget_terms`."""
        if not len(cands):
            return []
        t = self.table
        rows = cands.rows
        if refresh:
            t.refresh(rows)
        if rule is not None:
            terms = [widget_terms(t.best[r], rule) for r in rows.tolist()]
            mult, add, keep, promo = (np.array(col) for col in zip(*terms))
            final = cands.base * mult + add
            return self._top(cands, rows, final, keep.astype(bool), promo.astype(bool), k)
        mult, add, keep, promo = t.wterms[widget]
        final = cands.base * mult[rows] + add[rows]
        return self._top(cands, rows, final, keep[rows], promo[rows], k)

    def _top(self, cands: RowMerged, rows, final, keep, promo, k: int) -> list[dict]:
        t = self.table
        mids = t.master_ids
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
        base_l = cands.base[sel].tolist()
        promo_l = promo[sel].tolist()
        best, cat, extra = t.best, t.cat, t.extra
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
                d = {"master_id": mids[r], "pid": None, "category": cat[r], "score": fl[j],
                     "signals": signals, "scores": scores, "price": None, "rating": None}  # fmt: skip
            else:
                if promo_l[n]:
                    add_promo(signals, scores, a)
                d = {"master_id": mids[r], "pid": a.pid, "category": cat[r], "score": fl[j],
                     "signals": signals, "scores": scores, "price": a.price, "rating": a.rating}  # fmt: skip
            e = extra[r]
            if e:
                d.update(e)
            out.append(d)
        return out
