"""Ray actors of the streaming co-view job: the shards and the driver that coordinates them.

:class:`CoviewShard` — fault-tolerance contract
------------------------------------------------
A shard owns the event-log partitions ``p % shards == index`` and the keys
``crc32(key) % shards == index``. Its state (user windows, watermarks, recent interests, the
owned keys' decayed top-K scores, pair counts waiting for their epoch) is a
:class:`hotpath.coview.shard.ShardCore`; this actor is a thin shell over a
:class:`hotpath.coview.runner.ShardRunner`.

- **Checkpointed**: the whole state *and* the offsets of the next record of each owned partition,
  in one SQLite transaction, in ``{runtime_dir}/coview/{job_id}/shard-{index}.sqlite`` — on the
  driver's interval (``streaming.checkpoint_interval_s``) and on shutdown. Order: sink writes
  flushed, then state + offsets saved, then the driver commits the checkpoint id once every
  shard saved it (``job.sqlite``).
- **Recovery**: if any shard dies (or the whole job), every shard is restored to the last
  committed checkpoint and re-reads its partitions from the saved offsets. Processing depends
  only on the records (event time, per-partition order, epochs applied in order once complete),
  so the replay recomputes exactly what was lost: no event counted twice, none lost.
- **Idempotent calls**: ``restore`` (any number of times), and every sink write: Redis
  ``cat:co_view:{key}`` and ``user:recent_cats:{user}`` are replaced whole (``zreplace``), dimension
  rows are upserted whole, order events are appended to the rollup store keyed by their
  ``(topic, partition, offset)`` (positions already recorded are skipped, in the same transaction). Replayed writes converge to the same final contents. Dead-letter and
  late records are keyed by ``partition:offset`` (at-least-once, de-duplicable by key).
- ``step`` and ``checkpoint`` are *not* idempotent on their own; only the driver calls them, one at
  a time, and a failed call is answered by a restore.
- Bounded: ``max_records_per_step`` per partition per step, ``sink_queue_max`` queued sink batches
  (a slow sink blocks the step: backpressure), users and keys capped per partition / shard.

:class:`CoviewDriver` runs the :class:`hotpath.coview.coordinator.JobCoordinator` loop as a
background task; it holds no state of its own beyond the commit record.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from typing import Any

import ray

from hotpath.config import Settings
from hotpath.coview.coordinator import JobCoordinator
from hotpath.coview.runner import ShardRunner
from hotpath.coview.shard import Contribution

__all__ = [
    "CoviewShard", "CoviewDriver", "EventFeeder", "RayShardRef", "shard_actor_name", "driver_actor_name",
    "shard_placement", "remove_shard_placement",
]

log = logging.getLogger(__name__)


def shard_actor_name(job_id: str, index: int) -> str:
    return f"{job_id}-shard-{index}"


def driver_actor_name(job_id: str) -> str:
    return f"{job_id}-driver"


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)
class CoviewShard:
    """One co-view shard (see the module docstring for its fault-tolerance contract)."""

    def __init__(self, settings: Settings, index: int) -> None:
        import gc

        # The keyed state is millions of small objects without cycles: the default thresholds ran
        # full collections over all of them (~18% of the shard's CPU, pauses of ~100 ms). A young
        # collection of 100,000 objects still paused a live shard 80-230 ms; 25,000 (and 4x as
        # many of them per older collection, so those stay as rare) pause it a quarter as long.
        gc.set_threshold(25_000, 200, 1_000)
        self._gc = _GcPauses()
        gc.callbacks.append(self._gc)
        from hotpath.stores.factory import open_dimension_store, open_hot_cache
        from hotpath.streams.factory import open_event_log
        from hotpath.stores.redis_fast import zwriter_for
        from hotpath.stores.rollups import open_rollup_store

        self.settings = settings
        s = settings.streaming
        dims = open_dimension_store(settings)
        dims.ensure_schema()
        # Several shard processes write the one DuckDB file: each opens it only for a write.
        rollups = open_rollup_store(settings, release=True)
        cache = open_hot_cache(settings)
        self.runner = ShardRunner(
            index, s.shards, s, settings.runtime_dir,
            event_log=open_event_log(settings), cache=cache, dims=dims, rollups=rollups, zwriter=zwriter_for(cache),
        )

    def pid(self) -> int:
        return os.getpid()

    def node(self) -> dict[str, Any]:
        """The Ray node this shard runs on (id and address) and its PID."""
        ctx = ray.get_runtime_context()
        return {"node_id": ctx.get_node_id(), "ip": ray.util.get_node_ip_address(), "pid": os.getpid()}

    async def restore(self, cid: int | None, partitions: Sequence[int]) -> dict[str, Any]:
        return await self.runner.restore(cid, partitions)

    async def step(self, inbound: list[Contribution], complete: int, trigger_sent_ms: int = 0) -> dict[str, Any]:
        return await self.runner.step(inbound, complete, trigger_sent_ms)

    async def checkpoint(
        self, cid: int, inbound: list[Contribution], complete: int, trigger_sent_ms: int = 0, wait: bool = True
    ) -> dict[str, Any]:
        return await self.runner.checkpoint(cid, inbound, complete, trigger_sent_ms, wait)

    async def stats(self) -> dict[str, Any]:
        return {**await self.runner.stats(), "gc": self._gc.summary()}

    def reset_lags(self) -> None:
        self.runner.reset_lags()
        self._gc.reset()

    async def close(self) -> None:
        await self.runner.close()


class _GcPauses:
    """A ``gc.callbacks`` entry: how many collections of each generation ran and their longest
    pause (a full collection over millions of state objects stops the shard; shown in stats)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.count = [0, 0, 0]
        self.max_ms = [0.0, 0.0, 0.0]
        self.total_ms = [0.0, 0.0, 0.0]
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        import time

        if phase == "start":
            self._t0 = time.perf_counter()
            return
        g = info.get("generation", 0)
        ms = (time.perf_counter() - self._t0) * 1000.0
        self.count[g] += 1
        self.total_ms[g] += ms
        self.max_ms[g] = max(self.max_ms[g], ms)

    def summary(self) -> dict[str, Any]:
        return {"count": list(self.count), "max_ms": [round(x, 1) for x in self.max_ms],
                "total_ms": [round(x, 1) for x in self.total_ms]}


def shard_placement(job_id: str, placement: str, resource: str | None, shards: int) -> list[dict[str, Any]]:
    """Ray actor options of each shard for ``streaming.placement`` (see its docstring).

    ``spread``: a detached placement group ``{job_id}-shards`` (reused when the job restarts) of one
    bundle per shard, strategy ``SPREAD``: Ray puts the bundles on as many nodes as it can, and when
    a node dies it reschedules that node's bundles on the survivors, where the shards restart. Each
    bundle holds 0.001 CPU (or 0.001 of ``resource`` when set: only nodes offering it then take
    shards). A soft node affinity would not do: Ray 2.60 ignores it for actors that ask for no
    resources (a quarter to a half of them landed elsewhere)."""
    from hotpath.errors import ConfigError

    if placement == "any":
        return [{} for _ in range(shards)]
    from ray.util.placement_group import get_placement_group, placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    name = f"{job_id}-shards"
    bundle = {resource or "CPU": 0.001}
    try:
        pg = get_placement_group(name)
        if len(pg.bundle_specs) != shards or any(b != bundle for b in pg.bundle_specs):
            ray.util.remove_placement_group(pg)  # the job's shard count or resource changed
            raise ValueError
    except ValueError:
        pg = placement_group([dict(bundle) for _ in range(shards)], strategy="SPREAD", name=name, lifetime="detached")
    if not pg.wait(60):
        ray.util.remove_placement_group(pg)
        where = f"the resource {resource!r}" if resource else "CPU"
        raise ConfigError(f"streaming.placement=spread: Ray could not place {shards} shard bundles of {bundle} "
                          f"within 60 s (no alive node offers {where}?)")
    return [
        {"scheduling_strategy": PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=i)}
        for i in range(shards)
    ]


def remove_shard_placement(job_id: str) -> None:
    """Remove the job's placement group, if any (after its shards were killed)."""
    from ray.util.placement_group import get_placement_group

    try:
        ray.util.remove_placement_group(get_placement_group(f"{job_id}-shards"))
    except ValueError:
        pass


class RayShardRef:
    """A :class:`~hotpath.coview.coordinator.ShardRef` over a :class:`CoviewShard` handle."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def restore(self, cid, partitions):
        return await self.handle.restore.remote(cid, list(partitions))

    async def step(self, inbound, complete, trigger_sent_ms=0):
        return await self.handle.step.remote(inbound, complete, trigger_sent_ms)

    async def checkpoint(self, cid, inbound, complete, trigger_sent_ms=0, wait=True):
        return await self.handle.checkpoint.remote(cid, inbound, complete, trigger_sent_ms, wait)

    async def stats(self):
        return await self.handle.stats.remote()


@ray.remote(num_cpus=0, max_restarts=0)
class CoviewDriver:
    """Runs the job's coordinator loop; ``status()``, ``stats()``, ``stop()`` from outside."""

    def __init__(self, settings: Settings) -> None:
        from hotpath.streams.factory import open_event_log

        self.settings = settings
        self.log = open_event_log(settings)
        self.handles: list[Any] = []
        self.coordinator = JobCoordinator(settings.streaming, settings.runtime_dir, self.log, self._shards)
        self.task: asyncio.Task | None = None
        self.error: str | None = None

    async def _shards(self, recreate: bool) -> list[RayShardRef]:
        s = self.settings.streaming
        if not self.handles:
            self.handles = [
                CoviewShard.options(name=shard_actor_name(s.job_id, i), get_if_exists=True, **opts).remote(self.settings, i)
                for i, opts in enumerate(shard_placement(s.job_id, s.placement, s.placement_resource, s.shards))
            ]
        # Restarted actors (max_restarts) keep their handles; a restore call waits for them.
        return [RayShardRef(h) for h in self.handles]

    async def start(self) -> dict[str, Any]:
        if self.task is None:
            await self.coordinator.prepare()
            self.task = asyncio.create_task(self._run())
        return self.coordinator.status()

    async def _run(self) -> None:
        try:
            await self.coordinator.run()
        except Exception as exc:  # the loop recovers from shard failures; anything else is reported
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("co-view job stopped")

    async def status(self) -> dict[str, Any]:
        st = self.coordinator.status()
        st["error"] = self.error
        return st

    async def stats(self) -> list[dict[str, Any]]:
        return await self.coordinator.shard_stats()

    def shard_handles(self) -> list[Any]:
        return list(self.handles)

    async def shard_nodes(self) -> list[dict[str, Any]]:
        """Where each shard runs now (node id, address, PID)."""
        return list(await asyncio.gather(*(h.node.remote() for h in self.handles)))

    async def shard_pids(self) -> list[int]:
        return list(await asyncio.gather(*(h.pid.remote() for h in self.handles)))

    async def stop(self) -> dict[str, Any]:
        """Stop after a final checkpoint; returns the final status."""
        self.coordinator.stop()
        if self.task is not None:
            await self.task
        return await self.status()

    async def shutdown_shards(self) -> None:
        for h in self.handles:
            try:
                await h.close.remote()
            except Exception:
                pass
            ray.kill(h, no_restart=True)
        self.handles = []
        remove_shard_placement(self.settings.streaming.job_id)


@ray.remote(num_cpus=0, max_restarts=-1)
class EventFeeder:
    """Feeds the job's topic with generated views for the demo (``hotpath up``): every second,
    ``sessions_per_s`` new sessions whose event time runs ``speedup`` times faster than the wall
    clock, so 15-minute windows close every few seconds and co-views visibly stream in.

    The sessions view the recommendation catalog's own leaves and users (the catalog is generated
    again from ``settings.recs.catalog``, deterministic per seed), with trend partners rotating
    every minute (:mod:`hotpath.coview.catalog_feed`): ``/v1/recs/related`` for a master of a
    trending leaf shows the partner's best sellers under the ``co_view`` signal, then the next's."""

    def __init__(self, settings: Settings, *, sessions_per_s: int = 100, speedup: float = 60.0) -> None:
        from hotpath.coview.catalog_feed import CatalogFeed, FeedSettings
        from hotpath.recs.catalog import generate
        from hotpath.streams.factory import open_event_log

        self.settings = settings
        self.log = open_event_log(settings)
        self.sessions_per_s, self.speedup = sessions_per_s, speedup
        self.feed = CatalogFeed(generate(settings.recs.catalog), FeedSettings(sessions_per_tick=sessions_per_s))
        self.produced = 0
        self._tick = 0
        self._running = False
        self._stop = False

    def trends(self) -> dict[str, str]:
        """Trending leaf -> its partner now (what the related endpoint should start showing)."""
        return self.feed.trends(self.feed.period_of(self._tick))

    async def run(self) -> None:
        import time

        from hotpath.coview.job import produce_events

        if self._running:  # `hotpath up` again finds the detached feeder already feeding
            return
        self._running = True
        s = self.settings.streaming
        t0, ev0 = time.time(), int(time.time() * 1000)
        self._tick = 0
        while not self._stop:
            now_ev = ev0 + int((time.time() - t0) * 1000 * self.speedup)
            events = self.feed.tick(self._tick, now_ev, int(1000 * self.speedup))
            try:
                self.produced += await produce_events(self.log, s.topic, events, partitions=s.partitions)
            except Exception:
                log.exception("co-view feeder: append failed; going on")
            self._tick += 1
            await asyncio.sleep(max(0.0, t0 + self._tick - time.time()))

    def stop(self) -> int:
        self._stop = True
        return self.produced
