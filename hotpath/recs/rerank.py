"""Rerank merged candidates by a widget's rule, straight from the master table's numpy columns.

Each row's ``(mult, add, keep, promo)`` under every widget is kept by the table as rows load
(:func:`hotpath.recs.ranking.widget_terms`, the one implementation of the rule), so a request does
``final = base * mult[rows] + add[rows]``, drops what ``keep`` refuses, and builds the top ``k``
items' JSON form (what :meth:`~hotpath.recs.model.Item.to_json` gives) without per-item objects.
"""

from __future__ import annotations

import numpy as np

from hotpath.recs.model import Item
from hotpath.recs.ranking import SIGNAL_NAMES, RowMerged, add_promo, widget_terms
from hotpath.recs.settings import WidgetRule
from hotpath.recs.table import MasterTable

__all__ = ["Reranker"]


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
