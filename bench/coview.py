"""``hotpath bench coview``: the streaming job end to end (Kafka -> shard actors -> Redis), the
offline replay, and the memory the keyed state takes.

- ``events_per_s``: a backlog of generated views is put in a fresh Kafka topic first; the job
  then reads it to the end (every co-view and recent-interest write flushed to Redis): events / s
  from the first record read to the last write.
- ``freshness_p99_ms``: then, with the job caught up, views are produced at ``rate`` for
  ``seconds`` (event time running 300x the wall clock, so windows close every second), in batches
  every 50 ms, generated beforehand and stamped with ``sent_ms`` as they are sent. For each
  sink write, produced -> visible in Redis: for ``user:recent_cats`` from the oldest event the write
  carries; for ``cat:co_view`` from the event that completed the window's epoch (the earliest
  moment that result could exist). ``freshness_p99_ms`` is the worse of the two p99s. Also:
  ``read_age_p50/p99_ms`` (produced -> read by a shard, the oldest of each step),
  ``produce_ack_p50/p99/max_ms`` (a tick's stamp -> Kafka's ack), the shards' GC pauses and sink
  counters; ``--trace FILE`` writes each shard's series in order. The producer's own collector is
  frozen and off meanwhile (its pauses would count as the job's lag).
- ``replay_events_per_s``: a CSV of ``replay_events`` rows through ``replay_csv`` (parsing
  included).
- ``state_bytes_per_1000_keys``: Python heap of a restored :class:`CoviewState` (20 related keys
  each) per 1,000 keys; likewise per 1,000 users of recent interests.
"""

from __future__ import annotations

import asyncio
import json
import sys
import math
import shutil
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer

from hotpath.config import Settings
from hotpath.coview.generator import generate
from hotpath.coview.interests import RecentInterests
from hotpath.coview.replay import replay_csv, write_csv
from hotpath.coview.topk import CoviewState
from hotpath.coview.windows import PartitionWindower, WindowSpec

__all__ = ["run_bench", "state_memory"]

_SPEED = 300.0
"""Event time runs this many times faster than the wall clock in the freshness phase."""
_TICK_S = 0.05
"""The freshness phase produces one batch per tick (its events share a ``sent_ms``)."""


def _p(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def state_memory(keys: int = 5000, users: int = 5000) -> dict[str, float]:
    gen = generate(sessions=max(users, 20_000), users=users, clusters=keys // 25, cluster_size=25, noise_cats=keys // 5,
                   span_ms=6 * 3_600_000, seed=3)
    w = PartitionWindower(WindowSpec(delay_ms=0, lateness_ms=0))
    st = CoviewState()
    rec = RecentInterests()
    for ev in gen.events:
        w.on_event(ev.session, ev.cat, ev.ts)
        rec.on_view(ev.user, ev.cat, ev.ts)
    w.punctuate(10**15)
    for e, pairs in sorted(w.drain_pairs().items()):
        st.apply_epoch(e, pairs)
    out = {}
    for name, obj, n in (("key", st, len(st.keys)), ("user", rec, len(rec.users))):
        blob = obj.snapshot()
        tracemalloc.start()
        restored = type(obj).restore(blob)
        cur, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del restored
        out[f"state_bytes_per_1000_{name}s"] = round(cur / max(1, n) * 1000)
        out[f"snapshot_bytes_per_1000_{name}s"] = round(len(blob) / max(1, n) * 1000)
        out[f"{name}s_measured"] = n
    out["avg_related_per_key"] = round(sum(len(v[1]) for v in st.keys.values()) / max(1, len(st.keys)), 1)
    return out


def bench_replay(events: int) -> dict[str, Any]:
    sessions = max(1, events // 6)
    gen = generate(sessions=sessions, users=sessions // 2, clusters=40, cluster_size=25, noise_cats=2000,
                   span_ms=24 * 3_600_000, seed=5)
    tmp = Path(tempfile.mkdtemp(prefix="hotpath-replay-"))
    try:
        path = tmp / "events.csv"
        n = write_csv(path, ((e.user, e.cat, e.ts // 1000) for e in gen.events))
        res = replay_csv(path, session_col="user", key_col="cat", time_col="ts", spec=WindowSpec())
        planted_hits = []
        for k, pl in list(gen.planted.items())[:200]:
            top = {b for b, _ in res.related.get(k, [])[:20]}
            planted_hits.append(len(top & pl) / min(20, len(pl)))
        return {"replay_events": n, "replay_seconds": round(res.seconds, 2),
                "replay_events_per_s": round(res.events_per_s),
                "replay_precision_at_20": round(float(np.mean(planted_hits)), 3)}  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_stream(
    settings: Settings, *, events: int, rate: float, seconds: float, shards: int, say: Callable[[str], None],
    trace: Path | None = None, placement: str | None = None, recs_target: str | None = None, recs_rate: float = 500.0,
) -> dict[str, Any]:
    from hotpath.graphs.coview_app import _ensure_ray, start_coview_job

    _ensure_ray(settings)
    import ray

    from hotpath.stores.factory import open_hot_cache

    tag = uuid.uuid4().hex[:8]
    s = Settings.model_validate({
        **settings.model_dump(),
        "streaming": {**settings.streaming.model_dump(), "topic": f"bench-coview-{tag}", "job_id": f"bench-{tag}",
                      "key_prefix": f"bench:{tag}:", "shards": shards, "partitions": 4,
                      **({"placement": placement} if placement else {})},
    })  # fmt: skip
    cache = open_hot_cache(s)
    handle = None
    out: dict[str, Any] = {}
    t_start = int(time.time() * 1000) - 24 * 3_600_000
    try:
        sessions = max(1, events // 6)
        gen = generate(sessions=sessions, users=max(1, sessions // 2), clusters=40, cluster_size=25, noise_cats=2000,
                       start_ms=t_start, span_ms=12 * 3_600_000, seed=9)
        say(f"bench coview: producing {len(gen.events):,} events to {s.streaming.topic}")
        t0 = time.perf_counter()
        n = asyncio.run(_with_log(s, _produce_backlog, gen.events))
        out["produce_events_per_s"] = round(n / (time.perf_counter() - t0))
        say(f"bench coview: starting the job ({shards} shard actors)")
        handle = start_coview_job(s)
        nodes = handle.shard_nodes()
        out["placement"] = s.streaming.placement
        out["shard_nodes"] = len({n["node_id"] for n in nodes})
        say(f"bench coview: shards on {out['shard_nodes']} Ray node(s) (placement {s.streaming.placement})")
        ends = asyncio.run(_with_log(s, _ends))
        total = sum(ends.values())
        t_first = None
        while True:
            st = handle.status()
            done = sum(st["offsets"].values())
            if t_first is None and done > 0:
                t_first = time.perf_counter()
                cpu0 = sum(x.get("cpu_s", 0.0) for x in handle.stats())
            if done >= total:
                stats = handle.stats()
                if all(x["sink_pending"] == 0 for x in stats):
                    break
            if st.get("error"):
                raise RuntimeError(st["error"])
            time.sleep(0.05)
        dt = time.perf_counter() - (t_first or time.perf_counter())
        out["throughput_rounds"] = st["rounds"]
        out["events"] = n
        out["events_per_s"] = round(n / dt) if dt > 0 else None
        out["throughput_seconds"] = round(dt, 2)
        if t_first is not None:
            cpu = sum(x.get("cpu_s", 0.0) for x in stats) - cpu0
            out["shard_cpu_us_per_event"] = round(cpu / max(1, n) * 1e6, 1)
        say(f"bench coview: {n:,} events in {dt:.1f}s = {out['events_per_s']:,} events/s")
        say(f"bench coview: freshness phase, {rate:,.0f} events/s for {seconds:g}s")
        batches = _live_batches(rate, seconds, t_start + 13 * 3_600_000, s.streaming.partitions)
        say(f"bench coview: producing {sum(len(r) for b in batches for r in b.values()):,} live events")
        ray.get([h.reset_lags.remote() for h in ray.get(handle.driver.shard_handles.remote())])
        st0 = handle.stats()
        cpu_live0 = sum(x.get("cpu_s", 0.0) for x in st0)
        views0 = sum(x["counters"].get("views", 0) for x in st0)
        acks: list[float] = []
        load = None
        if recs_target is not None:  # the recs endpoint serving beside the job, for the whole phase
            from bench.recs import paced_related_load

            say(f"bench coview: /related at {recs_rate:,.0f} req/s against {recs_target} during the phase")
            load = paced_related_load(settings, recs_target, seconds + 3.0, recs_rate)
        cpu_gen0, busy0, t_live0 = time.process_time(), _machine_busy(), time.perf_counter()
        produced, achieved = asyncio.run(_with_log(s, _produce_live, batches, acks))
        # the load generator's own CPU (it shares the machine with the job) and how busy the whole
        # machine was over the phase: what is left is the headroom
        live_s = time.perf_counter() - t_live0
        out["generator_cores"] = round((time.process_time() - cpu_gen0) / live_s, 2)
        busy1 = _machine_busy()
        if busy0 and busy1:  # niced work (other jobs told to yield) counted apart
            total = max(1, busy1[2] - busy0[2])
            out["machine_busy_share"] = round((busy1[0] - busy0[0]) / total, 3)
            out["machine_niced_share"] = round((busy1[1] - busy0[1]) / total, 3)
        time.sleep(3.0)  # let the last windows close and land
        if load is not None:
            out["recs_load"] = load.finish()
            say("bench coview: recs beside the job: " + ", ".join(f"{k} {v}" for k, v in out["recs_load"].items()))
        stats = handle.stats()
        # CPU of both shard processes over the live phase (and its 3 s tail) per view they read
        live_views = sum(x["counters"].get("views", 0) for x in stats) - views0
        out["live_views_read"] = live_views
        out["live_shard_cpu_us_per_event"] = round(
            (sum(x.get("cpu_s", 0.0) for x in stats) - cpu_live0) / max(1, live_views) * 1e6, 1)
        if trace is not None:
            keys = ("read_age_ms", "step_ms", "hot_write_ms", "recent_lag_ms", "coview_lag_ms", "checkpoint_ms", "checkpoint_parts_ms", "slow_steps", "gc")
            trace.write_text(json.dumps([{k: x.get(k) for k in keys} for x in stats]))
            say(f"bench coview: per-shard series written to {trace}")
        co = [v for x in stats for v in x["coview_lag_ms"]]
        rc = [v for x in stats for v in x["recent_lag_ms"]]
        out.update({
            "freshness_rate_target": rate, "freshness_rate_achieved": round(achieved),
            "freshness_events": produced,
            "recent_freshness_p50_ms": _p(rc, 50), "recent_freshness_p99_ms": _p(rc, 99),
            "coview_freshness_p50_ms": _p(co, 50), "coview_freshness_p99_ms": _p(co, 99),
            "coview_samples": len(co), "recent_samples": len(rc),
            "step_p50_ms": _p([v for x in stats for v in x.get("step_ms", [])], 50),
            "step_p99_ms": _p([v for x in stats for v in x.get("step_ms", [])], 99),
            "produce_ack_p50_ms": _p(acks, 50), "produce_ack_p99_ms": _p(acks, 99),
            "produce_ack_max_ms": round(max(acks, default=0.0), 1),
            "read_age_p50_ms": _p([v for x in stats for v in x.get("read_age_ms", [])], 50),
            "read_age_p99_ms": _p([v for x in stats for v in x.get("read_age_ms", [])], 99),
            "checkpoint_max_ms": round(max([v for x in stats for v in x.get("checkpoint_ms", [])], default=0.0), 1),
        })  # fmt: skip
        p99s = [v for v in (out["recent_freshness_p99_ms"], out["coview_freshness_p99_ms"]) if v is not None]
        out["freshness_p99_ms"] = max(p99s) if p99s else None
        totals: dict[str, int] = {}
        for x in stats:
            for k, v in x["counters"].items():
                totals[k] = totals.get(k, 0) + v
        out["job_counters"] = totals
        sink: dict[str, int] = {}
        for x in stats:
            for k, v in x["sink"].items():
                sink[k] = sink.get(k, 0) + v
        out["sink_counters"] = sink
        out["shard_gc"] = [x.get("gc") for x in stats]
        out["shard_step_phases_s"] = [x.get("step_phases_s") for x in stats]
        keys = list(cache.scan(f"{s.streaming.key_prefix}cat:co_view:"))
        out["coview_keys_in_redis"] = len(keys)
        final_status = handle.status()
        out["recoveries"] = final_status["recoveries"]
        out["rounds"] = final_status["rounds"]
    finally:
        if handle is not None:
            try:
                handle.stop()
            except Exception as exc:  # report, clean up anyway
                say(f"bench coview: stopping the job failed: {exc}")
        for k in list(cache.scan(s.streaming.key_prefix)):
            cache.delete(k)
        cache.close()
        asyncio.run(_with_log(s, _drop_topics))
        shutil.rmtree(s.runtime_dir / "coview" / s.streaming.job_id, ignore_errors=True)
    return out


def _machine_busy() -> tuple[int, int, int] | None:
    """(busy, of it niced, total) jiffies of all CPUs from /proc/stat (None where there is none)."""
    try:
        with open("/proc/stat") as f:
            vals = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
    return sum(vals) - idle, vals[1], sum(vals)


async def _with_log(s: Settings, fn, *args):
    """Run ``fn(log, s, *args)`` with an event log opened (and closed) on this event loop."""
    from hotpath.streams.factory import open_event_log

    log = open_event_log(s)
    try:
        return await fn(log, s, *args)
    finally:
        await log.close()


async def _produce_backlog(log, s: Settings, events) -> int:
    from hotpath.coview.job import produce_events, punctuate

    n = await produce_events(log, s.streaming.topic, events, partitions=s.streaming.partitions, batch=20_000, stamp=False)
    await punctuate(log, s.streaming.topic, max(e.ts for e in events) + 3_600_000)
    return n


async def _ends(log, s: Settings) -> dict[int, int]:
    n = await log.partitions(s.streaming.topic)
    return {p: await log.end_offset(s.streaming.topic, p) for p in range(n)}


def _live_batches(rate: float, seconds: float, ev0: int, partitions: int) -> list[dict[int, list[tuple[bytes, bytes]]]]:
    """The freshness phase's events, generated before it starts (generating them on the fly cost the
    producer more CPU than producing them): per tick of ``_TICK_S``, per partition (of its key, as
    ``EventLog.append`` places it), ``(key, value without its closing brace)``; the event time of
    tick ``i`` starts at ``ev0 + i * tick * speed``."""
    from hotpath.coview.generator import encode_fast
    from hotpath.streams.base import partition_for

    per_tick = max(1, int(rate * _TICK_S))
    out = []
    for i in range(int(math.ceil(seconds / _TICK_S))):
        batch = generate(sessions=max(1, per_tick // 5), users=20_000, clusters=40, cluster_size=25, noise_cats=2000,
                         start_ms=ev0 + int(i * _TICK_S * 1000 * _SPEED), span_ms=int(_TICK_S * 1000 * _SPEED),
                         gap_ms=(500, 2_000), seed=1000 + i)
        tick: dict[int, list[tuple[bytes, bytes]]] = {}
        for e in batch.events[:per_tick]:
            key = e.user.encode()
            tick.setdefault(partition_for(key, partitions), []).append((key, encode_fast(e)[:-1]))
        out.append(tick)
    return out


async def _produce_live(
    log, s: Settings, batches: list[dict[int, list[tuple[bytes, bytes]]]], acks_ms: list[float]
) -> tuple[int, float]:
    """Produce one prepared batch per tick, each record stamped with ``sent_ms`` as it is sent;
    ``acks_ms`` gets each tick's stamp -> acknowledged time. The collector is frozen and off while
    it runs: a full collection over the prepared batches (~1.5M objects) between the stamp and the
    send would count the generator's own pause as the job's lag. On Kafka each partition's records
    go through ``append_batch`` (no ``EventIn`` each: half the load generator's CPU, which shares
    the machine with the job)."""
    import gc

    from hotpath.coview.job import ensure_topic
    from hotpath.streams.base import EventIn

    await ensure_topic(log, s.streaming.topic, s.streaming.partitions)
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        t0 = time.time()
        produced = 0
        for i, batch in enumerate(batches):
            stamp = time.time()
            tail = b',"sent_ms":%d}' % int(stamp * 1000)
            if hasattr(log, "append_batch"):
                await asyncio.gather(*(log.append_batch(s.streaming.topic, p, [(k, v + tail) for k, v in recs])
                                       for p, recs in batch.items()))
            else:
                await log.append(s.streaming.topic, [EventIn(value=v + tail, key=k) for recs in batch.values()
                                                     for k, v in recs])
            acks_ms.append((time.time() - stamp) * 1000.0)
            produced += sum(map(len, batch.values()))
            ahead = t0 + (i + 1) * _TICK_S - time.time()
            if ahead > 0:
                await asyncio.sleep(ahead)
        return produced, produced / (time.time() - t0)
    finally:
        gc.enable()
        gc.unfreeze()


async def _drop_topics(log, s: Settings) -> None:
    from hotpath.coview.runner import dlq_topic, late_topic

    for t in (s.streaming.topic, dlq_topic(s.streaming.topic), late_topic(s.streaming.topic)):
        if hasattr(log, "delete_topic"):
            try:
                await log.delete_topic(t)
            except Exception:
                pass


def run_bench(
    settings: Settings,
    *,
    events: int = 600_000,
    rate: float = 50_000.0,
    seconds: float = 30.0,
    replay_events: int = 1_000_000,
    shards: int = 2,
    stream: bool = True,
    trace: Path | None = None,
    placement: str | None = None,
    recs_target: str | None = None,
    recs_rate: float = 500.0,
    say: Callable[[str], None] = lambda m: None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"machine_cores": __import__("os").cpu_count(),
                           "load_average_at_start": [round(x, 2) for x in __import__("os").getloadavg()]}
    if stream:
        out.update(bench_stream(settings, events=events, rate=rate, seconds=seconds, shards=shards, say=say, trace=trace,
                                placement=placement, recs_target=recs_target, recs_rate=recs_rate))
    say("bench coview: offline replay")
    out.update(bench_replay(replay_events))
    say("bench coview: state memory")
    out.update(state_memory())
    out.setdefault("events_per_s", None)
    out.setdefault("freshness_p99_ms", None)
    return out


HEADLINE = (
    "freshness_p99_ms", "recent_freshness_p99_ms", "coview_freshness_p99_ms", "freshness_rate_achieved",
    "live_shard_cpu_us_per_event", "events_per_s", "shard_cpu_us_per_event", "replay_events_per_s",
    "read_age_p99_ms", "step_p99_ms", "checkpoint_max_ms", "generator_cores", "machine_busy_share",
)
"""The figures ``--runs N`` prints for each run and gives the median of."""


def median_of_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each headline figure over ``runs`` (those that have it)."""
    out: dict[str, Any] = {}
    for key in HEADLINE:
        vals = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
        if vals:
            out[key] = round(float(np.median(vals)), 1)
    return out


def bench_coview(
    events: int = typer.Option(600_000, help="Events for the throughput phase"),
    rate: float = typer.Option(50_000.0, help="Production rate of the freshness phase (events/s)"),
    seconds: float = typer.Option(30.0, help="Length of the freshness phase (long enough to show whether the lag holds or grows)"),
    replay_events: int = typer.Option(1_000_000, "--replay-events", help="Events for the offline replay"),
    shards: int = typer.Option(2),
    placement: Optional[str] = typer.Option(None, help="streaming.placement for the job: any, or spread (shards over the Ray nodes; start one with `hotpath services node up`)"),
    runs: int = typer.Option(1, min=1, max=20, help="Run the whole bench this many times: each run's headline figures, then their median (--json: the median figures at the top, each run under \"runs\")"),
    skip_stream: bool = typer.Option(False, "--skip-stream", help="Only the offline replay and memory"),
    recs_target: Optional[str] = typer.Option(None, "--recs-target",
                                              help="A running recs endpoint (as `hotpath up` prints it) to load with /related requests during the freshness phase"),
    recs_rate: float = typer.Option(500.0, "--recs-rate", min=1.0, max=20_000.0, help="With --recs-target: request rate"),
    trace: Optional[Path] = typer.Option(None, "--trace",
                                         help="Write each shard's live-phase series (read age, step, sink write and freshness times, in order) to this JSON file"),
    as_json: bool = typer.Option(False, "--json"),
    config: Optional[Path] = typer.Option(None, "--config"),
) -> None:
    """Throughput and freshness Kafka -> Redis, offline replay speed, state memory."""
    from hotpath.config import load_settings

    
    from hotpath.errors import BadInput

    if placement not in (None, "any", "spread"):
        raise BadInput(f"--placement {placement!r}: any or spread")
    s = load_settings(config, profile="full")
    say = lambda m: typer.echo(m, err=True)  # noqa: E731
    all_runs = []
    for i in range(runs):
        if runs > 1:
            say(f"bench coview: run {i + 1} of {runs}")
        one = run_bench(s, events=events, rate=rate, seconds=seconds, replay_events=replay_events, shards=shards,
                        stream=not skip_stream, trace=trace, placement=placement,
                        recs_target=recs_target, recs_rate=recs_rate, say=say)
        all_runs.append(one)
        if runs > 1:
            say(f"bench coview: run {i + 1}: " + ", ".join(f"{k} {one.get(k)}" for k in (*HEADLINE, "recs_load") if k in one))
    if runs == 1:
        result = all_runs[0]
    else:
        result = {**median_of_runs(all_runs), "median_of_runs": runs, "runs": all_runs}
        say("bench coview: median of " + str(runs) + " runs: " + ", ".join(f"{k} {v}" for k, v in median_of_runs(all_runs).items()))
    if as_json:
        typer.echo(json.dumps(result))
    else:
        for k, v in result.items():
            if k != "runs":
                typer.echo(f"{k:<28} {v}")
    sys.stdout.flush()


def register(bench: typer.Typer) -> None:
    """Add ``hotpath bench coview``."""
    bench.command("coview")(bench_coview)
