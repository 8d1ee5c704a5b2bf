"""The streaming co-view job: start it on Ray, run it in-process, feed it events.

- :func:`start_coview_job` — the job on the running Ray cluster (a detached driver actor and its
  shard actors, :mod:`hotpath.actors.coview_shard`); returns a :class:`CoviewJobHandle`.
- :func:`start` — the ``hotpath up`` app starter: the job plus a generator feeding it.
- :class:`LocalJob` — the same coordinator and shards in this process (tests, no Ray).
- :func:`produce_events` / :func:`punctuate` — append events (paced) and end-of-stream watermarks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hotpath.config import Settings
from hotpath.coview.coordinator import JobCoordinator
from hotpath.coview.events import ViewEvent
from hotpath.coview.generator import encode_fast
from hotpath.coview.runner import ShardRunner
from hotpath.errors import NotFound
from hotpath.stores.base import DimensionStore, EventIn, EventLog, HotCache, partition_for
from hotpath.stores.rollups import RollupStore

__all__ = [
    "CoviewJobHandle",
    "LocalJob",
    "start_coview_job",
    "start",
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


# --------------------------------------------------------------------------- on Ray
@dataclass
class CoviewJobHandle:
    """The running job on Ray: its driver actor and a description for ``hotpath up``."""

    driver: Any
    settings: Settings

    def describe(self) -> dict[str, Any]:
        s = self.settings.streaming
        return {
            "job": s.job_id,
            "topic": s.topic,
            "shards": s.shards,
            "window": f"{s.window_kind} {s.window_s:g}s/{s.slide_s:g}s" if s.window_kind == "sliding"
            else f"session gap {s.session_gap_s:g}s",
            "redis_keys": [f"{s.key_prefix}cat:co_view:{{cat}}", f"{s.key_prefix}user:recent_cats:{{uid}}"],
            "checkpoints": str(self.settings.runtime_dir / "coview" / s.job_id),
        }

    def status(self) -> dict[str, Any]:
        import ray

        return ray.get(self.driver.status.remote())

    def stats(self) -> list[dict[str, Any]]:
        import ray

        return ray.get(self.driver.stats.remote())

    def stop(self, *, kill: bool = True) -> dict[str, Any]:
        """Final checkpoint, then (with ``kill``) the shards and the driver go."""
        import ray

        st = ray.get(self.driver.stop.remote())
        if kill:
            ray.get(self.driver.shutdown_shards.remote())
            ray.kill(self.driver, no_restart=True)
        return st


def _ensure_ray(settings: Settings) -> None:
    from hotpath.cluster.connect import connect_ray

    connect_ray(settings)


def start_coview_job(settings: Settings) -> CoviewJobHandle:
    """Start (or attach to) the co-view job on the Ray cluster; resumes from its last checkpoint."""
    import ray

    from hotpath.actors.coview_shard import CoviewDriver, driver_actor_name

    _ensure_ray(settings)
    deadline = time.monotonic() + 30.0
    while True:
        driver = CoviewDriver.options(
            name=driver_actor_name(settings.streaming.job_id), get_if_exists=True, lifetime="detached"
        ).remote(settings)
        try:
            ray.get(driver.start.remote())
            return CoviewJobHandle(driver, settings)
        except ray.exceptions.RayActorError:
            # a driver killed a moment ago may still hold the name: wait for Ray to let it go
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def start(settings: Settings, say: Callable[[str], None]) -> list:
    """``hotpath up`` app starter: the co-view job fed by a generator (event time 60x wall time)."""
    from hotpath.actors.coview_shard import EventFeeder
    from hotpath.cluster.apps import Endpoint

    handle = start_coview_job(settings)
    import ray

    feeder = EventFeeder.options(
        name=f"{settings.streaming.job_id}-feeder", get_if_exists=True, lifetime="detached"
    ).remote(settings)
    feeder.run.remote()
    d = handle.describe()
    say(f"  co-view job {d['job']}: {d['shards']} shards on topic {d['topic']}, {d['window']}")
    trends = ray.get(feeder.trends.remote(), timeout=60)
    leaf, partner = next(iter(trends.items()))
    say(
        f"  co-view demo: generated sessions pair {len(trends)} trending categories with a new partner "
        f"every minute (now {leaf} -> {partner}); within ~30 s the first related example below (a "
        f"master of {leaf}) lists the partner's best sellers under the co_view signal, and the "
        f"best-sellers example puts one in its first three; a minute later, the next partner's"
    )
    return [
        Endpoint("coview", "Redis keys", ", ".join(d["redis_keys"])),
        Endpoint("coview", "event topic", d["topic"]),
    ]
