"""The keyed state of one co-view shard, as plain data (no I/O): the operator's two stages.

A shard owns some event-log partitions (``p % shards == index``) and some keys
(``crc32(key) % shards == index``):

1. For each owned partition: a :class:`PartitionWindower` (user windows, watermark, lateness) and a
   :class:`RecentInterests` (user recent categories), and the offset of the next record to read.
   Fired windows produce baskets per epoch, routed to every shard owning one of their keys.
2. For the owned keys: a :class:`CoviewState` (decayed related-key scores, top-K) fed with the
   baskets of every shard's fired windows; epoch ``e``'s baskets are counted into pairs (owned
   first key only) and applied once every partition has completed ``e``.

``snapshot()`` captures both stages and the offsets in one immutable blob, so a checkpoint saves
state and offsets together.
"""

from __future__ import annotations

import pickle
import time
import zlib

import numpy as np
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from hotpath.coview.events import (
    _MAX_FIELD,
    MAX_TS_MS,
    MIN_TS_MS,
    PoisonedEvent,
    decode_batch,
    event_from_object,
    parse_event,
)
from hotpath.coview.interests import RecentInterests
from hotpath.coview.pairs import KeyIds, count_pairs
from hotpath.coview.settings import StreamingSettings
from hotpath.coview.topk import ArrayCoviewState
from hotpath.coview.windows import LATE_DROPPED, NO_EPOCH, PartitionWindower, WindowSpec
from hotpath.stores.base import LogRecord

__all__ = ["ShardCore", "shard_of", "partitions_of", "Contribution", "Ingested"]

Contribution = tuple[int, list[tuple[str, ...]]]
"""``(epoch, baskets)`` sent from the shard owning a partition to every shard owning a key of a
basket (a basket: the distinct keys of one fired window)."""


def shard_of(key: str, shards: int) -> int:
    """The shard owning ``key`` (stable across processes and runs)."""
    return zlib.crc32(key.encode()) % shards


def partitions_of(index: int, shards: int, partitions: int) -> list[int]:
    """The event-log partitions shard ``index`` reads."""
    return [p for p in range(partitions) if p % shards == index]


@dataclass
class Ingested:
    """What one batch of records produced besides state: the streams that leave the operator."""

    dead: list[tuple[LogRecord, str]] = field(default_factory=list)
    """Poisoned records and why."""
    late: list[LogRecord] = field(default_factory=list)
    """Late records dropped by policy (the late stream)."""
    views: int = 0
    newest_sent_ms: int = 0
    oldest_sent_ms: int = 0


class _Partition:
    __slots__ = ("offset", "windower", "interests", "newest_sent_ms")

    def __init__(self, offset: int, windower: PartitionWindower, interests: RecentInterests) -> None:
        self.offset = offset
        self.windower = windower
        self.interests = interests
        self.newest_sent_ms = 0


class ShardCore:
    """Both stages of one shard; see the module docstring."""

    def __init__(
        self,
        index: int,
        shards: int,
        partitions: Sequence[int],
        settings: StreamingSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        spec: WindowSpec | None = None,
    ) -> None:
        self.index, self.shards = index, shards
        self.settings = settings
        self.clock = clock
        self.spec = spec or settings.window_spec()
        if settings.idle_advance_s is not None and self.spec.idle_advance_ms is None:
            from dataclasses import replace

            self.spec = replace(self.spec, idle_advance_ms=int(settings.idle_advance_s * 1000))
        self.parts: dict[int, _Partition] = {p: self._new_partition(0) for p in partitions}
        self.state = ArrayCoviewState(
            decay=settings.decay, top_k=settings.top_k, min_score=settings.min_score,
            max_keys=settings.max_keys_per_shard,
        )
        self.dims_dirty: set[str] = set()
        self.pending: dict[int, list[tuple[str, ...]]] = {}
        self.counts: Counter = Counter()
        self._owner: dict[str, int] = {}

    def _new_partition(self, offset: int) -> _Partition:
        s = self.settings
        return _Partition(
            offset,
            PartitionWindower(self.spec, clock=self.clock),
            RecentInterests(
                decay=s.recent_decay, period_ms=int(s.recent_decay_period_s * 1000), min_score=s.recent_min_score,
                max_cats=s.recent_max_cats, ttl_ms=int(s.recent_ttl_s * 1000), max_users=s.max_users_per_partition,
            ),
        )

    # ---------------------------------------------------------------- stage 1: partitions
    def offsets(self) -> dict[int, int]:
        return {p: st.offset for p, st in self.parts.items()}

    def ingest(self, partition: int, records: Iterable[LogRecord]) -> Ingested:
        """Process records of one owned partition, skipping any before its offset (replays)."""
        st = self.parts[partition]
        win, rec = st.windower, st.interests
        out = Ingested()
        offset = st.offset
        fresh = [r for r in records if r.offset >= offset]
        if not fresh:
            win.tick()
            rec.expire(win.watermark)
            out.oldest_sent_ms = out.newest_sent_ms = 0
            return out
        objs = decode_batch([r.value for r in fresh])
        batch = win.batch_ok()
        views: list[tuple[str, str, int]] = []  # (session, key, ts), for the windower
        viewers: list[tuple[str, str, int]] = []  # (user, key, ts), for recent interests
        view_recs: list[LogRecord] = []
        newest = oldest = 0
        orders = 0
        lo, hi, maxf = MIN_TS_MS, MAX_TS_MS, _MAX_FIELD

        def flush() -> None:
            if batch:
                for i in win.on_events(views):
                    out.late.append(view_recs[i])
            else:
                on_event = win.on_event
                for (session, key, ts), r in zip(views, view_recs):
                    if on_event(session, key, ts) == LATE_DROPPED:
                        out.late.append(r)
            rec.on_views(viewers)
            views.clear()
            viewers.clear()
            view_recs.clear()

        for i, r in enumerate(fresh):
            o = objs[i] if objs is not None else None
            if o is not None:
                # fast path, the usual case: a view whose fields are all short strings and an int ts
                # (exactly what event_from_object accepts on its own fast path)
                get = o.get
                ts = get("ts")
                user, cat, session = get("user"), get("cat"), get("session")
                pid, master = get("pid", ""), get("master", "")
                if (
                    get("type", "view") == "view" and type(ts) is int and lo <= ts < hi
                    and type(user) is str and type(cat) is str and type(pid) is str and type(master) is str
                    and 0 < len(user) <= maxf and 0 < len(cat) <= maxf
                    and len(pid) <= maxf and len(master) <= maxf
                    and (session is None or (type(session) is str and len(session) <= maxf))
                ):  # fmt: skip
                    views.append((session or user, cat, ts))
                    viewers.append((user, cat, ts))
                    view_recs.append(r)
                    sent = get("sent_ms", 0)
                    if sent and (type(sent) is int or type(sent) is float) and int(sent):
                        sent = int(sent)
                        if sent > newest:
                            newest = sent
                        if not oldest or sent < oldest:
                            oldest = sent
                    continue
            try:
                ev = event_from_object(o) if o is not None else parse_event(r.value)
            except PoisonedEvent as exc:
                out.dead.append((r, exc.reason))
                continue
            kind = ev.type
            if kind == "view":
                views.append((ev.session, ev.cat, ev.ts))
                viewers.append((ev.user, ev.cat, ev.ts))
                view_recs.append(r)
                sent = ev.sent_ms
                if sent:
                    if sent > newest:
                        newest = sent
                    if not oldest or sent < oldest:
                        oldest = sent
            elif kind == "watermark":
                n_views = len(views)
                flush()
                out.views += n_views
                win.punctuate(ev.ts)
            else:
                orders += 1
        out.views += len(views)
        flush()
        st.offset = fresh[-1].offset + 1
        win.tick()
        rec.expire(win.watermark)
        if newest > st.newest_sent_ms:
            st.newest_sent_ms = newest
        if orders:
            self.counts["orders"] += orders
        self.counts["views"] += out.views
        self.counts["dead"] += len(out.dead)
        out.newest_sent_ms, out.oldest_sent_ms = newest, oldest
        return out

    def tick(self) -> None:
        for st in self.parts.values():
            st.windower.tick()

    def complete_epochs(self) -> dict[int, int]:
        return {p: st.windower.complete_epoch() for p, st in self.parts.items()}

    def newest_sent(self) -> dict[int, int]:
        return {p: st.newest_sent_ms for p, st in self.parts.items()}

    def drain_outbox(self) -> dict[int, list[Contribution]]:
        """Baskets of fired windows, for every shard owning one of their keys."""
        out: dict[int, dict[int, list[tuple[str, ...]]]] = {}
        owner_of = self._owner_of
        single = self.shards == 1
        for p in sorted(self.parts):
            for epoch, baskets in self.parts[p].windower.drain().items():
                if single:
                    out.setdefault(0, {}).setdefault(epoch, []).extend(baskets)
                    continue
                for basket in baskets:
                    for d in set(map(owner_of, basket)):
                        by_epoch = out.get(d)
                        if by_epoch is None:
                            by_epoch = out[d] = {}
                        lst = by_epoch.get(epoch)
                        if lst is None:
                            lst = by_epoch[epoch] = []
                        lst.append(basket)
        return {dest: sorted(by_epoch.items()) for dest, by_epoch in out.items()}

    def drain_recent(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for p in sorted(self.parts):
            out.update(self.parts[p].interests.drain_dirty())
        return out

    # ---------------------------------------------------------------- stage 2: keys
    def receive(self, contributions: Iterable[Contribution]) -> None:
        applied = self.state.applied_epoch
        for epoch, baskets in contributions:
            if applied is not None and epoch <= applied:
                # Cannot happen while partitions report complete epochs truthfully; never lose it.
                self.counts["late_pairs"] += len(baskets)
                epoch = applied + 1
            lst = self.pending.get(epoch)
            if lst is None:
                self.pending[epoch] = list(baskets)
            else:
                lst.extend(baskets)

    def apply_until(self, epoch: int) -> dict[str, list[tuple[str, float]]]:
        """Apply complete epochs; returns the changed keys' current top-K."""
        return self.state.tops(sorted(self.apply_epochs(epoch)))

    def apply_epochs(self, epoch: int) -> set[str]:
        """Apply complete epochs; returns the changed keys."""
        if epoch == NO_EPOCH:
            return set()
        state = self.state
        changed: set[str] = set()
        for e in sorted(x for x in self.pending if x <= epoch):
            a, b, n = self._owned_pairs(self.pending.pop(e))
            changed |= state.apply(e, a, b, n)
        if state.applied_epoch is None or epoch > state.applied_epoch:
            state.applied_epoch = epoch
        self.dims_dirty |= changed
        return changed

    def _owned_pairs(self, baskets: list[tuple[str, ...]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pair counts ``(a, b, n)`` (state ids) of the baskets, for the first keys this shard owns."""
        local = KeyIds()
        g, k = local.arrays(baskets)
        names = local.names
        owned = np.fromiter(map(self._owner_of, names), dtype=np.int64, count=len(names)) == self.index
        a, b, n = count_pairs(g, k, len(names), owned)
        sid = self.state.ids_of(names)
        return sid[a], sid[b], n

    def _owner_of(self, key: str) -> int:
        d = self._owner.get(key)
        if d is None:
            if len(self._owner) > 200_000:
                self._owner.clear()
            d = self._owner[key] = shard_of(key, self.shards)
        return d

    def drain_dims(self) -> dict[str, list[tuple[str, float]]]:
        out = self.state.tops(sorted(self.dims_dirty))
        self.dims_dirty = set()
        return out

    # ---------------------------------------------------------------- snapshots
    def counters(self) -> dict[str, int]:
        c = Counter(self.counts)
        for st in self.parts.values():
            c.update(st.windower.counts)
            c.update(st.interests.counts)
        c.update(self.state.counts)
        c["keys"] = self.state.size()
        c["users"] = sum(len(st.interests.users) for st in self.parts.values())
        c["open_windows"] = sum(st.windower.open_windows() for st in self.parts.values())
        return dict(c)

    def snapshot(self) -> bytes:
        """Both stages, the offsets and the pending dimension writes, as one immutable blob."""
        parts = {
            p: (st.offset, st.windower.snapshot(), st.interests.snapshot(), st.newest_sent_ms)
            for p, st in self.parts.items()
        }
        return pickle.dumps(
            (self.index, self.shards, parts, self.state.snapshot(), self.pending, self.dims_dirty, self.counts),
            protocol=pickle.HIGHEST_PROTOCOL,
        )

    @classmethod
    def restore(
        cls, blob: bytes, settings: StreamingSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> ShardCore:
        index, shards, parts, state, pending, dims_dirty, counts = pickle.loads(blob)
        core = cls(index, shards, [], settings, clock=clock)
        for p, (offset, win, rec, sent) in parts.items():
            st = _Partition(offset, PartitionWindower.restore(win, clock=clock), RecentInterests.restore(rec))
            st.newest_sent_ms = sent
            core.parts[p] = st
        core.state = ArrayCoviewState.restore(state)
        core.pending, core.dims_dirty, core.counts = pending, dims_dirty, counts
        return core
