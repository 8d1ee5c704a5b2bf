"""The streaming job end to end on the real servers: Kafka -> shard actors on Ray -> Redis and
Cassandra. Planted pairs come back, the Redis contents equal a brute-force reference, poisoned
events reach the dead-letter topic, and killing shard actors (and the whole job) at seeded random
points leaves exactly the contents of a failure-free run."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid

import pytest

from hotpath.config import Settings
from hotpath.coview.generator import generate
from hotpath.coview.job import produce_events, punctuate
from hotpath.graphs.coview_app import start_coview_job
from hotpath.coview.runner import dlq_topic
from hotpath.stores.factory import open_dimension_store, open_hot_cache
from hotpath.streams.factory import open_event_log

from .conftest import zset_dump
from .reference import assert_same_ranking, sliding_windows, topk_reference

pytestmark = [pytest.mark.services, pytest.mark.ray, pytest.mark.timeout(240)]


def job_settings(base: Settings, tmp_path, topic: str, tag: str, **streaming) -> Settings:
    st = {**base.streaming.model_dump(), "topic": topic, "job_id": f"job-{tag}", "key_prefix": f"t:{tag}:",
          "shards": 2, "partitions": 4, "checkpoint_interval_s": 1.0, **streaming}
    return Settings.model_validate({**base.model_dump(), "profile": "full", "runtime_dir": tmp_path, "streaming": st})


class Stream:
    """One topic of generated events (with poison), produced once for the module."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.topic = topic
        self.gen = generate(sessions=2500, clusters=8, cluster_size=21, noise_cats=300, span_ms=3 * 3_600_000,
                            poison_fraction=0.002, seed=17)
        self.settings = settings
        self.ends: dict[int, int] = {}

    async def produce(self) -> None:
        log = open_event_log(self.settings)
        try:
            await produce_events(log, self.topic, self.gen.raw(), partitions=4, stamp=False)
            await punctuate(log, self.topic, max(e.ts for e in self.gen.events) + 3_600_000)
            self.ends = {p: await log.end_offset(self.topic, p) for p in range(4)}
        finally:
            await log.close()


def wait_caught_up(handle, ends: dict[int, int], timeout_s: float = 90.0, on_progress=None) -> dict:
    deadline = time.monotonic() + timeout_s
    total = sum(ends.values())
    while True:
        st = handle.status()
        assert not st.get("error"), st
        done = sum(st["offsets"].values())
        if on_progress is not None:
            on_progress(done, total, st)
        if done >= total and st["offsets"] and all(st["offsets"].get(p, 0) >= e for p, e in ends.items()):
            return st
        assert time.monotonic() < deadline, f"job did not catch up: {st}"
        time.sleep(0.02)


def contents(settings: Settings, keys: list[str]) -> tuple[dict, dict]:
    """(Redis zsets under the job's prefix with the prefix stripped, dimension rows likewise)."""
    prefix = settings.streaming.key_prefix
    cache = open_hot_cache(settings)
    dims = open_dimension_store(settings)
    try:
        redis = {k.removeprefix(prefix): v for k, v in zset_dump(cache, prefix).items()}
        rows = dims.get_coview([prefix + k for k in keys])
        dim = {c.removeprefix(prefix): dict(r.related_cats) for c, r in rows.items()}
        for k in list(cache.scan(prefix)):
            cache.delete(k)
        return redis, dim
    finally:
        cache.close()
        dims.close()


@pytest.fixture(scope="module")
def stream(settings: Settings, ray_session) -> Stream:
    topic = f"t-coview-{uuid.uuid4().hex[:8]}"
    s = Stream(Settings.model_validate({**settings.model_dump(), "profile": "full"}), topic)
    asyncio.run(s.produce())
    yield s

    async def drop() -> None:
        log = open_event_log(s.settings)
        try:
            for t in (topic, dlq_topic(topic), f"{topic}.late"):
                try:
                    await log.delete_topic(t)
                except Exception:
                    pass
        finally:
            await log.close()

    asyncio.run(drop())


@pytest.fixture(scope="module")
def clean_run(settings: Settings, stream: Stream, tmp_path_factory) -> tuple[dict, dict, Settings]:
    tag = uuid.uuid4().hex[:8]
    s = job_settings(settings, tmp_path_factory.mktemp("clean"), stream.topic, tag)
    handle = start_coview_job(s)
    try:
        wait_caught_up(handle, stream.ends)
        final = handle.stop()
    except BaseException:
        handle.stop()
        raise
    assert final["recoveries"] == 0
    cats = sorted({e.cat for e in stream.gen.events})
    redis, dims = contents(s, cats)
    return redis, dims, s


def test_planted_pairs_recovered_in_redis(clean_run, stream: Stream) -> None:
    redis, dims, _ = clean_run
    precision = []
    for cat, planted in stream.gen.planted.items():
        top = list(redis.get(f"cat:co_view:{cat}", {}))
        assert len(top) <= 20
        precision.append(len(set(top) & planted) / 20)
    assert sum(precision) / len(precision) >= 0.9
    # the dimension store holds the same top-20 rows
    for cat in stream.gen.planted:
        assert dims[cat] == pytest.approx(redis[f"cat:co_view:{cat}"])


def test_redis_equals_brute_force_reference(clean_run, stream: Stream) -> None:
    redis, _, _ = clean_run
    events = [(e.session, e.cat, e.ts) for e in stream.gen.events]
    want = topk_reference(sliding_windows(events, 900_000, 300_000), decay=0.95, top_k=20)
    got = {k.removeprefix("cat:co_view:"): sorted(v.items(), key=lambda kv: (-kv[1], kv[0]))
           for k, v in redis.items() if k.startswith("cat:co_view:")}  # fmt: skip
    assert_same_ranking(got, want)
    users = {e.user for e in stream.gen.events}
    assert sum(k.startswith("user:recent_cats:") for k in redis) == len(users)


def test_poisoned_events_reach_the_dead_letter_topic(clean_run, stream: Stream) -> None:
    async def read_all() -> list[dict]:
        log = open_event_log(stream.settings)
        try:
            end = await log.end_offset(dlq_topic(stream.topic), 0)
            recs = await log.read(dlq_topic(stream.topic), 0, 0, max_records=10_000, timeout_s=1.0)
            assert len(recs) == end
            return [json.loads(r.value) for r in recs]
        finally:
            await log.close()

    dead = asyncio.run(read_all())
    assert len(stream.gen.poison) > 0
    # at-least-once, de-duplicable by source position (a replay re-sends the same positions)
    unique = {(d["partition"], d["offset"]): d for d in dead}
    assert len(unique) == len(stream.gen.poison)
    assert all(d["reason"] and d["topic"] == stream.topic for d in unique.values())
    assert sorted(d["value"].encode() for d in unique.values()) == sorted(raw for _, raw in stream.gen.poison)


def test_killing_shards_and_the_job_at_random_points_changes_nothing(
    settings: Settings, stream: Stream, clean_run, tmp_path, ray_session
) -> None:
    redis0, dims0, _ = clean_run
    tag = uuid.uuid4().hex[:8]
    # Small steps and a short interval: the job must still be mid-stream, with checkpoints committed,
    # when each planned fault lands (a faster job finished the stream before the last one).
    s = job_settings(settings, tmp_path, stream.topic, tag, max_records_per_step=60, checkpoint_interval_s=0.1)
    rng = random.Random(1234)
    total = sum(stream.ends.values())
    kill_at = sorted(rng.uniform(0.1, 0.6) * total for _ in range(3))
    job_kill_at = rng.uniform(0.2, 0.6) * total
    kills: list[tuple[int, int]] = []
    holder = {"handle": start_coview_job(s)}
    job_killed = False
    restarted: dict = {}
    recoveries_seen = 0
    deadline = time.monotonic() + 150
    try:
        while True:
            handle = holder["handle"]
            st = handle.status()
            assert not st.get("error"), st
            done = sum(st["offsets"].values())
            if kill_at and done >= kill_at[0] and st["recoveries"] == recoveries_seen:
                kill_at.pop(0)
                victim = rng.randrange(2)
                shard = ray_session.get(handle.driver.shard_handles.remote())[victim]
                ray_session.kill(shard, no_restart=False)  # the process dies; Ray restarts the actor
                kills.append((victim, done))
                recoveries_seen += 1
            elif (
                not job_killed and not kill_at and done >= job_kill_at and st["recoveries"] == recoveries_seen
                and st["committed"] is not None  # a faster job can get here before its first checkpoint
            ):  # fmt: skip
                job_killed = True
                ray_session.kill(handle.driver, no_restart=True)  # the whole job: driver and its shards
                holder["handle"] = start_coview_job(s)  # resumes from the last committed checkpoint
                restarted = holder["handle"].status()
                recoveries_seen = 0
            elif done >= total and all(st["offsets"].get(p, 0) >= e for p, e in stream.ends.items()):
                break
            assert time.monotonic() < deadline, f"job did not catch up: {st}"
            time.sleep(0.01)
        if kill_at or not job_killed:  # the stream ended before every planned fault: not a valid test
            pytest.fail(f"the stream ended before all faults were injected: {kills}, {st}")
        final = holder["handle"].stop()
    except BaseException:
        try:
            holder["handle"].stop()
        finally:
            raise
    assert len(kills) == 3 and job_killed
    # the new job resumed from a checkpoint, not from the start of the topic
    assert restarted["committed"] is not None and 0 < sum(restarted["offsets"].values()) < total
    assert final["committed"] is not None
    cats = sorted({e.cat for e in stream.gen.events})
    redis1, dims1 = contents(s, cats)
    assert redis1 == redis0
    assert dims1 == dims0


def test_the_benchmark_runs_end_to_end_and_reports_its_figures(settings: Settings, ray_session, tmp_path) -> None:
    """``hotpath bench coview`` in miniature (1 shard, 1 s of live events): every figure is there,
    every live event was read, and ``--trace`` writes the shard's series."""
    import json

    from bench.coview import run_bench

    s = Settings.model_validate({**settings.model_dump(), "profile": "full", "runtime_dir": tmp_path})
    trace = tmp_path / "trace.json"
    out = run_bench(s, events=6000, rate=4000, seconds=1.0, replay_events=3000, shards=1, trace=trace)
    assert out["events"] > 5000 and out["events_per_s"] > 0
    assert out["freshness_events"] == 4000 and out["live_views_read"] == 4000
    assert out["recent_samples"] > 0 and out["freshness_p99_ms"] >= out["recent_freshness_p50_ms"] > 0
    assert out["read_age_p99_ms"] > 0 and out["produce_ack_max_ms"] > 0 and out["recoveries"] == 0
    assert out["sink_counters"]["recent_keys"] > 0 and out["coview_keys_in_redis"] > 0
    assert out["replay_events_per_s"] > 0 and out["state_bytes_per_1000_users"] > 0
    series = json.loads(trace.read_text())
    assert len(series) == 1 and series[0]["read_age_ms"] and series[0]["hot_write_ms"]
