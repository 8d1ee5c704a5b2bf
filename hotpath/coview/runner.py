"""One shard at run time, without Ray: reads its partitions, feeds :class:`ShardCore`, writes the
sinks, saves checkpoints. The Ray actor (:mod:`hotpath.actors.coview_shard`) is a shell around it;
tests drive it in-process.

The coordinator calls, strictly one at a time:

- ``restore(cid, partitions)``: state and offsets of checkpoint ``cid`` (fresh when ``None``);
- ``step(inbound, complete, trigger_sent_ms)``: take pair counts routed from other shards, apply the
  epochs every partition completed, read up to ``max_records_per_step`` per partition, queue sink
  writes (while busy, gathered for up to ``sink_interval_s`` — ``recent_interval_s`` for users'
  recent interests — and ``sink_backlog_interval_s`` while a step reads full batches: each changed
  key written once with its newest value), and return the pair counts for other shards, the
  partitions' complete epochs and offsets, and whether it read a full batch (``behind``);
- ``checkpoint(cid, inbound, complete, trigger_sent_ms, wait)``: the same without reading, plus the
  order events gathered since the last one and (every ``dimension_interval_s``, and always with
  ``wait``) the dimension rows of the keys changed since they were last written, then a snapshot
  of state + offsets.
  With ``wait`` it flushes the sinks and saves the snapshot under ``cid`` in one transaction before
  returning; without, the snapshot is queued behind the sink writes as a *barrier* and saved by the
  sink thread once every earlier write landed (the shard goes on meanwhile), and later reports say
  ``saved: cid``. Either way: sinks, then state + offsets. Reports only count checkpoints begun
  since the last ``restore``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hotpath.coview.checkpoint import ShardCheckpoints, checkpoint_dir
from hotpath.coview.settings import StreamingSettings
from hotpath.coview.shard import Contribution, ShardCore
from hotpath.coview.sinks import SinkBatch, SinkWriter
from hotpath.stores.base import DimensionStore, HotCache
from hotpath.streams.base import EventIn, EventLog, LogRecord

if TYPE_CHECKING:  # the DuckDB adapter is injected; only its type is named here
    from hotpath.stores.redis_fast import ZWriter
    from hotpath.stores.rollups import RollupStore

__all__ = ["ShardRunner", "dlq_topic", "late_topic"]

log = logging.getLogger(__name__)


_PHASES = ("take", "read", "ingest", "gather", "submit", "outbox")
"""The phases of a step, in order (``slow_steps`` lists their ms in this order)."""


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


def late_topic(topic: str) -> str:
    return f"{topic}.late"


def _side_record(r: LogRecord, reason: str) -> EventIn:
    body = {
        "reason": reason,
        "topic": r.topic,
        "partition": r.partition,
        "offset": r.offset,
        "value": r.value.decode("utf-8", errors="replace"),
    }
    # The key names the source position: a replay after a failure re-sends the same keys.
    return EventIn(value=json.dumps(body).encode(), key=f"{r.partition}:{r.offset}".encode())


class ShardRunner:
    """One shard's loop body; see the module docstring."""

    def __init__(
        self,
        index: int,
        shards: int,
        streaming: StreamingSettings,
        runtime_dir,
        *,
        event_log: EventLog,
        cache: HotCache,
        dims: DimensionStore | None,
        rollups: RollupStore | None = None,
        clock: Callable[[], float] = time.monotonic,
        zwriter: ZWriter | None = None,
    ) -> None:
        self.index, self.shards, self.settings = index, shards, streaming
        self.log, self.cache, self.dims = event_log, cache, dims
        # Records are only read for topic, partition, offset, key and value: a log may hand out its
        # own record objects with those attributes (KafkaEventLog.read_records) instead of LogRecords.
        self._read = getattr(event_log, "read_records", event_log.read)
        self.clock = clock
        self.ckpt = ShardCheckpoints(checkpoint_dir(runtime_dir, streaming.job_id) / f"shard-{index}.sqlite")
        self.sinks = SinkWriter(
            cache, dims, rollups=rollups, order_source=streaming.topic, prefix=streaming.key_prefix, recent_ttl_s=streaming.recent_ttl_s,
            queue_max=streaming.sink_queue_max, dim_batch=streaming.dimension_batch,
            dim_spread_s=min(streaming.dimension_spread_s, streaming.dimension_interval_s / 2), zwriter=zwriter,
        )
        self.core = ShardCore(index, shards, [], streaming, clock=clock)
        self.partitions: list[int] = []
        self.restored_cid: int | None = None
        self.side = {"dead": 0, "late": 0}
        self._co_dirty: set[str] = set()  # co-view keys changed, not yet gathered for the sink
        self._co_sent = 0
        self._recent_sent = 0
        self._now = time.monotonic  # when sink writes were gathered (tests replace it)
        self._flushed_at = self._recent_at = self._dims_at = self._now()
        self.step_ms: deque[float] = deque(maxlen=20_000)  # wall time of each step and checkpoint call
        self.checkpoint_ms: deque[float] = deque(maxlen=1_000)
        self.phase_s = dict.fromkeys(_PHASES, 0.0)
        """Seconds spent in each phase of the steps (summed; with ``slow_steps``, where time goes)."""
        self._phases_since = time.perf_counter()
        self.slow_steps: deque[list[float]] = deque(maxlen=200)
        """Steps over 150 ms: records read, then ms of take (epochs applied), read, ingest, gather, submit, outbox."""
        self.checkpoint_parts: deque[list[float]] = deque(maxlen=100)
        """Per checkpoint call, ms: take (epochs applied), gather (sink writes, dimension rows), submit, snapshot."""
        self.read_age_ms: deque[float] = deque(maxlen=20_000)
        """Per step that read stamped events: produced -> read, of the oldest (freshness's first leg)."""
        self._generation = 0
        self.saved: tuple[int, int] | None = None  # (generation, cid) of the newest checkpoint saved
        self.save_failed: tuple[int, int] | None = None

    # ---------------------------------------------------------------- lifecycle
    async def restore(self, cid: int | None, partitions: Sequence[int]) -> dict[str, Any]:
        await asyncio.to_thread(self.sinks.flush)  # older batches land before the replay's newer ones
        if cid is None:
            self.core = ShardCore(self.index, self.shards, list(partitions), self.settings, clock=self.clock)
        else:
            _, blob = self.ckpt.load(cid)
            self.core = ShardCore.restore(blob, self.settings, clock=self.clock)
            if sorted(self.core.parts) != sorted(partitions):
                raise RuntimeError(f"checkpoint {cid} of shard {self.index} holds other partitions")
        self.partitions = sorted(partitions)
        self.restored_cid = cid
        self._co_dirty, self._co_sent, self._recent_sent = set(), 0, 0  # the replay marks them again
        self._flushed_at = self._recent_at = self._dims_at = self._now()
        self._generation += 1  # checkpoints begun before this restore are never reported
        return self._report({})

    async def step(self, inbound: list[Contribution], complete: int, trigger_sent_ms: int = 0) -> dict[str, Any]:
        t0 = time.perf_counter()
        try:
            return await self._step(inbound, complete, trigger_sent_ms)
        finally:
            self.step_ms.append((time.perf_counter() - t0) * 1000.0)

    def _take(self, inbound: list[Contribution], complete: int, trigger_sent_ms: int) -> None:
        """Receive other shards' baskets, apply the epochs now complete, mark their keys dirty."""
        self.core.receive(inbound)
        changed = self.core.apply_epochs(complete)
        if changed:
            self._co_dirty |= changed
            if trigger_sent_ms and not self._co_sent:
                self._co_sent = trigger_sent_ms

    async def _step(self, inbound: list[Contribution], complete: int, trigger_sent_ms: int) -> dict[str, Any]:
        core, s = self.core, self.settings
        pc = time.perf_counter
        t = [pc()]
        self._take(inbound, complete, trigger_sent_ms)
        t.append(pc())
        read = self._read
        reads = await asyncio.gather(
            *(read(s.topic, p, core.parts[p].offset, max_records=s.max_records_per_step) for p in self.partitions)
        )
        n = sum(len(r) for r in reads)
        if n == 0 and self.partitions and s.read_timeout_s > 0:
            reads = await asyncio.gather(
                *(
                    read(s.topic, p, core.parts[p].offset, max_records=s.max_records_per_step,
                         timeout_s=s.read_timeout_s)
                    for p in self.partitions
                )
            )
            n = sum(len(r) for r in reads)
        t.append(pc())
        dead: list[EventIn] = []
        late: list[EventIn] = []
        oldest = 0
        for p, records in zip(self.partitions, reads):
            if not records:
                continue
            ing = core.ingest(p, records)
            dead.extend(_side_record(r, reason) for r, reason in ing.dead)
            late.extend(_side_record(r, "late") for r in ing.late)
            if ing.oldest_sent_ms and (not oldest or ing.oldest_sent_ms < oldest):
                oldest = ing.oldest_sent_ms
        if n == 0:
            core.tick()
        if oldest:
            self.read_age_ms.append(time.time() * 1000.0 - oldest)
            if not self._recent_sent or oldest < self._recent_sent:
                self._recent_sent = oldest
        t.append(pc())
        batch = SinkBatch()
        now = self._now()
        behind = any(len(r) >= s.max_records_per_step for r in reads)
        if n == 0 or now - self._flushed_at >= (s.sink_backlog_interval_s if behind else s.sink_interval_s):
            self._gather_coview(batch)
            self._flushed_at = now
        if n == 0 or now - self._recent_at >= (
            max(s.sink_backlog_interval_s, s.recent_interval_s) if behind else s.recent_interval_s
        ):
            self._gather_recent(batch)
            self._recent_at = now
        if core.orders and core.order_count() >= s.order_batch:
            batch.orders = core.drain_orders()
        if dead:
            await self.log.append(dlq_topic(s.topic), dead)
            self.side["dead"] += len(dead)
        if late:
            await self.log.append(late_topic(s.topic), late)
            self.side["late"] += len(late)
        t.append(pc())
        await self._submit(batch)
        t.append(pc())
        outbox = core.drain_outbox()
        t.append(pc())
        for name, a, b in zip(_PHASES, t, t[1:]):
            self.phase_s[name] += b - a
        if t[-1] - t[0] > 0.15:  # a slow step: where its time went
            self.slow_steps.append([n, *(round((b - a) * 1000, 1) for a, b in zip(t, t[1:]))])
        return self._report(outbox, read=n, behind=behind)

    async def checkpoint(
        self, cid: int, inbound: list[Contribution], complete: int, trigger_sent_ms: int = 0, wait: bool = True
    ) -> dict[str, Any]:
        t0 = time.perf_counter()
        try:
            return await self._checkpoint(cid, inbound, complete, trigger_sent_ms, wait)
        finally:
            self.checkpoint_ms.append((time.perf_counter() - t0) * 1000.0)

    async def _checkpoint(
        self, cid: int, inbound: list[Contribution], complete: int, trigger_sent_ms: int, wait: bool
    ) -> dict[str, Any]:
        core = self.core
        pc = time.perf_counter
        t = [pc()]
        self._take(inbound, complete, trigger_sent_ms)
        t.append(pc())
        batch = SinkBatch()
        self._gather(batch)
        if wait or self._now() - self._dims_at >= self.settings.dimension_interval_s:
            batch.dims = core.drain_dims()
            self._dims_at = self._now()
        batch.orders = core.drain_orders()
        t.append(pc())
        await self._submit(batch)
        t.append(pc())
        make_blob, offsets = core.snapshot_later(), core.offsets()
        t.append(pc())
        self.checkpoint_parts.append([round((b - a) * 1000, 1) for a, b in zip(t, t[1:])])
        if wait:
            await asyncio.to_thread(self.sinks.flush)
            blob = await asyncio.to_thread(make_blob)
            await asyncio.to_thread(self.ckpt.save, cid, offsets, blob)
            self.saved = (self._generation, cid)
        else:  # pickled and saved by the sink's cold lane once every write before it landed; reported by later calls
            gen = self._generation

            def save() -> None:
                try:
                    self.ckpt.save(cid, offsets, make_blob())
                    self.saved = (gen, cid)
                except Exception as exc:  # reported: the driver gives this checkpoint up
                    log.warning("co-view shard %d: saving checkpoint %d failed: %s", self.index, cid, exc)
                    self.save_failed = (gen, cid)

            if self.sinks.full():  # backpressure, without blocking the event loop
                await asyncio.to_thread(self.sinks.submit_barrier, save)
            else:
                self.sinks.submit_barrier(save)
        return self._report({})

    def _gather(self, batch: SinkBatch) -> None:
        """The co-view keys changed and the users seen since the last gathering, as of now."""
        self._gather_coview(batch)
        self._gather_recent(batch)

    def _gather_coview(self, batch: SinkBatch) -> None:
        if self._co_dirty:
            batch.coview = self.core.state.tops(sorted(self._co_dirty))
            batch.coview_sent_ms = self._co_sent
        self._co_dirty, self._co_sent = set(), 0

    def _gather_recent(self, batch: SinkBatch) -> None:
        batch.recent = self.core.drain_recent()
        batch.recent_sent_ms = self._recent_sent if batch.recent else 0
        self._recent_sent = 0

    def _deferred(self) -> bool:
        """Whether sink writes are waiting to be gathered (see ``sink_interval_s``)."""
        return bool(self._co_dirty) or any(
            st.interests.dirty or st.interests.forgotten for st in self.core.parts.values()
        )

    async def _submit(self, batch: SinkBatch) -> None:
        if batch.empty():
            return
        if self.sinks.full():
            await asyncio.to_thread(self.sinks.submit, batch)
        else:
            self.sinks.submit(batch)

    def _report(self, outbox: dict[int, list[Contribution]], **extra: Any) -> dict[str, Any]:
        core = self.core
        return {
            "shard": self.index,
            "outbox": outbox,
            "complete": core.complete_epochs(),
            "offsets": core.offsets(),
            "newest_sent": core.newest_sent(),
            "saved": self.saved[1] if self.saved and self.saved[0] == self._generation else None,
            "save_failed": self.save_failed[1] if self.save_failed and self.save_failed[0] == self._generation else None,
            **extra,
        }

    async def stats(self) -> dict[str, Any]:
        return {
            "shard": self.index,
            "partitions": self.partitions,
            "restored_cid": self.restored_cid,
            "counters": self.core.counters(),
            "offsets": self.core.offsets(),
            "sink": dict(self.sinks.written),
            "sink_pending": self.sinks.pending() + int(self._deferred()),
            "sink_blocked_s": round(self.sinks.blocked_s, 3),
            "side": dict(self.side),
            "cpu_s": time.process_time(),  # the whole process (the actor's), for CPU per event
            "coview_lag_ms": list(self.sinks.coview_lag_ms),
            "recent_lag_ms": list(self.sinks.recent_lag_ms),
            "step_ms": list(self.step_ms),
            "checkpoint_ms": list(self.checkpoint_ms),
            "read_age_ms": list(self.read_age_ms),
            "hot_write_ms": list(self.sinks.hot_write_ms),
            "checkpoint_parts_ms": list(self.checkpoint_parts),
            "slow_steps": list(self.slow_steps),
            "step_phases_s": {**{k: round(v, 3) for k, v in self.phase_s.items()},
                              "wall": round(time.perf_counter() - self._phases_since, 3)},
        }

    def reset_lags(self) -> None:
        self.sinks.coview_lag_ms.clear()
        self.sinks.recent_lag_ms.clear()
        self.step_ms.clear()
        self.checkpoint_ms.clear()
        self.read_age_ms.clear()
        self.slow_steps.clear()
        self.phase_s = dict.fromkeys(_PHASES, 0.0)
        self._phases_since = time.perf_counter()
        self.sinks.hot_write_ms.clear()

    async def close(self) -> None:
        await asyncio.to_thread(self.sinks.close)
        self.ckpt.close()
