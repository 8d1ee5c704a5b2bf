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
from sys import intern

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
    decode_views,
    event_from_object,
    parse_event,
)
from hotpath.coview.interests import RecentInterests
from hotpath.coview.pairs import KeyIds, count_pairs
from hotpath.coview.settings import StreamingSettings
from hotpath.coview.topk import ArrayCoviewState
from hotpath.coview.windows import LATE_DROPPED, NO_EPOCH, PartitionWindower, WindowSpec
from hotpath.errors import BadInput
from hotpath.streams.base import LogRecord

__all__ = ["ShardCore", "ShardSnapshot", "SNAPSHOT_VERSION", "shard_of", "partitions_of", "Contribution", "Ingested", "OrderRow"]

OrderRow = tuple[int, str, str, int, int, str]
"""``(offset, master, cat, qty, ts_ms, pid)`` of one order event; the offset makes its write to the
rollup store idempotent (:meth:`hotpath.stores.rollups.RollupStore.record_order_batch`)."""

Contribution = tuple[int, list[str], np.ndarray, np.ndarray]
"""``(epoch, names, keys, sizes)``: baskets (a basket: the distinct keys of one fired window) sent
from the shard owning a partition to every shard owning a key of them, as arrays: ``keys`` indexes
``names`` (every basket's keys one after the other), ``sizes`` the length of each basket. Compact
to pickle (Ray sends it through the driver) and turned into state ids with one lookup per name."""


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
    orders: int = 0
    newest_sent_ms: int = 0
    oldest_sent_ms: int = 0


class _Partition:
    __slots__ = ("offset", "windower", "interests", "newest_sent_ms")

    def __init__(self, offset: int, windower: PartitionWindower, interests: RecentInterests) -> None:
        self.offset = offset
        self.windower = windower
        self.interests = interests
        self.newest_sent_ms = 0


SNAPSHOT_VERSION = 3
"""Version of :class:`ShardSnapshot` blobs written now (1 and 2 were positional tuples)."""


@dataclass(slots=True)
class ShardSnapshot:
    """One shard's checkpointed state: written as a versioned dict (named fields), read from any version.

    Version 1 blobs are 7-tuples (baskets pending as tuples of names, no orders: ``old_pending``),
    version 2 blobs 8-tuples told apart by their length; both still load."""

    index: int
    shards: int
    parts: dict
    """partition -> (next offset, windower snapshot, recent-interests snapshot, newest sent ms)"""
    state: object
    """The key state's own snapshot (:meth:`ArrayCoviewState.snapshot`)."""
    pending: dict | None
    """epoch -> pending basket chunks (None in a version-1 blob: see ``old_pending``)."""
    dims_dirty: set
    counts: Counter
    orders: dict
    old_pending: dict | None = None
    version: int = SNAPSHOT_VERSION

    _FIELDS = ("index", "shards", "parts", "state", "pending", "dims_dirty", "counts", "orders")

    def to_blob(self) -> bytes:
        data = {name: getattr(self, name) for name in self._FIELDS}
        return pickle.dumps({"version": SNAPSHOT_VERSION, **data}, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_blob(cls, blob: bytes) -> ShardSnapshot:
        obj = pickle.loads(blob)
        if isinstance(obj, dict):
            version = obj.get("version")
            if version != SNAPSHOT_VERSION:
                raise BadInput(f"co-view shard snapshot version {version!r} is not one this build reads")
            return cls(**{name: obj[name] for name in cls._FIELDS}, version=version)
        if isinstance(obj, tuple) and len(obj) == 7:  # version 1
            index, shards, parts, state, old_pending, dims_dirty, counts = obj
            return cls(index, shards, parts, state, None, dims_dirty, counts, {}, old_pending=old_pending, version=1)
        if isinstance(obj, tuple) and len(obj) == 8:  # version 2
            return cls(*obj, version=2)
        raise BadInput("not a co-view shard snapshot")


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
        self.orders: dict[int, list[OrderRow]] = {}
        """Order events read and not yet handed to the rollup sink, per partition, in offset order."""
        self.pending: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        """Baskets waiting for their epoch: ``(state ids of every basket's keys, basket sizes)`` chunks."""
        self.counts: Counter = Counter()
        self._owner: dict[str, int] = {}
        self._owned = np.zeros(0, dtype=bool)

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
        raws = [r.value for r in fresh]
        wire = decode_views(raws)
        objs = decode_batch(raws) if wire is None else None
        batch = win.batch_ok()
        views: list[tuple[str, str, int]] = []  # (session, key, ts), for the windower
        viewers: list[tuple[str, str, int]] = []  # (user, key, ts), for recent interests
        view_recs: list[LogRecord] = []
        newest = oldest = 0
        order_rows: list[OrderRow] = []
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

        def general(r: LogRecord, o: object | None) -> None:
            """Any record off the fast paths: checked one by one (poison, watermark, order)."""
            nonlocal newest, oldest
            try:
                ev = event_from_object(o) if o is not None else parse_event(r.value)
            except PoisonedEvent as exc:
                out.dead.append((r, exc.reason))
                return
            kind = ev.type
            if kind == "view":
                cat = intern(ev.cat)
                views.append((ev.session, cat, ev.ts))
                viewers.append((ev.user, cat, ev.ts))
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
            else:  # an order: to the rollup store, keyed by its offset (see OrderRow)
                order_rows.append((r.offset, ev.master, ev.cat, ev.qty, ev.ts, ev.pid))

        if wire is not None:
            # fastest path, the usual batch: msgspec decoded and checked every record's fields
            # (decode_views); only views with a sane ts stay here
            for r, w in zip(fresh, wire):
                ts = w.ts
                if w.type == "view" and lo <= ts < hi:
                    user, cat = w.user, intern(w.cat)
                    views.append((w.session or user, cat, ts))
                    viewers.append((user, cat, ts))
                    view_recs.append(r)
                    sent = w.sent_ms
                    if sent and int(sent):
                        sent = int(sent)
                        if sent > newest:
                            newest = sent
                        if not oldest or sent < oldest:
                            oldest = sent
                    continue
                general(r, None)
        else:
            for i, r in enumerate(fresh):
                o = objs[i] if objs is not None else None
                if o is not None:
                    # fast path: a view whose fields are all short strings and an int ts
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
                        cat = intern(cat)  # one object per key name: far smaller and faster snapshots
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
                general(r, o)
        out.views += len(views)
        flush()
        st.offset = fresh[-1].offset + 1
        win.tick()
        rec.expire(win.watermark)
        if newest > st.newest_sent_ms:
            st.newest_sent_ms = newest
        if order_rows:
            self.orders.setdefault(partition, []).extend(order_rows)
            self.counts["orders"] += len(order_rows)
            out.orders = len(order_rows)
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
        """Baskets of fired windows, for every shard owning one of their keys, as arrays: per
        destination, ``(epoch, names, keys, sizes)`` (see :data:`Contribution`)."""
        by_epoch: dict[int, list[tuple[str, ...]]] = {}
        for p in sorted(self.parts):
            for epoch, baskets in self.parts[p].windower.drain().items():
                lst = by_epoch.get(epoch)
                if lst is None:
                    by_epoch[epoch] = baskets
                else:
                    lst.extend(baskets)
        if not by_epoch:
            return {}
        local = KeyIds()
        names = local.names  # one list for the whole drain (shared by every contribution)
        flat = [(epoch, *local.flatten(by_epoch[epoch])) for epoch in sorted(by_epoch)]
        out: dict[int, list[Contribution]] = {}
        if self.shards == 1:
            out[0] = [(epoch, names, k, sizes) for epoch, k, sizes in flat]
            return out
        owner = np.fromiter(map(self._owner_of, names), dtype=np.int32, count=len(names))
        for epoch, k, sizes in flat:
            starts = np.cumsum(sizes) - sizes
            dest_of_key = owner[k]
            for d in np.unique(dest_of_key).tolist():
                hit = np.logical_or.reduceat(dest_of_key == d, starts)
                if hit.all():
                    out.setdefault(d, []).append((epoch, names, k, sizes))
                else:
                    out.setdefault(d, []).append((epoch, names, k[np.repeat(hit, sizes)], sizes[hit]))
        return out

    def drain_recent(self) -> dict[str, tuple[bool, dict[str, float | None]]]:
        """The users' recent-interest writes gathered since the last drain (see
        :meth:`RecentInterests.drain_changes`)."""
        out: dict[str, tuple[bool, dict[str, float | None]]] = {}
        for p in sorted(self.parts):
            out.update(self.parts[p].interests.drain_changes())
        return out

    # ---------------------------------------------------------------- stage 2: keys
    def receive(self, contributions: Iterable[Contribution]) -> None:
        """Baskets routed to this shard; their keys become state ids at once (cheap to keep)."""
        applied = self.state.applied_epoch
        sids: dict[int, tuple[list[str], np.ndarray]] = {}
        for epoch, names, keys, sizes in contributions:
            if applied is not None and epoch <= applied:
                # Cannot happen while partitions report complete epochs truthfully; never lose it.
                self.counts["late_pairs"] += len(sizes)
                epoch = applied + 1
            got = sids.get(id(names))
            if got is None:
                got = sids[id(names)] = (names, self.state.ids_of(names))
            chunk = (got[1][keys], np.asarray(sizes, dtype=np.int64))
            lst = self.pending.get(epoch)
            if lst is None:
                self.pending[epoch] = [chunk]
            else:
                lst.append(chunk)

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

    def _owned_pairs(self, chunks: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pair counts ``(a, b, n)`` (state ids) of the baskets, for the first keys this shard owns."""
        k = np.concatenate([c[0] for c in chunks]) if len(chunks) > 1 else chunks[0][0]
        sizes = np.concatenate([c[1] for c in chunks]) if len(chunks) > 1 else chunks[0][1]
        g = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
        return count_pairs(g, k.astype(np.int64, copy=False), len(self.state.names), self._owned_ids())

    def _owned_ids(self) -> np.ndarray:
        """Whether this shard owns each state id (grown as the state learns names)."""
        names = self.state.names
        have = len(self._owned)
        if have < len(names):
            more = np.fromiter((self._owner_of(n) == self.index for n in names[have:]), dtype=bool,
                               count=len(names) - have)
            self._owned = np.concatenate([self._owned, more])
        return self._owned

    def _owner_of(self, key: str) -> int:
        d = self._owner.get(key)
        if d is None:
            if len(self._owner) > 200_000:
                self._owner.clear()
            d = self._owner[key] = shard_of(key, self.shards)
        return d

    def order_count(self) -> int:
        return sum(map(len, self.orders.values()))

    def drain_orders(self) -> dict[int, list[OrderRow]]:
        """Order events read since the last drain, per partition (offset order)."""
        out, self.orders = self.orders, {}
        return out

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
        return self.snapshot_later()()

    def snapshot_later(self) -> Callable[[], bytes]:
        """:meth:`snapshot` as of now, the users' recent interests pickled by the returned function
        (see :meth:`RecentInterests.snapshot_later`: it may run in another thread while the shard
        goes on); the rest is captured now."""
        later = {p: st.interests.snapshot_later() for p, st in self.parts.items()}
        now = {p: (st.offset, st.windower.snapshot(), st.newest_sent_ms) for p, st in self.parts.items()}
        rest = (
            self.state.snapshot(), {e: list(chunks) for e, chunks in self.pending.items()}, set(self.dims_dirty),
            Counter(self.counts), {p: list(rows) for p, rows in self.orders.items()},
        )
        index, shards = self.index, self.shards

        def finish() -> bytes:
            parts = {p: (offset, win, later[p](), sent) for p, (offset, win, sent) in now.items()}
            return ShardSnapshot(index, shards, parts, *rest).to_blob()

        return finish

    @classmethod
    def restore(
        cls, blob: bytes, settings: StreamingSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> ShardCore:
        snap = ShardSnapshot.from_blob(blob)
        index, shards, state, pending, old_pending = snap.index, snap.shards, snap.state, snap.pending, snap.old_pending
        dims_dirty, counts, orders = snap.dims_dirty, snap.counts, snap.orders
        core = cls(index, shards, [], settings, clock=clock)
        for p, (offset, win, rec, sent) in snap.parts.items():
            st = _Partition(offset, PartitionWindower.restore(win, clock=clock), RecentInterests.restore(rec))
            st.newest_sent_ms = sent
            core.parts[p] = st
        core.state = ArrayCoviewState.restore(state)
        core.dims_dirty, core.counts, core.orders = dims_dirty, counts, orders
        if pending is None:
            core.pending = {}
            for epoch, baskets in old_pending.items():
                local = KeyIds()
                k, sizes = local.flatten(baskets)
                core.receive([(epoch, local.names, k, sizes)])
        else:
            core.pending = pending
        return core
