"""The job's shards and coordinator in-process over in-memory stores: exactly-once under crashes,
dead letters, the late stream and backpressure. (The same against Kafka, Redis and Ray actors is
in test_streaming_e2e.py.)"""

from __future__ import annotations

import json
import random
import threading
import time

import pytest

from hotpath.config import Settings
from hotpath.coview.generator import generate
from hotpath.coview.job import LocalJob, produce_events, punctuate
from hotpath.coview.sinks import SinkBatch, SinkWriter
from hotpath.stores.memory_cache import InMemoryHotCache

from .conftest import MemoryDims, MemoryEventLog, zset_dump


def make_settings(tmp_path, **streaming) -> Settings:
    base = dict(shards=3, partitions=4, topic="views", checkpoint_interval_s=0.0, max_records_per_step=97,
                read_timeout_s=0.0, allowed_lateness_s=30.0, watermark_delay_s=5.0)
    base.update(streaming)
    return Settings(runtime_dir=tmp_path, streaming=base)


async def fill(log, settings, gen) -> None:
    await produce_events(log, settings.streaming.topic, gen.raw(), partitions=settings.streaming.partitions, stamp=False)
    await punctuate(log, settings.streaming.topic, 4_000_000_000_000)


async def filled_job(settings, gen) -> tuple[LocalJob, MemoryEventLog, InMemoryHotCache, MemoryDims]:
    """A prepared in-process job over in-memory stores, its log holding ``gen``'s events."""
    log, cache, dims = MemoryEventLog(), InMemoryHotCache(), MemoryDims()
    await fill(log, settings, gen)
    job = LocalJob(settings, event_log=log, cache=cache, dims=dims)
    await job.coordinator.prepare()
    return job, log, cache, dims


class CrashingLocalJob(LocalJob):
    """Loses every shard's in-memory state at chosen rounds (as if their processes died)."""

    def __init__(self, *a, crash_rounds=(), **kw) -> None:
        super().__init__(*a, **kw)
        self.crash_rounds = set(crash_rounds)
        self.crashes = 0

    async def _shards(self, recreate):
        refs = await super()._shards(recreate)
        job = self

        class Crashy:
            def __init__(self, ref):
                self.ref = ref

            async def step(self, *a):
                if job.coordinator.rounds in job.crash_rounds:
                    job.crash_rounds.discard(job.coordinator.rounds)
                    job.crashes += 1
                    raise RuntimeError("shard died")
                return await self.ref.step(*a)

            def __getattr__(self, name):
                return getattr(self.ref, name)

        return [Crashy(r) for r in refs]


async def run_job(tmp_path, gen, *, crash_rounds=(), interval=1e9, **streaming):
    settings = make_settings(tmp_path, checkpoint_interval_s=interval, **streaming)
    log, cache, dims = MemoryEventLog(), InMemoryHotCache(), MemoryDims()
    await fill(log, settings, gen)
    job = CrashingLocalJob(settings, event_log=log, cache=cache, dims=dims, crash_rounds=crash_rounds)
    status = await job.run_until_caught_up()
    await job.close()
    return status, zset_dump(cache, ""), dict(dims.rows), log, job


async def test_crashes_at_random_points_leave_identical_results(tmp_path) -> None:
    gen = generate(sessions=600, clusters=4, cluster_size=8, noise_cats=30, span_ms=3 * 3_600_000, jitter_ms=20_000,
                   late_fraction=0.01, poison_fraction=0.005, seed=11)
    st0, redis0, dims0, _, _ = await run_job(tmp_path / "clean", gen)
    assert st0["recoveries"] == 0 and redis0 and dims0
    assert sum(k.startswith("cat:co_view:") for k in redis0) > 20
    rng = random.Random(5)
    crash_rounds = sorted(rng.sample(range(3, 40), 5))
    st1, redis1, dims1, _, job = await run_job(
        tmp_path / "crashy", gen, crash_rounds=crash_rounds, interval=0.0005, max_records_per_step=23
    )
    assert job.crashes == 5 and st1["recoveries"] == 5
    assert st1["checkpoints"] > 10  # saved behind the sink writes and committed while the job ran
    assert redis1 == redis0
    assert dims1 == dims0
    # the Redis top-K equals the dimension store's rows
    for key, members in redis0.items():
        if key.startswith("cat:co_view:"):
            assert members == pytest.approx(dims0[key.removeprefix("cat:co_view:")])


async def test_poisoned_and_late_events_go_to_their_own_streams(tmp_path) -> None:
    gen = generate(sessions=300, clusters=3, cluster_size=6, noise_cats=10, late_fraction=0.05, late_by_ms=3_600_000,
                   poison_fraction=0.02, seed=3)
    status, redis, _, log, job = await run_job(tmp_path, gen)
    dead = [json.loads(r.value) for r in log.topics["views.dlq"][0]]
    assert len(dead) == len(gen.poison)
    assert {d["reason"].split(":")[0].split(" (")[0] for d in dead} <= {
        "bad JSON", "missing field 'user'", "absurd timestamp 12", "not a JSON object", "unknown type 'teleport'"}
    late = [json.loads(r.value) for r in log.topics["views.late"][0]]
    counters = {}
    for r in job.runners:
        for k, v in (await r.stats())["counters"].items():
            counters[k] = counters.get(k, 0) + v
    assert counters["late_dropped"] == len(late) > 0
    assert counters["views"] == len(gen.events)
    assert any(k.startswith("user:recent_cats:") for k in redis)


async def test_recent_cats_written_with_ttl(tmp_path) -> None:
    gen = generate(sessions=50, clusters=2, cluster_size=5, noise_cats=5, seed=2)
    settings = make_settings(tmp_path, recent_ttl_s=2 * 86_400)
    log, cache, dims = MemoryEventLog(), InMemoryHotCache(), MemoryDims()
    await fill(log, settings, gen)
    job = LocalJob(settings, event_log=log, cache=cache, dims=dims)
    await job.run_until_caught_up()
    await job.close()
    user = gen.events[0].user
    got = cache.ztop(f"user:recent_cats:{user}", 100)
    seen = {e.cat for e in gen.events if e.user == user}
    assert {c for c, _ in got} <= seen and got
    assert 86_400 < cache.ttl(f"user:recent_cats:{user}") <= 2 * 86_400


async def test_crashes_with_dimension_rows_written_at_every_checkpoint_leave_identical_results(tmp_path) -> None:
    """``dimension_interval_s=0``: rows written mid-run by checkpoints that crashes then undo."""
    gen = generate(sessions=400, clusters=3, cluster_size=7, noise_cats=20, span_ms=2 * 3_600_000, seed=12)
    _, redis0, dims0, _, _ = await run_job(tmp_path / "clean", gen)
    st1, redis1, dims1, _, job = await run_job(tmp_path / "crashy", gen, crash_rounds=(6, 14, 23), interval=0.0005,
                                               max_records_per_step=23, dimension_interval_s=0.0)
    assert job.crashes == 3 and st1["checkpoints"] > 5
    assert redis1 == redis0 and dims1 == dims0


async def test_dimension_rows_are_written_on_their_interval_and_on_stop(tmp_path) -> None:
    gen = generate(sessions=300, clusters=3, cluster_size=6, noise_cats=20, span_ms=2 * 3_600_000, seed=4)
    _, _, dims0, _, _ = await run_job(tmp_path / "clean", gen)
    job, _, _, dims = await filled_job(make_settings(tmp_path / "t", dimension_interval_s=100.0), gen)
    c = job.coordinator
    now = [0.0]
    for r in job.runners:
        r._now, r._dims_at = (lambda: now[0]), 0.0
    for _ in range(25):
        await c.round()

    async def async_checkpoint(cid: int) -> None:
        await c._checkpoint_call(cid, wait=False)
        for r in job.runners:
            r.sinks.flush()

    await async_checkpoint(1)
    assert dims.rows == {} and sum(len(r.core.dims_dirty) for r in job.runners) > 0  # inside the interval: kept
    now[0] = 150.0
    await async_checkpoint(2)
    assert dims.rows and all(not r.core.dims_dirty for r in job.runners)  # the interval passed: written
    for _ in range(5):
        await c.round()
    await job.run_until_caught_up()  # ends with a synchronous checkpoint: every changed key written
    await job.close()
    assert dict(dims.rows) == dims0


class SlowCache(InMemoryHotCache):
    """An in-memory cache whose every ``zreplace`` takes ``delay_s``."""

    def __init__(self, delay_s: float) -> None:
        super().__init__()
        self.delay_s = delay_s

    def zreplace(self, key, members, *, ttl_s=None):
        time.sleep(self.delay_s)
        super().zreplace(key, members, ttl_s=ttl_s)


def test_slow_sink_blocks_the_producer_instead_of_queueing_without_bound() -> None:
    cache = SlowCache(0.05)
    w = SinkWriter(cache, None, queue_max=2)
    seen_max = 0
    stop = threading.Event()

    def watch():
        nonlocal seen_max
        while not stop.is_set():
            seen_max = max(seen_max, w.pending())
            time.sleep(0.002)

    t = threading.Thread(target=watch)
    t.start()
    t0 = time.monotonic()
    for i in range(10):
        w.submit(SinkBatch(coview={f"k{i}": [("x", 1.0)]}))
    submit_s = time.monotonic() - t0
    w.flush()
    stop.set()
    t.join()
    assert seen_max <= 2
    assert submit_s >= 0.05 * (10 - 3)  # the submitter waited for the slow writer
    assert w.blocked_s > 0.2
    assert all(cache.ztop(f"cat:co_view:k{i}", 5) == [("x", 1.0)] for i in range(10))
    w.close()


def test_failing_sink_retries_and_never_drops() -> None:
    class Flaky(InMemoryHotCache):
        fails = 3

        def zreplace(self, key, members, *, ttl_s=None):
            if Flaky.fails:
                Flaky.fails -= 1
                from hotpath.errors import ServiceUnavailable

                raise ServiceUnavailable("down for a moment")
            super().zreplace(key, members, ttl_s=ttl_s)

    cache = Flaky()
    w = SinkWriter(cache, None, queue_max=2)
    w.submit(SinkBatch(coview={"k": [("x", 2.0)]}))
    w.flush()
    assert cache.ztop("cat:co_view:k", 5) == [("x", 2.0)] and w.written["retries"] == 3
    w.close()


def test_a_slow_dimension_store_or_checkpoint_save_does_not_hold_redis_writes_up() -> None:
    release = threading.Event()

    class StuckDims(MemoryDims):
        def put_coview(self, rows) -> int:
            release.wait(10)
            return super().put_coview(rows)

    cache, dims = InMemoryHotCache(), StuckDims()
    w = SinkWriter(cache, dims, queue_max=2)
    saved: list[tuple[bool, bool]] = []  # (dimension row written, later Redis write landed) when the barrier ran
    w.submit(SinkBatch(coview={"a": [("x", 1.0)]}, dims={"a": [("x", 1.0)]}))
    w.submit_barrier(lambda: saved.append(("a" in dims.rows, cache.ztop("cat:co_view:b", 5) != [])))
    w.submit(SinkBatch(coview={"b": [("y", 2.0)]}, recent={"u1": (True, {"c": 0.5})}))
    deadline = time.monotonic() + 5
    while cache.ztop("cat:co_view:b", 5) == [] and time.monotonic() < deadline:
        time.sleep(0.01)
    # Redis got both batches, the one after the barrier too, while the dimension store is stuck
    assert cache.ztop("cat:co_view:a", 5) == [("x", 1.0)] and cache.ztop("cat:co_view:b", 5) == [("y", 2.0)]
    assert cache.ztop("user:recent_cats:u1", 5) == [("c", 0.5)]
    assert saved == [] and "a" not in dims.rows
    release.set()
    w.flush()
    assert saved == [(True, True)] and dims.rows["a"] == {"x": 1.0}
    w.close()


def test_dimension_rows_are_spread_over_time_unless_a_flush_hurries_them() -> None:
    """``dim_spread_s``: 1,000 rows go in chunks of 100 spread over the time given (a trickle, not
    a burst), a batch under a chunk at once, and a flush writes what is left at once."""

    class TimedDims(MemoryDims):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[tuple[float, int]] = []

        def put_coview(self, rows) -> int:
            self.calls.append((time.monotonic(), len(rows)))
            return super().put_coview(rows)

    dims = TimedDims()
    w = SinkWriter(InMemoryHotCache(), dims, dim_spread_s=1.0)
    rows = {f"k{i}": [("x", float(i))] for i in range(1000)}
    t0 = time.monotonic()
    w.submit(SinkBatch(dims=rows))
    w.submit(SinkBatch(dims={"small": [("y", 1.0)]}))
    while len(dims.rows) < 1001 and time.monotonic() < t0 + 10:
        time.sleep(0.01)
    assert [n for _, n in dims.calls] == [100] * 10 + [1]
    gaps = [b - a for (a, _), (b, _) in zip(dims.calls, dims.calls[1:10])]
    assert min(gaps) >= 0.05 and dims.calls[9][0] - t0 >= 0.85  # chunk i no sooner than i/10 of the spread
    assert w.written["dim_rows"] == 1001

    slow = SinkWriter(InMemoryHotCache(), dims, dim_spread_s=60.0)
    t0 = time.monotonic()
    slow.submit(SinkBatch(dims={f"j{i}": [("z", 1.0)] for i in range(500)}))
    time.sleep(0.2)
    slow.flush()  # hurries: the rest at once, not over a minute
    assert time.monotonic() - t0 < 10 and all(f"j{i}" in dims.rows for i in range(500))
    w.close()
    slow.close()


def test_recent_writes_set_and_remove_members_on_any_cache() -> None:
    cache = InMemoryHotCache()
    w = SinkWriter(cache, None)
    w.submit(SinkBatch(recent={"u1": (True, {"a": 1.0, "b": 0.5, "c": 0.25})}))
    w.submit(SinkBatch(recent={"u1": (False, {"b": None, "d": 2.0}), "u2": (False, {"x": None})}))
    w.flush()
    assert zset_dump(cache, "user:recent_cats:") == {"user:recent_cats:u1": {"a": 1.0, "c": 0.25, "d": 2.0}}
    assert 0 < cache.ttl("user:recent_cats:u1") <= 3 * 86_400
    w.close()


def test_a_checkpoint_barrier_waits_for_the_redis_writes_before_it() -> None:
    cache = SlowCache(0.03)
    w = SinkWriter(cache, MemoryDims(), queue_max=8)
    for i in range(6):
        w.submit(SinkBatch(coview={f"k{i}": [("x", float(i))]}))
    seen: list[int] = []
    w.submit_barrier(lambda: seen.append(sum(cache.ztop(f"cat:co_view:k{i}", 5) != [] for i in range(6))))
    w.flush()
    assert seen == [6]
    w.close()


async def test_restart_of_the_whole_job_resumes_from_the_committed_checkpoint(tmp_path) -> None:
    gen = generate(sessions=400, clusters=3, cluster_size=7, noise_cats=20, span_ms=2 * 3_600_000, seed=8)
    _, redis0, dims0, _, _ = await run_job(tmp_path / "clean", gen)
    settings = make_settings(tmp_path / "restart", checkpoint_interval_s=0.0)
    job, log, cache, dims = await filled_job(settings, gen)
    for _ in range(12):
        await job.coordinator.round()
    await job.coordinator.checkpoint()
    for _ in range(5):  # progress after the checkpoint, then the process "dies"
        await job.coordinator.round()
    await job.close()
    job2 = LocalJob(settings, event_log=log, cache=cache, dims=dims)
    await job2.coordinator.prepare()
    assert job2.coordinator.committed == 1
    await job2.run_until_caught_up()
    await job2.close()
    assert zset_dump(cache, "") == redis0 and dict(dims.rows) == dims0


async def test_orders_reach_the_rollup_store_exactly_once_despite_crashes(tmp_path) -> None:
    from collections import Counter
    from itertools import count

    from hotpath.stores.rollups import DuckDbRollupStore

    gen = generate(sessions=500, clusters=3, cluster_size=6, noise_cats=10, order_fraction=0.6, seed=21)
    orders = [e for e in gen.events if e.type == "order"]
    want: dict[str, Counter] = {}
    for o in orders:
        want.setdefault(o.cat, Counter())[o.master] += o.qty
    assert len(orders) > 100 and sum(o.qty for o in orders) > len(orders)  # quantities matter
    # A step clock: a checkpoint every few rounds, so crashes replay orders already written.
    settings = make_settings(tmp_path, checkpoint_interval_s=4.0, order_batch=7, max_records_per_step=31)
    log, cache, dims = MemoryEventLog(), InMemoryHotCache(), MemoryDims()
    await fill(log, settings, gen)
    rollups = DuckDbRollupStore(tmp_path / "rollups.duckdb", release=True)
    ticks = count()
    job = CrashingLocalJob(settings, event_log=log, cache=cache, dims=dims, rollups=rollups,
                           crash_rounds=(5, 9, 14, 22), clock=lambda: float(next(ticks)))
    status = await job.run_until_caught_up()
    await job.close()
    assert job.crashes == 4 and status["recoveries"] == 4
    got = rollups.top_sellers_all(1000)
    for cat, sales in want.items():
        assert got[cat] == sorted(((m, float(q)) for m, q in sales.items()), key=lambda x: (-x[1], x[0]))
    assert sum(q for _, q in got["_all"]) == sum(o.qty for o in orders)
    # orders count as orders, not as views
    counters = Counter()
    for r in job.runners:
        counters.update((await r.stats())["counters"])
    assert counters["views"] == len(gen.events) - len(orders)
    rollups.close()


async def test_an_order_without_master_or_with_a_bad_quantity_is_a_dead_letter(tmp_path) -> None:
    settings = make_settings(tmp_path, shards=1)
    log, cache, dims = MemoryEventLog(), InMemoryHotCache(), MemoryDims()
    bad = [b'{"type":"order","user":"u1","cat":"c1","ts":1767225600000}',
           b'{"type":"order","user":"u1","cat":"c1","master":"m1","qty":0,"ts":1767225600000}',
           b'{"type":"order","user":"u1","cat":"c1","master":"m1","qty":"2","ts":1767225600000}']
    good = b'{"type":"order","user":"u1","cat":"c1","master":"m1","qty":4,"ts":1767225600000}'
    await produce_events(log, "views", [(b"u1", v) for v in [*bad, good]], partitions=4, stamp=False)
    from hotpath.stores.rollups import DuckDbRollupStore

    rollups = DuckDbRollupStore(tmp_path / "r.duckdb", release=True)
    job = LocalJob(settings, event_log=log, cache=cache, dims=dims, rollups=rollups)
    await job.run_until_caught_up()
    await job.close()
    reasons = [json.loads(r.value)["reason"] for r in log.topics["views.dlq"][0]]
    assert reasons == ["missing field 'master' (an order needs it)"] + ["field 'qty' must be an integer in 1..1000000"] * 2
    assert rollups.top_sellers("c1", 5) == [("m1", 4.0)]


async def test_user_writes_are_gathered_per_recent_interval_and_flushed_when_idle(tmp_path) -> None:
    """``recent_interval_s``: a busy shard rewrites each user once per interval, not once per step;
    an idle step writes everything pending. A step that reads a full batch reports ``behind``."""
    from hotpath.coview.runner import ShardRunner

    settings = make_settings(tmp_path, shards=1, partitions=1, sink_interval_s=0.0, recent_interval_s=100.0,
                             max_records_per_step=3)
    s = settings.streaming
    log, cache = MemoryEventLog(), InMemoryHotCache()
    await log.create_topic(s.topic, 1)
    runner = ShardRunner(0, 1, s, tmp_path, event_log=log, cache=cache, dims=None)
    now = [1000.0]
    runner._now = lambda: now[0]
    await runner.restore(None, [0])

    async def view(user: str, cat: str, ts: int) -> None:
        body = {"type": "view", "user": user, "session": user, "cat": cat, "ts": ts, "pid": "p"}
        await produce_events(log, s.topic, [(user.encode(), json.dumps(body).encode())], partitions=1)

    def recent() -> dict[str, dict[str, float]]:
        runner.sinks.flush()
        return zset_dump(cache, "user:recent_cats:")

    try:
        t0 = 1_767_225_600_000
        await view("u1", "a", t0)
        assert (await runner.step([], -1))["behind"] is False
        assert recent() == {}  # busy, inside the interval: gathered later
        for i, cat in enumerate("bcd"):
            await view("u1", cat, t0 + 1000 * (i + 1))
        rep = await runner.step([], -1)
        assert rep["read"] == 3 and rep["behind"] is True
        assert recent() == {}
        now[0] += 100.0  # the interval passed: one write, with every view so far
        await view("u2", "a", t0 + 5000)
        await runner.step([], -1)
        got = recent()
        assert set(got) == {"user:recent_cats:u1", "user:recent_cats:u2"}
        assert set(got["user:recent_cats:u1"]) == {"a", "b", "c", "d"}
        await view("u1", "e", t0 + 6000)
        await runner.step([], -1)
        assert "e" not in recent()["user:recent_cats:u1"]
        await runner.step([], -1)  # idle: whatever is pending is written at once
        assert "e" in recent()["user:recent_cats:u1"]
        assert runner.sinks.written["recent_keys"] == 3
    finally:
        await runner.close()
