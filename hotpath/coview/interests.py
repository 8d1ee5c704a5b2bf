"""User recent interests: decaying category weights per user, on event time.

A category's weight is the sum over the user's views of it of ``decay ** ((ref - t) / period)``,
where ``ref`` is the user's newest event time (a view weighs 1 when new and decays 0.95 an hour by
default). Weights under ``min_score`` are pruned and at most ``max_cats`` kept. Users not seen for ``ttl_ms`` of event time
(the watermark's) are forgotten, as is the least recently seen user beyond ``max_users``; their
Redis key expires by its TTL. All of it depends only on the partition's event order.

What the sink writes (``user:recent_cats:{uid}``, :meth:`RecentInterests.drain_changes`): the
weights *as of the user's anchor* (see :class:`RecentInterests`), which differ from the current
ones by one factor per user — same order, same ratios (readers normalise by the highest) — so a
view changes one member and the sink writes that member alone (``ZADD``, an absolute score:
idempotent), and a category trimmed away (over ``max_cats``) is removed alone (``ZREM``). The whole
set is rewritten when the anchor moves: when the user is first seen, and at each compaction
(``compact_periods`` decay periods since the anchor).

The scores written are those weights in millionths, rounded to integers (:data:`SCORE_SCALE`;
ratios kept to a few parts per million): Redis keeps such a small set as one packed list in score
order and finds a member's place by reading every score before it, which costs several times
more for a decimal score (it parses it) than for an integer one. A user's whole set is written
best first (each member then goes to the head of the new set, one comparison).
"""

from __future__ import annotations

import pickle
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from itertools import chain
from operator import itemgetter

from hotpath.coview.topk import rank

__all__ = ["RecentInterests"]


class RecentInterests:
    """Recent-interest weights of the users of one partition.

    Stored per user: ``(newest event time, anchor time, {cat: weight at the anchor})``; a view
    adds ``decay ** ((anchor - t) / period)`` — O(1), no re-decaying of every category per view —
    and a category's weight at the newest event time is ``stored * decay ** ((ref - anchor) / period)``.
    When a user holds more than ``max_cats`` categories, the ones under ``min_score`` and then the
    worst are dropped down to ``keep_cats``, ``max_cats`` less a fifth (the trim; the anchor stays). When its newest view is more than
    ``compact_periods`` decay periods after the anchor, weights are computed, the ones under
    ``min_score`` dropped, the best ``max_cats`` kept, and the anchor moves to the newest time
    (the compaction; it bounds stored weights to ``decay ** -compact_periods``).
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
        compact_periods: int = 24,
    ) -> None:
        self.decay, self.period_ms, self.min_score = decay, period_ms, min_score
        self.max_cats, self.ttl_ms, self.max_users = max_cats, ttl_ms, max_users
        self.compact_periods = compact_periods
        self.keep_cats = max(1, max_cats - max_cats // 5)
        """What a trim leaves (some room under ``max_cats``: a full user is not trimmed at every new
        category)."""
        self.users: dict[str, tuple[int, int, dict[str, float]]] = {}
        """user -> (newest event time, anchor, category -> weight at anchor); least recently seen first."""
        self.dirty: dict[str, set[str] | None] = {}
        """Users changed since the last drain: the categories changed, or ``None`` when the whole set
        must be written (new user, or the anchor moved)."""
        self.forgotten: dict[str, dict[str, float]] = {}
        """Stored weights of dirty users forgotten before their write: still written, whole (deterministic)."""
        self.counts: Counter = Counter()
        self._freeze: _Freeze | None = None
        """While a deferred snapshot is being written: the users whose weights were copied since."""

    def on_view(self, user: str, cat: str, ts: int) -> None:
        self.on_views([(user, cat, ts)])

    def on_views(self, views: list[tuple[str, str, int]]) -> None:
        """Apply each ``(user, cat, ts)`` in order."""
        users, dirty = self.users, self.dirty
        decay, period, max_cats = self.decay, self.period_ms, self.max_cats
        span = self.compact_periods * period
        freeze = self._freeze
        if freeze is not None and freeze.done:
            self._freeze = freeze = None
        for user, cat, ts in views:
            entry = users.pop(user, None)
            if entry is None:
                users[user] = (ts, ts, {cat: 1.0})
                dirty[user] = None
            else:
                ref, anchor, weights = entry
                if freeze is not None and user not in freeze.copied:  # copy on write (snapshot_later)
                    weights = dict(weights)
                    freeze.copied.add(user)
                add = 1.0 if ts == anchor else decay ** ((anchor - ts) / period)
                weights[cat] = weights.get(cat, 0.0) + add
                if ts > ref:
                    ref = ts
                if (ref - anchor) > span:
                    weights = self._compact(ref, anchor, weights)
                    anchor = ref
                    dirty[user] = None
                    self.counts["recent_compactions"] += 1
                else:
                    changed = dirty.get(user, False)
                    if changed is False:
                        changed = dirty[user] = {cat}
                    elif changed is not None:
                        changed.add(cat)
                    if len(weights) > max_cats:
                        dropped = self._trim(ref, anchor, weights)
                        if changed is not None:
                            changed.update(dropped)
                users[user] = (ref, anchor, weights)
            if len(users) > self.max_users:
                self._forget(next(iter(users)))
                self.counts["users_evicted"] += 1

    def _compact(self, ref: int, anchor: int, weights: dict[str, float]) -> dict[str, float]:
        """The weights at ``ref`` (the new anchor), those under ``min_score`` dropped, the best
        ``max_cats`` kept (score descending, ties by category ascending, as :func:`rank` orders
        them): a new dict."""
        w = self._output((ref, anchor, weights))
        if w is weights:
            w = dict(w)
        return dict(rank(w, self.max_cats)) if len(w) > self.max_cats else w

    def _trim(self, ref: int, anchor: int, weights: dict[str, float]) -> list[str]:
        """A user over ``max_cats``, in place and without moving its anchor (so only the members
        removed change in Redis): the categories weighing under ``min_score`` at ``ref`` go, then
        the worst while over ``keep_cats`` — by stored weight, which orders them as the current
        weights do (one factor), ties by category ascending as :func:`rank` keeps them. Returns the
        categories removed."""
        self.counts["recent_trims"] += 1
        vals = sorted(weights.values())
        drop = len(vals) - self.keep_cats  # how many go: the excess, or all those under min_score
        lo = self.min_score
        if lo > 0:
            f = 1.0 if ref == anchor else self.decay ** ((ref - anchor) / self.period_ms)
            if vals[drop] * f < lo:  # more are under min_score (``v * f < lo`` rises with ``v``)
                drop = bisect_left(vals, True, drop, key=lambda v: v * f >= lo)
        cut = vals[drop - 1]  # the best of the ones that go
        gone = [c for c, v in weights.items() if v <= cut]
        if len(gone) > drop:  # ties at ``cut``: the smaller categories stay
            ties = sorted(c for c in gone if weights[c] == cut)
            stay = set(ties[: len(gone) - drop])
            gone = [c for c in gone if c not in stay]
        for c in gone:
            del weights[c]
        return gone

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
            del self.dirty[user]
            self.forgotten[user] = dict(entry[2])

    def weights(self, user: str) -> list[tuple[str, float]]:
        """The user's current weights (at its newest event), pruned, best first."""
        entry = self.users.get(user)
        return rank(self._output(entry), self.max_cats) if entry else []

    def drain_changes(self) -> dict[str, tuple[bool, dict[str, int | None]]]:
        """What to write for the users changed since the last drain: ``user -> (whole, members)``
        — with ``whole`` the user's set is replaced by ``members`` (best first), else ``members``
        are set in it (a ``None`` score: the member is removed).
        Scores are weights as of the user's anchor in millionths (see the module docstring)."""
        out: dict[str, tuple[bool, dict[str, int | None]]] = {
            u: (True, _scores(w)) for u, w in sorted(self.forgotten.items())
        }
        users = self.users
        for u in self.dirty:  # in the order they changed: deterministic, restored with the snapshot
            changed = self.dirty[u]
            weights = users[u][2]
            if changed is None:
                out[u] = (True, _scores(weights))
            else:  # a category trimmed away: None (removed from the set)
                out[u] = (False, {c: None if (v := weights.get(c)) is None else round(v * SCORE_SCALE)
                                  for c in changed})
        self.dirty, self.forgotten = {}, {}
        return out

    def stored(self, user: str) -> dict[str, int]:
        """What ``user:recent_cats`` holds once written: the weights as of the anchor, in millionths."""
        entry = self.users.get(user)
        return _scores(entry[2]) if entry else {}

    def snapshot(self) -> bytes:
        return self.snapshot_later()()

    def snapshot_later(self) -> Callable[[], bytes]:
        """:meth:`snapshot` in two halves: what is cheap happens now (a shallow list of the users,
        copies of the small parts); the returned function pickles the users, in chunks, and
        returns the blob. It may run in another thread while views go on: until it is done, a
        user's weights are copied before their first change (copy on write), so it writes the
        state as of this call. The shard pauses for the chunks' pickling, not the whole."""
        frozen = list(self.users.items())
        dirty = {u: (None if c is None else set(c)) for u, c in self.dirty.items()}
        head = (self.decay, self.period_ms, self.min_score, self.max_cats, self.ttl_ms, self.max_users)
        tail = (dirty, dict(self.forgotten), Counter(self.counts), self.compact_periods)
        freeze = self._freeze = _Freeze()

        def finish() -> bytes:
            try:
                chunks = [
                    pickle.dumps(frozen[i : i + _CHUNK], protocol=pickle.HIGHEST_PROTOCOL)
                    for i in range(0, len(frozen), _CHUNK)
                ]
            finally:
                freeze.done = True
            return pickle.dumps((*head, _Chunked(chunks), *tail), protocol=pickle.HIGHEST_PROTOCOL)

        return finish

    @classmethod
    def restore(cls, blob: bytes) -> RecentInterests:
        fields = pickle.loads(blob)
        if len(fields) == 10:  # a checkpoint of the previous version: whole rewrites, 200-period anchors
            (decay, period, min_score, max_cats, ttl, max_users, users, dirty, forgotten, counts) = fields
            compact, dirty = 200, dict.fromkeys(dirty)
        else:
            decay, period, min_score, max_cats, ttl, max_users, users, dirty, forgotten, counts, compact = fields
        r = cls(decay=decay, period_ms=period, min_score=min_score, max_cats=max_cats, ttl_ms=ttl, max_users=max_users,
                compact_periods=compact)
        if isinstance(users, _Chunked):
            users = dict(chain.from_iterable(pickle.loads(c) for c in users.chunks))
        r.users, r.dirty, r.forgotten, r.counts = users, dirty, forgotten, counts
        return r


SCORE_SCALE = 1_000_000
"""Written scores are weights in millionths, rounded to integers (see the module docstring)."""


def _scores(weights: dict[str, float]) -> dict[str, int]:
    """A whole set's written scores, best first (Redis inserts each at the head of the new set)."""
    return {c: round(v * SCORE_SCALE) for c, v in sorted(weights.items(), key=itemgetter(1), reverse=True)}


_CHUNK = 2000
"""Users pickled per chunk by a deferred snapshot (a few ms each: the GIL is let go between them)."""


class _Freeze:
    __slots__ = ("copied", "done")

    def __init__(self) -> None:
        self.copied: set[str] = set()
        self.done = False


class _Chunked:
    """The users of a deferred snapshot: pickled lists of ``(user, entry)``, in order."""

    __slots__ = ("chunks",)

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __reduce__(self):
        return (_Chunked, (self.chunks,))
