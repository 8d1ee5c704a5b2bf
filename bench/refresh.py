"""``hotpath bench refresh``: the semantic refresh's speed and quality.

Keys of ``--json``:

* ``titles_per_s``: MiniLM (ONNX Runtime, batch 64, ``--threads``) titles embedded per second,
  the median of three passes (all the bench catalog's titles, then twice its first 1,024);
* ``ann_recall_at_10``: the HNSW index (the job's settings) against exact search, over the bench
  catalog's embeddings;
* ``planted_precision_at_10``: share of each master's 10 nearest neighbours that the catalog
  generator planted as related: the same leaf (titles are written from the leaf's vocabulary, and
  the generator's semantic relations are its group and other masters of its leaf) or one of its
  generated semantic relations (which adds the partner leaf); ``planted_group_recall_at_10``: the
  share of the master's planted group of 5 found;
* ``hot_refresh_s``: one job submitted through Ray Job Submission to the running cluster
  (``hotpath services up``) refreshing ``--hot`` masters (queued in ``recs:refresh_queue``, their
  titles not embedded yet) of the bench catalog, end to end (submit to SUCCEEDED);
* ``extrapolated_1m_100k_s``: that run's per-stage costs scaled to 100k hot masters of a 1M catalog
  (embedding and writes linear in the hot masters, exact search linear in hot x catalog, the
  catalog/selection stage linear in the catalog), with the assumptions in ``extrapolation``.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Optional
from uuid import UUID

import numpy as np
import typer

__all__ = ["register", "run_bench"]

BENCH_CATALOG = dict(departments=4, subcats_per_department=4, leaves_per_subcat=4, seed=5)


def _quality(cat, vecs: np.ndarray, settings, queries: int, seed: int = 0) -> dict:
    from hotpath.refresh.neighbours import NeighbourIndex, recall_at_k

    r = settings.refresh
    rng = np.random.default_rng(seed)
    q = np.sort(rng.choice(len(vecs), size=min(queries, len(vecs)), replace=False))
    exact = NeighbourIndex.build(vecs, exact=True)
    t0 = time.perf_counter()
    ann = NeighbourIndex.build(vecs, exact=False, m=r.hnsw_m, ef_construction=r.hnsw_ef_construction,
                               ef_search=r.hnsw_ef_search)  # fmt: skip
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, e = exact.search(vecs[q], 11)
    exact_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, a = ann.search(vecs[q], 11)
    ann_s = time.perf_counter() - t0
    drop_self = lambda rows: np.array([[x for x in row if x != i][:10] for i, row in zip(q, rows)])  # noqa: E731
    e10, a10 = drop_self(e), drop_self(a)
    leaf = cat.master_leaf
    prec, grp = [], []
    for i, hits in zip(q.tolist(), a10.tolist()):
        planted = {d for d, _ in cat.semantic_of(i)}
        prec.append(np.mean([(leaf[h] == leaf[i]) or (h in planted) for h in hits]))
        group = set(cat.group_of(i)) - {i}
        if group:
            grp.append(len(group & set(hits)) / len(group))
    return {
        "ann_recall_at_10": round(recall_at_k(a10, e10, 10), 4),
        "planted_precision_at_10": round(float(np.mean(prec)), 4),
        "planted_group_recall_at_10": round(float(np.mean(grp)), 4),
        "hnsw_build_s": round(build_s, 2),
        "hnsw_build_ms_per_vector": round(1000 * build_s / len(vecs), 3),
        "hnsw_queries_per_s": round(len(q) / max(ann_s, 1e-9), 1),
        "exact_pairs_per_s": round(len(q) * len(vecs) / max(exact_s, 1e-9)),
        "quality_queries": int(len(q)),
    }


def run_bench(settings, *, masters: int, hot: int, queries: int, threads: int, say) -> dict:
    from hotpath.clients.ray_jobs import RayJobs
    from hotpath.embeddings import MiniLMEncoder
    from hotpath.jobs.semantic_refresh import RESULT_TAG
    from hotpath.recs.catalog import generate, master_uuid
    from hotpath.recs.keys import Keys
    from hotpath.recs.settings import CatalogSettings
    from hotpath.refresh.embedding_store import StoredEmbeddings, save_embeddings, title_hash
    from hotpath.stores.base import SemanticRelations
    from hotpath.stores.redis_cache import RedisHotCache
    from hotpath.stores.sqlite_dim import SqliteDimensionStore

    now = time.time()
    cat = generate(CatalogSettings(masters=masters, users=1, **BENCH_CATALOG), now=now)
    titles = [cat.title(i) for i in range(cat.n_masters)]
    say(f"catalog: {cat.n_masters} masters in {cat.n_leaves} leaves")
    enc = MiniLMEncoder.load(cache_dir=settings.runtime_dir / "models", threads=threads)
    t0 = time.perf_counter()
    vecs = enc.embed(titles, batch_size=64)
    rates = [len(titles) / (time.perf_counter() - t0)]
    say(f"embedded all {len(titles)} titles: {rates[-1]:.1f} titles/s")
    sample = titles[:1024]
    for k in range(2):
        t0 = time.perf_counter()
        enc.embed(sample, batch_size=64)
        rates.append(len(sample) / (time.perf_counter() - t0))
        say(f"embedding pass {k + 2} ({len(sample)} titles): {rates[-1]:.1f} titles/s")
    out: dict = {"masters": cat.n_masters, "titles_per_s": round(statistics.median(rates), 1),
                 "titles_per_s_runs": [round(x, 1) for x in rates], "encoder_threads": threads}  # fmt: skip
    out |= _quality(cat, vecs, settings, queries)
    say(f"quality: {json.dumps({k: out[k] for k in ('ann_recall_at_10', 'planted_precision_at_10')})}")

    # ---------------------------------------------------------------- one hot refresh, end to end
    tmp = Path(tempfile.mkdtemp(prefix="bench-refresh-"))
    prefix = f"bench{uuid.uuid4().hex[:8]}:"
    cat.save(tmp / "catalog")
    s = settings.model_copy(update={
        "sqlite": settings.sqlite.model_copy(update={"path": tmp / "dim.sqlite"}),
        "duckdb": settings.duckdb.model_copy(update={"path": tmp / "no-rollups.duckdb"}),
        "recs": settings.recs.model_copy(update={"key_prefix": prefix}),
        "refresh": settings.refresh.model_copy(update={
            "catalog_path": tmp / "catalog", "embeddings_path": tmp / "embeddings.parquet",
            "encoder_threads": threads}),
    })  # fmt: skip
    hot = min(hot, cat.n_masters)
    rng = np.random.default_rng(1)
    hot_idx = sorted(rng.choice(cat.n_masters, size=hot, replace=False).tolist())
    hot_set = set(hot_idx)
    keep = [i for i in range(cat.n_masters) if i not in hot_set]
    save_embeddings(s.refresh.embeddings_path, StoredEmbeddings(
        [master_uuid(i) for i in keep], np.array([title_hash(titles[i]) for i in keep]), vecs[keep]))  # fmt: skip
    store = SqliteDimensionStore(s)
    stamp = datetime.fromtimestamp(int(now - 86400), UTC)
    store.put_semantic(SemanticRelations(UUID(master_uuid(i)), {UUID(master_uuid(d)): v for d, v in cat.semantic_of(i)},
                                         stamp, "synthetic-v1") for i in range(cat.n_masters))  # fmt: skip
    cache = RedisHotCache(s)
    keys = Keys(prefix)
    try:
        cache.zadd(keys.refresh_queue, {master_uuid(i): now for i in hot_idx})
        marks = store.semantic_write_marks([UUID(master_uuid(i)) for i in keep])
        client = RayJobs(s)
        t0 = time.perf_counter()
        job_id = client.submit_semantic_refresh(micro_batch=True)
        info = client.wait(job_id, timeout_s=s.refresh.job_timeout_s, poll_s=1.0)
        out["hot_refresh_s"] = round(time.perf_counter() - t0, 1)
        logs = client.logs(job_id)
        if info.status != "SUCCEEDED":
            raise typer.Exit(f"the bench refresh job {job_id} ended {info.status}: {logs[-2000:]}")
        res = json.loads([ln for ln in logs.splitlines() if ln.startswith(RESULT_TAG)][-1][len(RESULT_TAG):])
        cold_written = sum(1 for u, m in store.semantic_write_marks(list(marks)).items() if m != marks[u])
        out |= {"hot": hot, "job_id": job_id, "job_seconds": res["seconds"], "cold_rows_written": cold_written}
        out |= _extrapolate(res["seconds"], n=cat.n_masters, hot=hot, titles_per_s=out["titles_per_s"],
                            quality=out, exact_below=s.refresh.exact_below)  # fmt: skip
    finally:
        ks = list(cache.scan(prefix))
        if ks:
            cache.delete(*ks)
        cache.close()
        store.close()
    return out


def _extrapolate(sec: dict, *, n: int, hot: int, titles_per_s: float, quality: dict, exact_below: int,
                 big_n: int = 1_000_000, big_hot: int = 100_000) -> dict:  # fmt: skip
    """Scale one run's stage times to ``big_hot`` hot masters of a ``big_n`` catalog.

    Linear stages (catalog read and selection, the side table, writes, Redis) scale with the catalog
    or the hot set; embedding assumes every hot title is new or changed (the worst case); the search
    stage uses this run's measured rates: HNSW build per vector (x1.5 for the deeper graph) plus
    queries per second when ``big_n > exact_below`` (what the job does), else exact pairs per second.
    """
    f_hot, f_n = big_hot / hot, big_n / n
    hnsw_s = 1.5 * quality["hnsw_build_ms_per_vector"] / 1000 * big_n + big_hot / quality["hnsw_queries_per_s"]
    exact_s = big_hot * big_n / quality["exact_pairs_per_s"]
    est = {
        "catalog+select": (sec.get("catalog", 0) + sec.get("select", 0)) * f_n,
        "embed": big_hot / titles_per_s,
        "store_embeddings": sec.get("store_embeddings", 0) * f_n,
        "neighbours": hnsw_s if big_n > exact_below else exact_s,
        "write": sec.get("write", 0) * f_hot,
        "redis": sec.get("redis", 0) * f_hot,
    }
    return {
        "extrapolated_1m_100k_s": round(sum(est.values()), 1),
        "extrapolated_1m_100k_titles_unchanged_s": round(sum(est.values()) - est["embed"], 1),
        "extrapolation": {
            "stages_s": {k: round(v, 1) for k, v in est.items()},
            "neighbours_hnsw_s": round(hnsw_s, 1),
            "neighbours_exact_s": round(exact_s, 1),
            "assumes": "this run's stage costs scaled linearly; every hot title re-embedded at titles_per_s; "
                       "search from the measured HNSW build/query or exact pair rates; measured on the shared "
                       "2-core machine under heavy contention (load average 35-70), so an upper bound",
        },
    }


def register(bench: typer.Typer) -> None:
    @bench.command("refresh")
    def bench_refresh(
        masters: int = typer.Option(3000, min=100, max=1_000_000, help="Bench catalog size"),
        hot: int = typer.Option(300, min=1, help="Hot masters of the end-to-end run (new titles, queued)"),
        queries: int = typer.Option(500, min=10, help="Masters whose neighbours are scored for quality"),
        threads: int = typer.Option(2, min=1, max=64, help="ONNX Runtime intra-op threads"),
        as_json: bool = typer.Option(False, "--json"),
        config: Optional[Path] = typer.Option(None, "--config"),
    ) -> None:
        """Semantic refresh: titles/s, ANN recall@10, planted precision@10, one hot refresh through Job Submission."""
        from hotpath.config import load_settings

        s = load_settings(config)
        res = run_bench(s, masters=masters, hot=hot, queries=queries, threads=threads,
                        say=lambda m: typer.echo(m, err=True))  # fmt: skip
        if as_json:
            typer.echo(json.dumps(res))
        else:
            for k in ("titles_per_s", "ann_recall_at_10", "planted_precision_at_10", "hot_refresh_s",
                      "extrapolated_1m_100k_s"):
                typer.echo(f"{k:<26} {res.get(k)}")
