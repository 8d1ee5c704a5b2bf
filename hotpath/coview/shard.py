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

from hotpath.coview.events import PoisonedEvent, decode_batch, event_from_object, parse_event
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
        on_event, on_view = win.on_event, rec.on_view
        out = Ingested()
        views = 0
        newest = oldest = 0
        offset = st.offset
        fresh = [r for r in records if r.offset >= offset]
        objs = decode_batch([r.value for r in fresh])
        for i, r in enumerate(fresh):
            if r.offset < offset:
                continue
            offset = r.offset + 1
            try:
                ev = event_from_object(objs[i]) if objs is not None else parse_event(r.value)
            except PoisonedEvent as exc:
                out.dead.append((r, exc.reason))
                continue
            kind = ev.type
            if kind == "view":
                views += 1
                if on_event(ev.session, ev.cat, ev.ts) == LATE_DROPPED:
                    out.late.append(r)
                on_view(ev.user, ev.cat, ev.ts)
                sent = ev.sent_ms
                if sent:
                    if sent > newest:
                        newest = sent
                    if not oldest or sent < oldest:
                        oldest = sent
            elif kind == "watermark":
                win.punctuate(ev.ts)
            else:
                self.counts["orders"] += 1
        st.offset = offset
        win.tick()
        rec.expire(win.watermark)
        if newest > st.newest_sent_ms:
            st.newest_sent_ms = newest
        self.counts["views"] += views
        self.counts["dead"] += len(out.dead)
        out.views, out.newest_sent_ms, out.oldest_sent_ms = views, newest, oldest
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
        owner = self._owner
        n = self.shards
        for p in sorted(self.parts):
            for epoch, baskets in self.parts[p].windower.drain().items():
                for basket in baskets:
                    dests = set()
                    for key in basket:
                        d = owner.get(key)
                        if d is None:
                            if len(owner) > 200_000:
                                owner.clear()
                            d = owner[key] = shard_of(key, n)
                        dests.add(d)
                    for d in dests:
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
        if epoch == NO_EPOCH:
            return {}
        state = self.state
        changed: set[str] = set()
        for e in sorted(x for x in self.pending if x <= epoch):
            a, b, n = self._owned_pairs(self.pending.pop(e))
            changed |= state.apply(e, a, b, n)
        if state.applied_epoch is None or epoch > state.applied_epoch:
            state.applied_epoch = epoch
        self.dims_dirty |= changed
        return state.tops(sorted(changed))

    def _owned_pairs(self, baskets: list[tuple[str, ...]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pair counts ``(a, b, n)`` (state ids) of the baskets, for the first keys this shard owns."""
        local = KeyIds()
        g, k = local.arrays(baskets)
        names = local.names
        a, b, n = count_pairs(g, k, len(names))
        index, shards = self.index, self.shards
        owned = np.fromiter((shard_of(x, shards) == index for x in names), dtype=bool, count=len(names))
        keep = owned[a]
        sid = self.state.ids_of(names)
        return sid[a[keep]], sid[b[keep]], n[keep]

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
