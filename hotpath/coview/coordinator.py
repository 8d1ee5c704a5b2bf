"""The job's control loop: rounds over the shards, routing of pair counts, checkpoints, recovery.

Generic over *shard references*: anything with async ``restore``, ``step``, ``checkpoint`` and
``stats`` (a :class:`~hotpath.coview.runner.ShardRunner` in-process, or a Ray actor handle wrapped
by :class:`hotpath.actors.coview_shard.RayShardRef`). No Ray here.

Each round (at most one per ``min_step_s`` while no shard is behind: adaptive steps) calls ``step`` on every shard at once with the pair counts routed to it in the previous
round and the *global complete epoch* (the minimum over all partitions), then routes what they
return. Every ``checkpoint_interval_s`` it delivers what is in flight and has every shard snapshot
checkpoint ``cid`` without waiting for it (:meth:`JobCoordinator.begin_checkpoint`): each shard
saves its snapshot once its earlier sink writes landed and says so in a later report; when all
have, ``cid`` is committed. At most one checkpoint is in flight. On stop (and in
:meth:`JobCoordinator.checkpoint`) the checkpoint is taken and committed synchronously. On any
shard failure it restores every shard to the committed checkpoint and goes on: what was processed
since is replayed from the checkpointed offsets, deterministically, into idempotent sinks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from hotpath.coview.checkpoint import JobCommits, checkpoint_dir
from hotpath.coview.runner import dlq_topic, late_topic
from hotpath.coview.settings import StreamingSettings
from hotpath.coview.shard import Contribution, partitions_of
from hotpath.coview.windows import NO_EPOCH
from hotpath.errors import NotFound
from hotpath.streams.base import EventLog

__all__ = ["ShardRef", "JobCoordinator"]

log = logging.getLogger(__name__)


class ShardRef(Protocol):
    async def restore(self, cid: int | None, partitions: Sequence[int]) -> dict[str, Any]: ...

    async def step(self, inbound: list[Contribution], complete: int, trigger_sent_ms: int = 0) -> dict[str, Any]: ...

    async def checkpoint(
        self, cid: int, inbound: list[Contribution], complete: int, trigger_sent_ms: int = 0, wait: bool = True
    ) -> dict[str, Any]: ...

    async def stats(self) -> dict[str, Any]: ...


class JobCoordinator:
    """Drives the shards; see the module docstring."""

    def __init__(
        self,
        streaming: StreamingSettings,
        runtime_dir,
        event_log: EventLog,
        shards: Callable[[bool], Awaitable[list[ShardRef]]],
        *,
        clock: Callable[[], float] = time.monotonic,
        on_recover: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.settings = streaming
        self.log = event_log
        self._get_shards = shards
        self.clock = clock
        self.commits = JobCommits(checkpoint_dir(runtime_dir, streaming.job_id) / "job.sqlite")
        self.shards: list[ShardRef] = []
        self.partitions = 0
        self.committed: int | None = None
        self.offsets: dict[int, int] = {}
        self.complete: dict[int, int] = {}
        self.newest_sent: dict[int, int] = {}
        self.inbound: list[list[Contribution]] = []
        self.rounds = 0
        self.behind = False
        """Whether a shard read a full batch in the last round (then the next starts at once)."""
        self.recoveries = 0
        self.checkpoints = 0
        self.in_flight: int | None = None
        """The checkpoint begun and not yet saved by every shard (at most one)."""
        self.saved: dict[int, int | None] = {}
        self.last_error: str | None = None
        self.last_failure_at: float | None = None
        """Wall time (``time.time()``) the last shard failure reached the loop."""
        self.last_restored_at: float | None = None
        """Wall time every shard was back on the committed checkpoint after it."""
        self._on_recover = on_recover
        self._stop = asyncio.Event()
        self._running = False

    # ---------------------------------------------------------------- setup
    async def prepare(self) -> None:
        s = self.settings
        try:
            self.partitions = await self.log.partitions(s.topic)
        except NotFound:
            await self.log.create_topic(s.topic, s.partitions)
            self.partitions = await self.log.partitions(s.topic)
        for side in (dlq_topic(s.topic), late_topic(s.topic)):
            try:
                await self.log.partitions(side)
            except NotFound:
                await self.log.create_topic(side, 1)
        self.committed = self.commits.committed(shards=s.shards, partitions=self.partitions, topic=s.topic)
        await self._restore(recreate=False)

    async def _restore(self, *, recreate: bool) -> None:
        s = self.settings
        self.shards = await self._get_shards(recreate)
        reports = await asyncio.gather(
            *(
                sh.restore(self.committed, partitions_of(i, s.shards, self.partitions))
                for i, sh in enumerate(self.shards)
            )
        )
        self.inbound = [[] for _ in self.shards]
        self.complete, self.offsets, self.newest_sent = {}, {}, {}
        self.in_flight, self.saved = None, {}
        for r in reports:
            self._absorb(r)

    def _absorb(self, report: dict[str, Any]) -> None:
        self.complete.update(report["complete"])
        self.offsets.update(report["offsets"])
        self.newest_sent.update(report["newest_sent"])
        for dest, contribs in report["outbox"].items():
            self.inbound[dest].extend(contribs)
        shard = report.get("shard")
        if shard is not None:
            self.saved[shard] = report.get("saved")
            if self.in_flight is not None and report.get("save_failed") == self.in_flight:
                log.warning("co-view job: shard %s could not save checkpoint %s; giving it up", shard, self.in_flight)
                self.in_flight = None

    def global_complete(self) -> int:
        if len(self.complete) < self.partitions:
            return NO_EPOCH
        return min(self.complete.values(), default=NO_EPOCH)

    def _trigger_sent(self) -> int:
        vals = [v for v in self.newest_sent.values() if v]
        return min(vals) if len(vals) == self.partitions else 0

    # ---------------------------------------------------------------- rounds
    async def round(self) -> int:
        """One step on every shard; returns records read."""
        complete, trigger = self.global_complete(), self._trigger_sent()
        inbound, self.inbound = self.inbound, [[] for _ in self.shards]
        reports = await asyncio.gather(
            *(sh.step(inbound[i], complete, trigger) for i, sh in enumerate(self.shards))
        )
        for r in reports:
            self._absorb(r)
        self.rounds += 1
        self.behind = any(r.get("behind") for r in reports)
        return sum(r.get("read", 0) for r in reports)

    async def checkpoint(self) -> int:
        """Deliver what is in flight, have every shard save, then commit. Returns the id."""
        self.in_flight = None  # superseded: this one waits for its saves
        cid = (self.committed or 0) + 1
        await self._checkpoint_call(cid, wait=True)
        await self._commit(cid)
        return cid

    async def begin_checkpoint(self) -> int | None:
        """Have every shard snapshot checkpoint ``cid`` and save it behind its sink writes; it is
        committed by :meth:`commit_saved` once all report it saved. ``None`` while one is in flight."""
        if self.in_flight is not None:
            return None
        cid = (self.committed or 0) + 1
        await self._checkpoint_call(cid, wait=False)
        self.in_flight = cid
        return cid

    async def commit_saved(self) -> int | None:
        """Commit the checkpoint in flight if every shard reported it saved; returns it then."""
        cid = self.in_flight
        if cid is None or len(self.saved) < len(self.shards) or any(v != cid for v in self.saved.values()):
            return None
        await self._commit(cid)
        self.in_flight = None
        return cid

    async def _checkpoint_call(self, cid: int, *, wait: bool) -> None:
        complete, trigger = self.global_complete(), self._trigger_sent()
        inbound, self.inbound = self.inbound, [[] for _ in self.shards]
        reports = await asyncio.gather(
            *(sh.checkpoint(cid, inbound[i], complete, trigger, wait) for i, sh in enumerate(self.shards))
        )
        for r in reports:
            self._absorb(r)

    async def _commit(self, cid: int) -> None:
        s = self.settings
        await asyncio.to_thread(self.commits.commit, cid, shards=s.shards, partitions=self.partitions, topic=s.topic)
        self.committed = cid
        self.checkpoints += 1

    async def recover(self, exc: BaseException) -> None:
        """Restore every shard to the committed checkpoint (retrying while shards restart)."""
        self.recoveries += 1
        self.last_failure_at, self.last_restored_at = time.time(), None
        self.last_error = f"{type(exc).__name__}: {exc}"
        log.warning("co-view job: a shard failed (%s); restoring checkpoint %s", self.last_error, self.committed)
        if self._on_recover is not None:
            self._on_recover(exc)
        delay = 0.2
        while True:
            try:
                await self._restore(recreate=True)
                self.last_restored_at = time.time()
                return
            except Exception as again:  # a shard still restarting: try again
                log.warning("co-view job: restore failed (%s); retrying", again)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def run(self) -> None:
        """Rounds until :meth:`stop`; checkpoints on an interval and once more when stopping."""
        self._running = True
        last = self.clock()
        pace = self.settings.min_step_s
        try:
            while not self._stop.is_set():
                try:
                    started = time.monotonic()
                    await self.round()
                    await self.commit_saved()
                    if self.clock() - last >= self.settings.checkpoint_interval_s:
                        if await self.begin_checkpoint() is not None:
                            last = self.clock()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    await self.recover(exc)
                    last = self.clock()
                    continue
                # Adaptive steps: while keeping up, a round starts at most every ``min_step_s`` and
                # its steps take whatever arrived meanwhile; when behind, the next starts at once.
                rest = pace - (time.monotonic() - started)
                if rest > 0 and not self.behind:
                    try:
                        await asyncio.wait_for(self._stop.wait(), rest)
                    except asyncio.TimeoutError:
                        pass
            while True:  # final checkpoint on shutdown
                try:
                    await self.checkpoint()
                    break
                except Exception as exc:
                    await self.recover(exc)
        finally:
            self._running = False

    def stop(self) -> None:
        self._stop.set()

    def status(self) -> dict[str, Any]:
        return {
            "topic": self.settings.topic,
            "partitions": self.partitions,
            "shards": len(self.shards),
            "offsets": dict(sorted(self.offsets.items())),
            "complete_epoch": self.global_complete(),
            "committed": self.committed,
            "checkpoint_in_flight": self.in_flight,
            "rounds": self.rounds,
            "checkpoints": self.checkpoints,
            "recoveries": self.recoveries,
            "last_error": self.last_error,
            "last_failure_at": self.last_failure_at,
            "last_restored_at": self.last_restored_at,
            "running": self._running,
        }

    async def shard_stats(self) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(sh.stats() for sh in self.shards)))

    def close(self) -> None:
        self.commits.close()
