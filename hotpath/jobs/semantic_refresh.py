"""The daily semantic refresh as a Ray Data job (submitted with ``hotpath jobs submit semantic-refresh``).

Pipeline::

    hot masters  = recent orders (rollup store) + recent views (Redis user:recent_views)
                   + recs:refresh_queue + new/changed titles + oldest stale rows (> 90 days)
    to embed     = new or changed titles only (stored embeddings keyed by a title hash)
    Ray Data     : titles -> map_batches(MiniLM on ONNX Runtime, actor pool, CPU; GPU when present)
    side table   : every master's embedding, Parquet under the data dir (replaced atomically)
    faiss        : index over ALL masters' embeddings (exact for small catalogs, HNSW above)
    maps         : top-k neighbours of each HOT master -> related_masters
    writes       : DimensionStore.update_semantic(hot rows only) with inference_ts / inference_source,
                   then the Redis mirror master:sem:{mid} (+ master:meta inference_ts) of hot masters,
                   an invalidation ``master:{mid}`` per master, and the drained queue entries removed.

Nothing is written before every embedding exists and the side table is saved: a job that fails
before the write step leaves every old map (and the old side table) as it was. Cold masters are
never written. Progress lines (``[progress] stage: done/total (pct) rate``) go to the job's log;
the last line of a successful run is ``[result] {json}``.

Run by Ray Job Submission as ``python -m hotpath.jobs.semantic_refresh``; settings come in the
``HOTPATH_JOB_SETTINGS`` environment variable (the submitting CLI's resolved settings, JSON).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

import numpy as np

from hotpath.config import Settings
from hotpath.errors import HotpathError

__all__ = ["run_refresh", "main", "EmbedTitles", "SETTINGS_ENV", "RESULT_TAG"]

log = logging.getLogger("hotpath.jobs.semantic_refresh")

SETTINGS_ENV = "HOTPATH_JOB_SETTINGS"
RESULT_TAG = "[result]"
_BLOCK_ROWS = 512  # titles per Ray Data block (parallelism across the actor pool)


class EmbedTitles:
    """The ``map_batches`` callable class: one MiniLM ONNX Runtime session per actor."""

    def __init__(self, cache_dir: str, threads: int, device: str) -> None:
        from hotpath.embeddings import MiniLMEncoder

        self.encoder = MiniLMEncoder.load(cache_dir=cache_dir, threads=threads, device=device)
        self.batch_size = 64

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        titles = [str(t) for t in batch["title"].tolist()]
        vecs = self.encoder.embed(titles, batch_size=max(len(titles), 1))
        return {"row": np.asarray(batch["row"], dtype=np.int64), "embedding": vecs}


def _say_default(line: str) -> None:
    print(line, flush=True)


def _embed_with_ray_data(titles: list[str], rows: list[int], settings: Settings, say) -> np.ndarray:
    """Embeddings [len(rows), 384] of ``titles[rows]``, computed by a Ray Data actor pool."""
    import pyarrow as pa
    import ray
    from ray.data import ActorPoolStrategy

    from hotpath.embeddings import DIM
    from hotpath.refresh.progress import Progress

    r = settings.refresh
    out = np.zeros((len(rows), DIM), np.float32)
    if not rows:
        return out
    gpus = float(ray.cluster_resources().get("GPU", 0.0))
    device = "cuda" if gpus >= 1 else "cpu"
    blocks = [
        pa.table({"row": pa.array(np.arange(i, min(i + _BLOCK_ROWS, len(rows)), dtype=np.int64)),
                  "title": pa.array([titles[j] for j in rows[i:i + _BLOCK_ROWS]], pa.string())})  # fmt: skip
        for i in range(0, len(rows), _BLOCK_ROWS)
    ]
    ds = ray.data.from_arrow(blocks)
    resources = {"num_gpus": 1} if device == "cuda" else {"num_cpus": r.encoder_threads}
    ds = ds.map_batches(
        EmbedTitles,
        fn_constructor_kwargs={
            "cache_dir": str(settings.runtime_dir / "models"),
            "threads": r.encoder_threads,
            "device": device,
        },
        batch_size=r.batch_size,
        batch_format="numpy",
        # Ray Data's actor pool restarts a killed encoder (max_restarts=-1) and retries its
        # batches (max_task_retries=-1) by default: a lost worker costs time, not rows
        compute=ActorPoolStrategy(size=r.encoders),
        **resources,
    )
    say(f"embedding {len(rows)} titles on {r.encoders} {device.upper()} encoder actor(s), batch {r.batch_size}")
    prog = Progress("embed", len(rows), say)
    seen = np.zeros(len(rows), dtype=bool)
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        idx = np.asarray(batch["row"], dtype=np.int64)
        out[idx] = np.asarray(batch["embedding"], dtype=np.float32)
        fresh = int((~seen[idx]).sum())
        seen[idx] = True
        prog.advance(fresh)
    if not seen.all():
        raise HotpathError(f"the embedding stage returned {int(seen.sum())} of {len(rows)} titles")
    return out


def _recent_masters(settings: Settings, cache, keys, since_s: float, say) -> list[str]:
    """Masters ordered (rollup store) or viewed (users' recent views in Redis) since ``since_s``."""
    from hotpath.stores.rollups import open_rollup_store

    out: list[str] = []
    path = settings.in_runtime(settings.duckdb.path)
    if path.exists():
        rollups = open_rollup_store(settings, read_only=True)
        try:
            out += [m for m, _ in rollups.top_sellers("_all", 50_000_000, since_ms=int(since_s * 1000))]
        finally:
            rollups.close()
    else:
        say(f"no rollup store at {path}: recent orders skipped")
    n_orders = len(out)
    users = [k for k in cache.scan(keys.recent_views("")) if k]
    for i in range(0, len(users), 500):
        for views in cache.ztop_many(users[i:i + 500], 1000):
            out += [m for m, t in views if t >= since_s]
    say(f"recent activity since {datetime.fromtimestamp(since_s, UTC):%Y-%m-%d %H:%M}Z: "
        f"{n_orders} ordered masters, {len(out) - n_orders} views by {len(users)} users")  # fmt: skip
    return list(dict.fromkeys(out))


def run_refresh(
    settings: Settings,
    *,
    hot_since_s: float | None = None,
    micro_batch: bool = False,
    now: float | None = None,
    say: Callable[[str], None] = _say_default,
) -> dict:
    """One refresh run (needs a connected Ray driver for the embedding stage); returns its summary."""
    from hotpath.embeddings import DIM
    from hotpath.recs.keys import Keys
    from hotpath.refresh.embedding_store import load_embeddings, merge, save_embeddings, title_hash
    from hotpath.refresh.neighbours import NeighbourIndex, related_maps
    from hotpath.refresh.progress import Progress
    from hotpath.refresh.selection import select_hot, stale_masters
    from hotpath.refresh.titles import load_titles
    from hotpath.stores.base import SemanticRelations
    from hotpath.stores.factory import open_dimension_store, open_hot_cache

    r = settings.refresh
    t_start = time.perf_counter()
    now = float(now if now is not None else time.time())
    window = hot_since_s if hot_since_s is not None else r.hot_since_s
    # a micro-batch covers new/changed products, the queue and stale rows; recent activity only
    # when a window is asked for explicitly (``--micro-batch --hot-since 2h``)
    with_recent = not micro_batch or hot_since_s is not None
    keys = Keys(settings.recs.key_prefix)
    timings: dict[str, float] = {}

    def lap(name: str, t0: float) -> None:
        timings[name] = round(time.perf_counter() - t0, 3)

    t0 = time.perf_counter()
    cat = load_titles(settings.in_runtime(r.catalog_path))
    ids = cat.ids
    hashes = np.array([title_hash(t) for t in cat.titles], dtype=np.int64)
    emb_path = settings.in_runtime(r.embeddings_path)
    stored = load_embeddings(emb_path, DIM)
    changed_rows = stored.stale_of(ids, hashes)
    say(f"catalog: {len(ids)} masters; {len(stored)} stored embeddings; {len(changed_rows)} new or changed titles")
    lap("catalog", t0)

    cache = open_hot_cache(settings)
    store = open_dimension_store(settings)
    try:
        t0 = time.perf_counter()
        store.ensure_schema()
        queued = [m for m, _ in cache.ztop(keys.refresh_queue, 10_000_000)]
        recent = _recent_masters(settings, cache, keys, now - window, say) if with_recent else []
        inference_ts: dict[str, float] = {}
        uuids = [UUID(m) for m in ids]
        for i in range(0, len(uuids), 5000):
            for mid, row in store.get_semantic(uuids[i:i + 5000]).items():
                inference_ts[str(mid)] = row.inference_ts.timestamp()
        stale = stale_masters(inference_ts, now, r.stale_after_days, limit=r.stale_per_run)
        hot, unknown = select_hot(
            known=set(ids), recent=recent, queued=queued,
            changed=[ids[i] for i in changed_rows], stale=stale, micro_batch=not with_recent,
        )  # fmt: skip
        counts = hot.counts()
        say(f"hot masters: {len(hot)} of {len(ids)} ({', '.join(f'{k} {v}' for k, v in counts.items())}); "
            f"{len(unknown)} queued/recent ids not in the catalog ignored"
            + (" [micro-batch]" if micro_batch else ""))  # fmt: skip
        lap("select", t0)

        # ---------------------------------------------------------------- embeddings (Ray Data)
        t0 = time.perf_counter()
        new_vecs = _embed_with_ray_data(cat.titles, changed_rows, settings, say)
        lap("embed", t0)
        t0 = time.perf_counter()
        merged = merge(stored, ids, hashes, changed_rows, new_vecs)
        if changed_rows or len(stored) != len(ids):
            save_embeddings(emb_path, merged)
            say(f"stored {len(merged)} embeddings in {emb_path}")
        lap("store_embeddings", t0)

        summary: dict = {
            "masters": len(ids), "hot": len(hot), "hot_reasons": counts, "embedded": len(changed_rows),
            "reused_embeddings": len(ids) - len(changed_rows), "micro_batch": micro_batch,
            "window_s": window if with_recent else None, "written_rows": 0, "redis_keys": 0, "queue_drained": 0,
        }  # fmt: skip
        if not len(hot):
            say("no hot masters: nothing to refresh")
            summary["seconds"] = timings | {"total": round(time.perf_counter() - t_start, 3)}
            return summary

        # ---------------------------------------------------------------- neighbours
        t0 = time.perf_counter()
        index = NeighbourIndex.build(
            merged.vectors, exact_below=r.exact_below, m=r.hnsw_m,
            ef_construction=r.hnsw_ef_construction, ef_search=r.hnsw_ef_search,
        )  # fmt: skip
        say(f"neighbour index over {index.size} masters ({'exact' if index.exact else 'HNSW'}) "
            f"built in {time.perf_counter() - t0:.1f}s")  # fmt: skip
        pos = {m: i for i, m in enumerate(ids)}
        hot_rows = np.array([pos[m] for m in hot.masters], dtype=np.int64)
        maps: list[dict[str, float]] = []
        prog = Progress("neighbours", len(hot_rows), say)
        for i in range(0, len(hot_rows), 4096):
            q = hot_rows[i:i + 4096]
            scores, rows = index.search(merged.vectors[q], r.neighbours + 1)
            maps += related_maps(q, scores, rows, ids, k=r.neighbours, min_score=r.min_score)
            prog.advance(len(q))
        lap("neighbours", t0)

        # ---------------------------------------------------------------- writes: hot rows only
        t0 = time.perf_counter()
        stamp = datetime.fromtimestamp(int(now), UTC)
        prog = Progress("write", len(hot), say)
        written0 = store.semantic_rows_written
        for i in range(0, len(hot), r.upsert_chunk):
            chunk = [
                SemanticRelations(UUID(m), {UUID(k): v for k, v in rel.items()}, stamp, r.inference_source)
                for m, rel in zip(hot.masters[i:i + r.upsert_chunk], maps[i:i + r.upsert_chunk])
            ]
            store.update_semantic(chunk)
            prog.advance(len(chunk))
        summary["written_rows"] = store.semantic_rows_written - written0
        lap("write", t0)

        t0 = time.perf_counter()
        channel = keys.channel(settings.recs.invalidation_channel)
        prog = Progress("redis", len(hot), say)
        for i in range(0, len(hot), 1000):
            mids = hot.masters[i:i + 1000]
            cache.zreplace_many({keys.sem(m): rel for m, rel in zip(mids, maps[i:i + 1000])},
                                ttl_s=settings.recs.semantic_ttl_s)  # fmt: skip
            metas = cache.hgetall_many([keys.meta(m) for m in mids])
            for m, meta in zip(mids, metas):
                if meta:  # a mirrored master: its freshness stamp moves with its map
                    cache.hset(keys.meta(m), {"inference_ts": str(int(now))})
                cache.publish(channel, f"master:{m}|{now!r}")
            summary["redis_keys"] += len(mids)
            prog.advance(len(mids))
        drained = [m for m in queued if m in hot or m in unknown]
        for i in range(0, len(drained), 1000):
            summary["queue_drained"] += cache.zrem(keys.refresh_queue, drained[i:i + 1000])
        lap("redis", t0)
        summary["seconds"] = timings | {"total": round(time.perf_counter() - t_start, 3)}
        summary["inference_ts"] = int(now)
        summary["index"] = "exact" if index.exact else "hnsw"
        return summary
    finally:
        store.close()
        cache.close()


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m hotpath.jobs.semantic_refresh")
    p.add_argument("--hot-since-s", type=float, default=None, help="hot window in seconds")
    p.add_argument("--micro-batch", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = _parse_args(argv)
    raw = os.environ.get(SETTINGS_ENV)
    try:
        if raw:
            from pydantic import ValidationError

            try:
                settings = Settings.model_validate_json(raw)
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                raise HotpathError(f"invalid job settings in {SETTINGS_ENV}: {problems}",
                                   hint="submit with the same hotpath version as the job's code") from exc
        else:
            from hotpath.config import load_settings

            settings = load_settings()
        import ray

        if not ray.is_initialized():
            ray.init(address="auto", namespace=settings.ray.namespace, log_to_driver=True)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # progress goes to the log as [progress] lines
        summary = run_refresh(settings, hot_since_s=args.hot_since_s, micro_batch=args.micro_batch)
    except HotpathError as exc:
        print(f"semantic refresh failed: {exc.one_line()}", file=sys.stderr, flush=True)
        return 2
    print(f"{RESULT_TAG} {json.dumps(summary)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
