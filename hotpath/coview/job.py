"""The streaming co-view job in-process, and feeding it events (no Ray; the job on Ray is
:mod:`hotpath.graphs.coview_app`).

- :class:`LocalJob` — the same coordinator and shards in this process (tests, no Ray).
- :func:`produce_events` / :func:`punctuate` — append events (paced) and end-of-stream watermarks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from hotpath.config import Settings
from hotpath.coview.coordinator import JobCoordinator
from hotpath.coview.events import ViewEvent
from hotpath.coview.generator import encode_fast
from hotpath.coview.runner import ShardRunner
from hotpath.errors import NotFound
from hotpath.stores.base import DimensionStore, HotCache
from hotpath.streams.base import EventIn, EventLog, partition_for

if TYPE_CHECKING:  # the DuckDB adapter is injected; only its type is named here
    from hotpath.stores.rollups import RollupStore

__all__ = [
    "LocalJob",
    "produce_events",
    "punctuate",
    "key_for_partition",
]


# --------------------------------------------------------------------------- producing
def key_for_partition(partition: int, partitions: int) -> bytes:
    """A record key that :func:`partition_for` sends to ``partition``."""
    i = 0
    while True:
        key = b"wm-%d" % i
        if partition_for(key, partitions) == partition:
            return key
        i += 1


async def ensure_topic(log: EventLog, topic: str, partitions: int) -> int:
    try:
        return await log.partitions(topic)
    except NotFound:
        await log.create_topic(topic, partitions)
        return await log.partitions(topic)


async def produce_events(
    log: EventLog,
    topic: str,
    events: Iterable[ViewEvent | tuple[bytes | None, bytes]],
    *,
    rate: float | None = None,
    batch: int = 2000,
    stamp: bool = True,
    partitions: int = 4,
    wall_ms: Callable[[], float] = lambda: time.time() * 1000.0,
) -> int:
    """Append events (keyed by user) at up to ``rate`` per second (as fast as possible when None).

    ``stamp`` sets each view's ``sent_ms`` to the wall time of its batch (freshness measurement).
    Raw ``(key, value)`` pairs go as they are. Returns the number appended.
    """
    await ensure_topic(log, topic, partitions)
    n = 0
    t0 = time.monotonic()
    buf: list[EventIn] = []
    if rate:
        batch = max(1, min(batch, int(rate / 20)))  # pace in steps of about 50 ms

    async def flush() -> None:
        nonlocal buf
        if buf:
            await log.append(topic, buf)
            buf = []
        if rate:
            ahead = n / rate - (time.monotonic() - t0)
            if ahead > 0:
                await asyncio.sleep(ahead)

    now = int(wall_ms())
    for ev in events:
        if isinstance(ev, ViewEvent):
            if stamp:
                ev = ViewEvent(ev.type, ev.user, ev.session, ev.cat, ev.ts, ev.pid, ev.master, now, ev.qty)
            buf.append(EventIn(value=encode_fast(ev), key=ev.user.encode() if ev.user else None))
        else:
            buf.append(EventIn(value=ev[1], key=ev[0]))
        n += 1
        if len(buf) >= batch:
            await flush()
            now = int(wall_ms())
    await flush()
    return n


async def punctuate(log: EventLog, topic: str, ts_ms: int) -> None:
    """A watermark record on every partition: the stream promises nothing older than ``ts_ms``."""
    n = await log.partitions(topic)
    body = b'{"type":"watermark","ts":%d}' % ts_ms
    await log.append(topic, [EventIn(value=body, key=key_for_partition(p, n)) for p in range(n)])


# --------------------------------------------------------------------------- in-process job
class _LocalRef:
    def __init__(self, runner: ShardRunner) -> None:
        self.runner = runner

    async def restore(self, cid, partitions):
        return await self.runner.restore(cid, partitions)

    async def step(self, inbound, complete, trigger_sent_ms=0):
        return await self.runner.step(inbound, complete, trigger_sent_ms)

    async def checkpoint(self, cid, inbound, complete, trigger_sent_ms=0, wait=True):
        return await self.runner.checkpoint(cid, inbound, complete, trigger_sent_ms, wait)

    async def stats(self):
        return await self.runner.stats()


class LocalJob:
    """Coordinator and shard runners in this process, over the given stores (no Ray)."""

    def __init__(
        self,
        settings: Settings,
        *,
        event_log: EventLog,
        cache: HotCache,
        dims: DimensionStore | None,
        rollups: RollupStore | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.event_log, self.cache, self.dims, self.rollups = event_log, cache, dims, rollups
        self.clock = clock
        self.runners: list[ShardRunner] = []
        self.crash_next = False
        self.coordinator = JobCoordinator(
            settings.streaming, settings.runtime_dir, event_log, self._shards, clock=clock
        )

    async def _shards(self, recreate: bool) -> list[_LocalRef]:
        s = self.settings.streaming
        if recreate or not self.runners:
            for r in self.runners:
                await r.close()
            self.runners = [
                ShardRunner(i, s.shards, s, self.settings.runtime_dir, event_log=self.event_log, cache=self.cache,
                            dims=self.dims, rollups=self.rollups, clock=self.clock)
                for i in range(s.shards)
            ]
        return [_LocalRef(r) for r in self.runners]

    async def run_until_caught_up(self, *, idle_rounds: int = 2, timeout_s: float = 120.0) -> dict[str, Any]:
        """Rounds until every partition is read to its end, then a checkpoint; returns the status."""
        c = self.coordinator
        if not c.shards:
            await c.prepare()
        deadline = time.monotonic() + timeout_s
        quiet = 0
        last = self.clock()
        while quiet < idle_rounds:
            if time.monotonic() > deadline:
                raise TimeoutError("the co-view job did not catch up in time")
            try:
                read = await c.round()
                await c.commit_saved()
                if self.clock() - last >= self.settings.streaming.checkpoint_interval_s:
                    if await c.begin_checkpoint() is not None:  # as the driver does: saved behind the sinks
                        last = self.clock()
            except Exception as exc:
                await c.recover(exc)
                quiet = 0
                continue
            ends = {p: await self.event_log.end_offset(self.settings.streaming.topic, p) for p in range(c.partitions)}
            quiet = quiet + 1 if read == 0 and all(c.offsets.get(p, 0) >= e for p, e in ends.items()) else 0
        await c.checkpoint()
        return c.status()

    async def close(self) -> None:
        for r in self.runners:
            await r.close()
        self.coordinator.close()
