"""Decayed related-key scores with top-K pruning: the keyed state of the co-view operator.

Per key (a category, or any string) the state holds its related keys' scores and the epoch they
are valid at. Applying epoch ``e`` to a key multiplies its scores by ``decay ** (e - epoch)``
(decay is lazy: a key untouched for a while is decayed when next touched), adds the epoch's pair
counts, drops scores under ``min_score`` and keeps the ``top_k`` best with a heap. Order: score
descending, ties by related key ascending, everywhere.

Epochs are applied in ascending order only once they are complete (no partition can still add to
them), and an epoch's counts are integers summed before use, so the result does not depend on the
order events arrived in across partitions.
"""

from __future__ import annotations

import heapq
import pickle
from collections import Counter
from operator import itemgetter

import numpy as np
from collections.abc import Iterable, Mapping

__all__ = ["CoviewState", "ArrayCoviewState", "rank"]

_score = itemgetter(1)


def rank(scores: Mapping[str, float], k: int) -> list[tuple[str, float]]:
    """The ``k`` best ``(related, score)`` pairs: score descending, ties by key ascending.

    Items in key order go through ``heapq.nlargest`` by score, which keeps equal scores in their
    input order (it is stable), hence ties by key ascending.
    """
    by_key = sorted(scores.items())
    if len(by_key) <= k:
        by_key.sort(key=_score, reverse=True)  # stable: ties stay in key order
        return by_key
    return heapq.nlargest(k, by_key, key=_score)


class CoviewState:
    """Related-key scores of the keys one shard owns, plus pair counts waiting for their epoch."""

    def __init__(self, *, decay: float = 0.95, top_k: int = 20, min_score: float = 0.0, max_keys: int = 1 << 62) -> None:
        self.decay = decay
        self.top_k = top_k
        self.min_score = min_score
        self.max_keys = max_keys
        self.keys: dict[str, tuple[int, dict[str, float]]] = {}
        """key -> (epoch the scores are valid at, related -> score); most recently updated last."""
        self.pending: dict[int, Counter] = {}
        self.applied_epoch: int | None = None
        self.counts: Counter = Counter()

    # ---------------------------------------------------------------- feeding
    def add(self, epoch: int, pairs: Mapping[tuple[str, str], int]) -> None:
        """Pair counts for ``epoch`` (applied by :meth:`apply_until`)."""
        if self.applied_epoch is not None and epoch <= self.applied_epoch:
            # Cannot happen while partitions report complete epochs truthfully; never lose it.
            self.counts["late_pairs"] += 1
            epoch = self.applied_epoch + 1
        bucket = self.pending.get(epoch)
        if bucket is None:
            self.pending[epoch] = Counter(pairs)
        else:
            bucket.update(pairs)

    def apply_until(self, epoch: int) -> set[str]:
        """Apply every pending epoch up to ``epoch``, in order; returns the keys that changed."""
        changed: set[str] = set()
        for e in sorted(x for x in self.pending if x <= epoch):
            changed |= self.apply_epoch(e, self.pending.pop(e))
        if self.applied_epoch is None or epoch > self.applied_epoch:
            self.applied_epoch = epoch
        return changed

    def apply_epoch(self, epoch: int, pairs: Mapping[tuple[str, str], int]) -> set[str]:
        """Decay, add and prune the keys that ``pairs`` touch (one epoch)."""
        by_key: dict[str, list[tuple[str, int]]] = {}
        for (a, b), n in pairs.items():
            by_key.setdefault(a, []).append((b, n))
        return self.apply_grouped(epoch, by_key)

    def apply_grouped(self, epoch: int, by_key: Mapping[str, list[tuple[str, int]]]) -> set[str]:
        """:meth:`apply_epoch` with the counts already grouped by key (``key -> [(related, n)]``)."""
        keys = self.keys
        decay, k, floor = self.decay, self.top_k, self.min_score
        for a in sorted(by_key):
            entry = keys.pop(a, None)
            if entry is None:
                scores: dict[str, float] = {}
            else:
                old_epoch, old = entry
                f = decay ** (epoch - old_epoch) if epoch > old_epoch else 1.0
                scores = {b: s * f for b, s in old.items()} if f != 1.0 else dict(old)
            for b, n in by_key[a]:
                scores[b] = scores.get(b, 0.0) + n
            if floor > 0:
                scores = {b: s for b, s in scores.items() if s >= floor}
            if len(scores) > k:
                scores = dict(rank(scores, k))
            keys[a] = (max(epoch, entry[0]) if entry else epoch, scores)
        while len(keys) > self.max_keys:  # least recently updated first (dicts keep order)
            del keys[next(iter(keys))]
            self.counts["keys_evicted"] += 1
        self.counts["epochs_applied"] += 1
        return set(by_key)

    # ---------------------------------------------------------------- reading
    def size(self) -> int:
        return len(self.keys)

    def tops(self, names: list[str]) -> dict[str, list[tuple[str, float]]]:
        return {k: self.top(k) for k in names}

    def top(self, key: str) -> list[tuple[str, float]]:
        entry = self.keys.get(key)
        return rank(entry[1], self.top_k) if entry else []

    def items(self) -> Iterable[tuple[str, list[tuple[str, float]]]]:
        for key in sorted(self.keys):
            yield key, self.top(key)

    # ---------------------------------------------------------------- snapshots
    def snapshot(self) -> bytes:
        return pickle.dumps(
            (self.decay, self.top_k, self.min_score, self.max_keys, self.keys, self.pending, self.applied_epoch,
             self.counts),
            protocol=pickle.HIGHEST_PROTOCOL,
        )

    @classmethod
    def restore(cls, blob: bytes) -> CoviewState:
        decay, top_k, min_score, max_keys, keys, pending, applied, counts = pickle.loads(blob)
        s = cls(decay=decay, top_k=top_k, min_score=min_score, max_keys=max_keys)
        s.keys, s.pending, s.applied_epoch, s.counts = keys, pending, applied, counts
        return s


class ArrayCoviewState:
    """:class:`CoviewState` on numpy arrays: the same arithmetic, operation for operation, applied
    to a whole epoch at once (the shards use it; :class:`CoviewState` is its readable twin and the
    tests hold them equal). Keys get dense ids in order of first sight; ids never reach results, and
    every tie is broken by the key's name."""

    def __init__(self, *, decay: float = 0.95, top_k: int = 20, min_score: float = 0.0, max_keys: int = 1 << 62) -> None:
        self.decay, self.top_k, self.min_score, self.max_keys = decay, top_k, min_score, max_keys
        self.names: list[str] = []
        self.ids: dict[str, int] = {}
        self.a = np.zeros(0, dtype=np.int64)
        self.b = np.zeros(0, dtype=np.int64)
        self.s = np.zeros(0, dtype=np.float64)
        self.key_epoch = np.zeros(0, dtype=np.int64)
        self.has = np.zeros(0, dtype=bool)
        self.applied_epoch: int | None = None
        self.counts: Counter = Counter()
        self._rank: np.ndarray | None = None

    # ---------------------------------------------------------------- ids
    def ids_of(self, names: list[str]) -> np.ndarray:
        ids, known = self.ids, self.names
        out = np.empty(len(names), dtype=np.int64)
        for i, name in enumerate(names):
            j = ids.get(name)
            if j is None:
                j = ids[name] = len(known)
                known.append(name)
            out[i] = j
        grow = len(known) - len(self.has)
        if grow > 0:
            self.key_epoch = np.concatenate([self.key_epoch, np.zeros(grow, dtype=np.int64)])
            self.has = np.concatenate([self.has, np.zeros(grow, dtype=bool)])
            self._rank = None
        return out

    def _name_rank(self) -> np.ndarray:
        if self._rank is None or len(self._rank) != len(self.names):
            order = sorted(range(len(self.names)), key=self.names.__getitem__)
            rank = np.empty(len(self.names), dtype=np.int64)
            rank[np.array(order, dtype=np.int64)] = np.arange(len(order))
            self._rank = rank
        return self._rank

    def size(self) -> int:
        return int(self.has.sum())

    # ---------------------------------------------------------------- applying an epoch
    def apply(self, epoch: int, a: np.ndarray, b: np.ndarray, n: np.ndarray) -> set[str]:
        """Decay, add and prune the keys ``a`` (ids; pairs distinct) touches; returns their names."""
        if not len(a):
            return set()
        nk = len(self.names)
        touched = np.zeros(nk, dtype=bool)
        touched[a] = True
        sel = touched[self.a]
        oa, ob, os_ = self.a[sel], self.b[sel], self.s[sel]
        had = self.has[oa]
        old_ep = self.key_epoch[oa]
        later = had & (epoch > old_ep)
        if later.any():
            # one factor per key (few distinct gaps), with Python's float power as CoviewState
            # computes it (numpy's may differ in the last bit)
            kk = np.flatnonzero(touched & self.has & (self.key_epoch < epoch))
            gaps, inv = np.unique(epoch - self.key_epoch[kk], return_inverse=True)
            fk = np.ones(nk)
            fk[kk] = np.array([self.decay ** int(g) for g in gaps.tolist()], dtype=np.float64)[inv]
            f = fk[oa]
            os_ = np.where(f != 1.0, os_ * f, os_)
        # merge: the new pairs are distinct, the old ones too; a pair in both sums old + new
        ns = n.astype(np.float64)
        if len(oa):
            ocode = oa * nk + ob
            oo = np.argsort(ocode)
            ocs = ocode[oo]
            ncode = a * nk + b
            pos = np.minimum(np.searchsorted(ocs, ncode), len(ocs) - 1)
            nmatch = ocs[pos] == ncode
            oidx = oo[pos[nmatch]]
            os_ = os_.copy()
            os_[oidx] = os_[oidx] + ns[nmatch]
            fresh = ~nmatch
            na_, nb_, ns_ = a[fresh], b[fresh], ns[fresh]
            if self.min_score > 0:
                keep = os_ >= self.min_score
                oa, ob, os_ = oa[keep], ob[keep], os_[keep]
            # A key holding top_k old scores keeps at least those: a new pair scoring under the
            # least of them can never make its top_k (equal scores stay: the name breaks ties).
            full = np.bincount(oa, minlength=nk) == self.top_k
            if full.any() and len(na_):
                least = np.full(nk, np.inf)
                np.minimum.at(least, oa, os_)
                floor = np.where(full, least, -np.inf)
                keep = ns_ >= floor[na_]
                na_, nb_, ns_ = na_[keep], nb_[keep], ns_[keep]
            if self.min_score > 0:
                keep = ns_ >= self.min_score
                na_, nb_, ns_ = na_[keep], nb_[keep], ns_[keep]
            ua = np.concatenate([oa, na_])
            ub = np.concatenate([ob, nb_])
            sums = np.concatenate([os_, ns_])
        else:
            ua, ub, sums = a, b, ns
            if self.min_score > 0:
                keep = sums >= self.min_score
                ua, ub, sums = ua[keep], ub[keep], sums[keep]
        if len(ua):
            # only keys with more than top_k candidates need ranking (the arrays keep no order)
            big = np.bincount(ua, minlength=nk)[ua] > self.top_k
            if big.any():
                ba, bb, bs = ua[big], ub[big], sums[big]
                o = self._rank_order(ba, bs, self._name_rank()[bb])
                ba, bb, bs = ba[o], bb[o], bs[o]
                gstart = np.flatnonzero(np.r_[True, ba[1:] != ba[:-1]])
                pos = np.arange(len(ba)) - np.repeat(gstart, np.diff(np.r_[gstart, len(ba)]))
                keep = pos < self.top_k
                small = ~big
                ua = np.concatenate([ua[small], ba[keep]])
                ub = np.concatenate([ub[small], bb[keep]])
                sums = np.concatenate([sums[small], bs[keep]])
        rest = ~sel
        self.a = np.concatenate([self.a[rest], ua])
        self.b = np.concatenate([self.b[rest], ub])
        self.s = np.concatenate([self.s[rest], sums])
        ta = np.flatnonzero(touched)
        self.key_epoch[ta] = np.where(self.has[ta], np.maximum(self.key_epoch[ta], epoch), epoch)
        self.has[ta] = True
        self._evict()
        self.counts["epochs_applied"] += 1
        names = self.names
        return {names[i] for i in ta.tolist()}

    @staticmethod
    def _rank_order(ua: np.ndarray, sums: np.ndarray, rb: np.ndarray) -> np.ndarray:
        """The order by key id, then score descending, then related key's name rank: the same as
        ``np.lexsort((rb, -sums, ua))``, with one integer sort where the codes fit in 63 bits."""
        m = len(sums)
        nb = int(rb.max()) + 1 if m else 1
        na = int(ua.max()) + 1 if m else 1
        if na * m * nb >= 1 << 62:
            return np.lexsort((rb, -sums, ua))
        # dense rank of the score, descending (equal scores share a rank)
        so = np.argsort(-sums)
        sv = sums[so]
        dense = np.empty(m, dtype=np.int64)
        dense[so] = np.cumsum(np.r_[False, sv[1:] != sv[:-1]])
        return np.argsort((ua * m + dense) * nb + rb)  # codes are distinct: (ua, ub) pairs are

    def _evict(self) -> None:
        over = self.size() - self.max_keys
        if over <= 0:
            return
        live = np.flatnonzero(self.has)
        order = np.lexsort((self._name_rank()[live], self.key_epoch[live]))  # least recently updated first
        gone = live[order[:over]]
        self.has[gone] = False
        drop = np.zeros(len(self.names), dtype=bool)
        drop[gone] = True
        keep = ~drop[self.a]
        self.a, self.b, self.s = self.a[keep], self.b[keep], self.s[keep]
        self.counts["keys_evicted"] += over

    # ---------------------------------------------------------------- reading
    def tops(self, names: list[str]) -> dict[str, list[tuple[str, float]]]:
        """The current top-K of each key in ``names`` (``[]`` for a key with none)."""
        out: dict[str, list[tuple[str, float]]] = {name: [] for name in names}
        want = np.zeros(len(self.names), dtype=bool)
        idx = [self.ids[n] for n in names if n in self.ids]
        if not idx or not len(self.a):
            return out
        want[np.array(idx, dtype=np.int64)] = True
        sel = want[self.a]
        a, b, s = self.a[sel], self.b[sel], self.s[sel]
        if not len(a):
            return out
        o = self._rank_order(a, s, self._name_rank()[b])
        a, b, s = a[o], b[o], s[o]
        known = self.names
        rel = list(zip(map(known.__getitem__, b.tolist()), s.tolist()))
        bounds = np.flatnonzero(np.r_[True, a[1:] != a[:-1], True]).tolist()
        firsts = a[bounds[:-1]].tolist()
        for x, i, j in zip(firsts, bounds[:-1], bounds[1:]):
            out[known[x]] = rel[i:j]
        return out

    def top(self, key: str) -> list[tuple[str, float]]:
        return self.tops([key])[key]

    def items(self) -> Iterable[tuple[str, list[tuple[str, float]]]]:
        live = sorted(self.names[i] for i in np.flatnonzero(self.has).tolist())
        yield from self.tops(live).items()

    # ---------------------------------------------------------------- snapshots
    def snapshot(self) -> bytes:
        return pickle.dumps(
            (self.decay, self.top_k, self.min_score, self.max_keys, self.names, self.a, self.b, self.s,
             self.key_epoch, self.has, self.applied_epoch, self.counts),
            protocol=pickle.HIGHEST_PROTOCOL,
        )

    @classmethod
    def restore(cls, blob: bytes) -> ArrayCoviewState:
        decay, top_k, min_score, max_keys, names, a, b, s, key_epoch, has, applied, counts = pickle.loads(blob)
        st = cls(decay=decay, top_k=top_k, min_score=min_score, max_keys=max_keys)
        st.names, st.ids = names, {n: i for i, n in enumerate(names)}
        st.a, st.b, st.s, st.key_epoch, st.has = a, b, s, key_epoch, has
        st.applied_epoch, st.counts = applied, counts
        return st
