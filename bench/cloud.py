"""``hotpath bench cloud``: retrieval at scale, the extractive and LLM answers, recall@3 on the demo set.

    hotpath bench cloud --json [--store file|postgres|both] [--tenants 20] [--chunks 10000] [--no-llm]

Top-level keys: ``retrieval_p99_ms`` (the store's KNN over one tenant of ``--chunks`` chunks while
``--tenants`` tenants are loaded; the worst store measured), ``extractive_p99_ms`` (a whole answer
without an LLM: query embedding + retrieval + sentence extraction), ``llm_p50_ms`` (a whole answer by
the local llama.cpp server; null when it is not installed), ``recall_at_3`` (the right chunk among
the top 3 for each question of data/cloud/questions.jsonl), and ``cited_own_tenant`` (share of
answers whose citations are all the asking tenant's chunks, and at least one). ``baseline`` holds the
same retrieval as an exact numpy product over one tenant's matrix, measured in the same run.

Synthetic chunks have random unit vectors (the worst case for an HNSW index) and are kept between
runs (tenants ``bench-NN``), so a second run only measures.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import numpy as np
import typer

__all__ = ["register", "run"]

QUESTIONS = Path(__file__).resolve().parent.parent / "data" / "cloud" / "questions.jsonl"


def _pct(xs: list[float], p: float) -> float:
    return round(float(np.percentile(np.asarray(xs) * 1000.0, p)), 3)


def _load_synthetic(store, tenants: int, chunks: int, say) -> None:  # noqa: ANN001
    from hotpath.cloud.models import Chunk

    for t in range(tenants):
        tid = f"bench-{t:02d}"
        if store.count(tid) == chunks:
            continue
        store.drop_tenant(tid)
        rng = np.random.default_rng(t)
        v = rng.standard_normal((chunks, 384)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        rows = [Chunk(f"d{i // 20}#{i % 20}", f"d{i // 20}", i % 20, f"Doc {i // 20}", f"synthetic chunk {i} of {tid}")
                for i in range(chunks)]
        t0 = time.perf_counter()
        store.bulk_load(tid, rows, v)
        say(f"  {store.name}: loaded {tid} ({chunks} chunks, {time.perf_counter() - t0:.1f} s)")


def _retrieval(store, tenants: int, chunks: int, queries: int) -> dict:  # noqa: ANN001
    rng = np.random.default_rng(99)
    lat: list[float] = []
    hits_ok = 0
    head = min(chunks, 200)
    # the first rows of each tenant's matrix, regenerated from the load's seed (numpy fills in order)
    heads = [np.random.default_rng(t).standard_normal((head, 384)).astype(np.float32) for t in range(tenants)]
    for t in range(tenants):  # warm: each tenant's first search loads / caches it
        store.search(f"bench-{t:02d}", heads[t][0] / np.linalg.norm(heads[t][0]), 3)
    for i in range(queries):
        t = i % tenants
        tid = f"bench-{t:02d}"
        target = int(rng.integers(head))
        base = heads[t][target]
        q = base / np.linalg.norm(base) + rng.standard_normal(384).astype(np.float32) * 0.02
        q /= np.linalg.norm(q)
        t0 = time.perf_counter()
        hits = store.search(tid, q, 3)
        lat.append(time.perf_counter() - t0)
        hits_ok += bool(hits) and hits[0].chunk.text.startswith(f"synthetic chunk {target} ")
    return {"p50_ms": _pct(lat, 50), "p99_ms": _pct(lat, 99), "queries": queries, "top1_exact": round(hits_ok / queries, 3)}


def _baseline(chunks: int, queries: int) -> dict:
    rng = np.random.default_rng(0)
    m = rng.standard_normal((chunks, 384)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    lat = []
    for _ in range(queries):
        q = m[int(rng.integers(chunks))]
        t0 = time.perf_counter()
        s = m @ q
        top = np.argpartition(-s, 2)[:3]
        top[np.argsort(-s[top])]
        lat.append(time.perf_counter() - t0)
    return {"p50_ms": _pct(lat, 50), "p99_ms": _pct(lat, 99)}


def _demo(service, tenant: str, say) -> tuple[float, float, list[float], list[dict]]:  # noqa: ANN001
    """recall@3, cited-own-tenant share, extractive answer latencies, questions."""
    from hotpath.cloud.models import QueryRequest
    from hotpath.config import repo_root
    from hotpath.deployments.cloud_wiring import ingest_folder

    service.store.drop_tenant(tenant)
    ingest_folder(service, tenant, repo_root() / "data" / "cloud" / "docs", say=lambda _m: None)
    qs = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    good = cited = 0
    lat: list[float] = []
    llm, service.llm = service.llm, None
    service.answer(tenant, QueryRequest(tenant_id=tenant, text="warm up"))
    try:
        for q in qs:
            hits = service.retrieve(tenant, q["question"], k=3)
            good += any(h.chunk.doc_id == q["doc_id"] and q["contains"] in h.chunk.text for h in hits)
            t0 = time.perf_counter()
            a = service.answer(tenant, QueryRequest(tenant_id=tenant, text=q["question"]))
            lat.append(time.perf_counter() - t0)
            cited += bool(a.citations) and all(c.tenant_id == tenant for c in a.citations)
    finally:
        service.llm = llm
    return good / len(qs), cited / len(qs), lat, qs


def _llm(settings, service, tenant: str, qs: list[dict], n: int, say) -> dict:  # noqa: ANN001
    from hotpath.clients.llm import OpenAIChat
    from hotpath.cloud.models import QueryRequest
    from hotpath.cluster.llama import LlamaService

    svc = LlamaService(settings)
    why = svc.available()
    if why and not settings.cloud.llm.endpoint:
        return {"skipped": why}
    if not settings.cloud.llm.endpoint:
        svc.start(say)
    client = OpenAIChat(settings.cloud.llm)
    service.llm = client
    lat, toks, modes, samples = [], [], [], []
    for q in qs[:n]:
        t0 = time.perf_counter()
        a = service.answer(tenant, QueryRequest(tenant_id=tenant, text=q["question"]))
        dt = time.perf_counter() - t0
        modes.append(a.mode)
        if a.mode == "llm":
            lat.append(dt)
            gen_s = a.timings_ms.get("generate", dt * 1000) / 1000
            toks.append(client.last_usage.get("completion_tokens", 0) / max(gen_s, 1e-6))
            if len(samples) < 3:
                samples.append({"q": q["question"], "a": a.text})
    out = {"answers": len(modes), "llm_answers": modes.count("llm"), "threads": settings.cloud.llm.threads,
           "model": settings.cloud.llm.model, "samples": samples}
    if lat:
        out.update(p50_ms=_pct(lat, 50), p90_ms=_pct(lat, 90), tokens_per_s_p50=round(float(np.median(toks)), 1))
    return out


def run(settings, stores: list[str], tenants: int, chunks: int, queries: int, llm_n: int, say) -> dict:  # noqa: ANN001
    from hotpath.cloud.embedding import open_embedder
    from hotpath.cloud.service import CloudService
    from hotpath.stores.vectors_factory import open_vector_store

    embedder = open_embedder(settings.runtime_dir / "models", threads=settings.cloud.embed_threads)
    report: dict = {"tenants": tenants, "chunks_per_tenant": chunks, "stores": {},
                    "note": "timed on whatever machine ran it (load included); medians of repeated runs are quoted in docs/cloud.md"}
    report["baseline"] = {"exact_numpy": _baseline(chunks, queries)}
    for kind in stores:
        s = settings.model_copy(update={"cloud": settings.cloud.model_copy(update={"store": kind})})
        store = open_vector_store(s)
        say(f"cloud bench: {kind} store, {tenants} tenants x {chunks} chunks")
        _load_synthetic(store, tenants, chunks, say)
        r = _retrieval(store, tenants, chunks, queries)
        service = CloudService(s.cloud, store, embedder, None)
        recall, cited, lat, qs = _demo(service, "bench-demo", say)
        r.update(recall_at_3=round(recall, 3), cited_own_tenant=round(cited, 3),
                 extractive_p50_ms=_pct(lat, 50), extractive_p99_ms=_pct(lat, 99))
        report["stores"][kind] = r
        say(f"  {kind}: retrieval p99 {r['p99_ms']} ms, extractive p99 {r['extractive_p99_ms']} ms, recall@3 {recall:.3f}")
        if kind == stores[-1] and llm_n > 0:
            report["llm"] = _llm(s, service, "bench-demo", qs, llm_n, say)
        store.close()
    per = report["stores"].values()
    report["retrieval_p99_ms"] = max(r["p99_ms"] for r in per)
    report["extractive_p99_ms"] = max(r["extractive_p99_ms"] for r in per)
    report["recall_at_3"] = min(r["recall_at_3"] for r in per)
    report["cited_own_tenant"] = min(r["cited_own_tenant"] for r in per)
    report["llm_p50_ms"] = report.get("llm", {}).get("p50_ms")
    report["llm_tokens_per_s"] = report.get("llm", {}).get("tokens_per_s_p50")
    report["baseline_ratio"] = round(report["retrieval_p99_ms"] / max(report["baseline"]["exact_numpy"]["p99_ms"], 1e-3), 2)
    return report


def register(bench: typer.Typer) -> None:
    @bench.command("cloud")
    def cloud_cmd(
        store: str = typer.Option("both", help="file, postgres or both"),
        tenants: int = typer.Option(20, min=1),
        chunks: int = typer.Option(10_000, min=10),
        queries: int = typer.Option(1000, min=10),
        llm: int = typer.Option(10, help="Questions answered by the LLM (0: skip)"),
        no_llm: bool = typer.Option(False, "--no-llm"),
        as_json: bool = typer.Option(False, "--json"),
        config: Optional[Path] = typer.Option(None, "--config"),
    ) -> None:
        """Cloud assistant: retrieval p99 at scale, extractive/LLM answer latency, recall@3."""
        from hotpath.config import load_settings
        from hotpath.errors import BadInput

        stores = {"both": ["file", "postgres"], "file": ["file"], "postgres": ["postgres"]}.get(store)
        if stores is None:
            raise BadInput(f"unknown store {store!r}: file, postgres or both")
        say = (lambda m: typer.echo(m, err=True)) if as_json else typer.echo
        rep = run(load_settings(config), stores, tenants, chunks, queries, 0 if no_llm else llm, say)
        typer.echo(json.dumps(rep, indent=2) if as_json else json.dumps({k: v for k, v in rep.items() if k != "stores"}, indent=2))
