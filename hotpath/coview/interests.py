"""User recent interests: decaying category weights per user, on event time.

A category's weight is the sum over the user's views of it of ``decay ** ((ref - t) / period)``,
where ``ref`` is the user's newest event time (a view weighs 1 when new and decays 0.95 an hour by
default). Weights under ``min_score`` are pruned and at most ``max_cats`` kept. Users not seen for ``ttl_ms`` of event time
(the watermark's) are forgotten, as is the least recently seen user beyond ``max_users``; their
Redis key expires by its TTL. All of it depends only on the partition's event order.
"""

from __future__ import annotations

import pickle
from collections import Counter

from hotpath.coview.topk import rank

__all__ = ["RecentInterests"]


class RecentInterests:
    """Recent-interest weights of the users of one partition.

    Stored per user: ``(newest event time, anchor time, {cat: weight at the anchor})``; a view
    adds ``decay ** ((anchor - t) / period)`` — O(1), no re-decaying of every category per view —
    and a category's weight at the newest event time is ``stored * decay ** ((ref - anchor) / period)``.
    When a user holds more than ``max_cats`` categories, weights are computed, the ones under
    ``min_score`` dropped, the best ``max_cats`` kept, and the anchor moves to the newest time.
    """

    def __init__(
        self,
        *,
        decay: float = 0.95,
        period_ms: int = 3_600_000,
        min_score: float = 0.05,
        max_cats: int = 50,
        ttl_ms: int = 3 * 86_400_000,
        max_users: int = 500_000,
    ) -> None:
        self.decay, self.period_ms, self.min_score = decay, period_ms, min_score
        self.max_cats, self.ttl_ms, self.max_users = max_cats, ttl_ms, max_users
        self.users: dict[str, tuple[int, int, dict[str, float]]] = {}
        """user -> (newest event time, anchor, category -> weight at anchor); least recently seen first."""
        self.dirty: set[str] = set()
        self.forgotten: dict[str, dict[str, float]] = {}
        """Final weights of dirty users forgotten before their write: still written (deterministic)."""
        self.counts: Counter = Counter()

    def on_view(self, user: str, cat: str, ts: int) -> None:
        users = self.users
        entry = users.pop(user, None)
        if entry is None:
            users[user] = (ts, ts, {cat: 1.0})
        else:
            ref, anchor, weights = entry
            add = 1.0 if ts == anchor else self.decay ** ((anchor - ts) / self.period_ms)
            weights[cat] = weights.get(cat, 0.0) + add
            if ts > ref:
                ref = ts
            if len(weights) > self.max_cats or (ref - anchor) > 200 * self.period_ms:
                weights = self._compact(ref, anchor, weights)
                anchor = ref
            users[user] = (ref, anchor, weights)
        self.dirty.add(user)
        if len(users) > self.max_users:
            self._forget(next(iter(users)))
            self.counts["users_evicted"] += 1

    def on_views(self, views: list[tuple[str, str, int]]) -> None:
        """:meth:`on_view` for each ``(user, cat, ts)`` in order."""
        users, dirty = self.users, self.dirty
        decay, period, max_cats = self.decay, self.period_ms, self.max_cats
        span = 200 * period
        for user, cat, ts in views:
            entry = users.pop(user, None)
            if entry is None:
                users[user] = (ts, ts, {cat: 1.0})
            else:
                ref, anchor, weights = entry
                add = 1.0 if ts == anchor else decay ** ((anchor - ts) / period)
                weights[cat] = weights.get(cat, 0.0) + add
                if ts > ref:
                    ref = ts
                if len(weights) > max_cats or (ref - anchor) > span:
                    weights = self._compact(ref, anchor, weights)
                    anchor = ref
                users[user] = (ref, anchor, weights)
            dirty.add(user)
            if len(users) > self.max_users:
                self._forget(next(iter(users)))
                self.counts["users_evicted"] += 1

    def _compact(self, ref: int, anchor: int, weights: dict[str, float]) -> dict[str, float]:
        """The weights at ``ref``, those under ``min_score`` dropped, the best ``max_cats`` kept
        (score descending, ties by category ascending, as :func:`rank` orders them): a new dict."""
        w = self._output((ref, anchor, weights))
        if w is weights:
            w = dict(w)
        excess = len(w) - self.max_cats
        if excess <= 0:
            return w
        if excess > 3:
            return dict(rank(w, self.max_cats))
        # The usual case (a full user viewing one new category): drop the worst few, one by one;
        # the same set as rank's best max_cats (worst = lowest score, then greatest category).
        for _ in range(excess):
            lo = min(w.values())
            del w[max(c for c, v in w.items() if v == lo)]
        return w

    def _current(self, ref: int, anchor: int, weights: dict[str, float]) -> dict[str, float]:
        if ref == anchor:
            return dict(weights)
        f = self.decay ** ((ref - anchor) / self.period_ms)
        return {c: w * f for c, w in weights.items()}

    def _output(self, entry: tuple[int, int, dict[str, float]]) -> dict[str, float]:
        ref, anchor, weights = entry
        lo = self.min_score
        if ref == anchor:
            return {c: v for c, v in weights.items() if v >= lo} if lo > 0 else dict(weights)
        f = self.decay ** ((ref - anchor) / self.period_ms)
        if lo > 0:  # decayed and pruned in one pass (the sink gathers thousands of users a second)
            return {c: x for c, v in weights.items() if (x := v * f) >= lo}
        return {c: v * f for c, v in weights.items()}

    def expire(self, watermark: int | None) -> None:
        """Forget users whose newest event is older than the TTL at this watermark."""
        if watermark is None:
            return
        limit = watermark - self.ttl_ms
        users = self.users
        while users:
            first = next(iter(users))
            if users[first][0] >= limit:
                break
            self._forget(first)
            self.counts["users_expired"] += 1

    def _forget(self, user: str) -> None:
        entry = self.users.pop(user)
        if user in self.dirty:
            self.dirty.discard(user)
            self.forgotten[user] = self._output(entry)

    def weights(self, user: str) -> list[tuple[str, float]]:
        """The user's current weights (at its newest event), pruned, best first."""
        entry = self.users.get(user)
        return rank(self._output(entry), self.max_cats) if entry else []

    def drain_dirty(self) -> dict[str, dict[str, float]]:
        """Current weights of the users changed since the last drain."""
        out = dict(sorted(self.forgotten.items()))
        users = self.users
        out.update({u: self._output(users[u]) for u in sorted(self.dirty)})
        self.dirty, self.forgotten = set(), {}
        return out

    def snapshot(self) -> bytes:
        return pickle.dumps(
            (self.decay, self.period_ms, self.min_score, self.max_cats, self.ttl_ms, self.max_users,
             self.users, self.dirty, self.forgotten, self.counts),
            protocol=pickle.HIGHEST_PROTOCOL,
        )

    @classmethod
    def restore(cls, blob: bytes) -> RecentInterests:
        decay, period, min_score, max_cats, ttl, max_users, users, dirty, forgotten, counts = pickle.loads(blob)
        r = cls(decay=decay, period_ms=period, min_score=min_score, max_cats=max_cats, ttl_ms=ttl, max_users=max_users)
        r.users, r.dirty, r.forgotten, r.counts = users, dirty, forgotten, counts
        return r
