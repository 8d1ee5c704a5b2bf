"""In-process micro-benchmark of the recs hot path: CPU-µs per request, no Serve, no HTTP server.

``python -m bench.recs_micro [--masters 20000] [--n 3000] [--keep]``

Loads the bench's generated catalog into Redis under its own key prefix (kept between runs with
``--keep``; dropped otherwise), builds the replica's objects the way :class:`RecsIngress` does, warms
them, and measures with ``time.process_time`` (CPU of this process only, so other jobs on a shared
machine barely move it) over the bench's query mix:

* ``service``: :meth:`RecsService.related` / ``bestsellers`` with the user's history read already;
* ``handler``: the ingress handler end to end (:meth:`RecsIngress.handle`, what the shared port's
  ASGI adapter calls: parse, the async Redis read of the history, service, JSON body), awaited one
  at a time on an event loop.

``digest`` hashes every response body, so a change that alters an answer shows up as a new digest.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import sys
import time


def _settings(masters: int):
    from hotpath.config import load_settings

    s = load_settings()
    d = s.runtime_dir / "bench" / "recs-micro"
    d.mkdir(parents=True, exist_ok=True)
    return s.model_copy(
        update={
            "recs": s.recs.model_copy(update={"key_prefix": f"micro{masters}:", "promos_consumer": False}),
            "runtime_dir": d,
            "sqlite": s.sqlite.model_copy(update={"path": d / "dim.sqlite"}),
            "duckdb": s.duckdb.model_copy(update={"path": d / "rollups.duckdb"}),
        }
    )


def _ensure_loaded(s, cat) -> None:
    from hotpath.recs.model import ALL_CATEGORIES, Keys
    from hotpath.recs.loader import load_catalog
    from hotpath.stores.factory import open_dimension_store, open_hot_cache
    from hotpath.stores.redis_fast import bulk_writer
    from hotpath.stores.rollups import DuckDbRollupStore

    cache = open_hot_cache(s)
    keys = Keys(s.recs.key_prefix)
    if cache.ztop(keys.bestsellers(ALL_CATEGORIES), 1) and s.in_runtime(s.sqlite.path).exists():
        cache.close()
        return
    for p in (s.in_runtime(s.sqlite.path), s.in_runtime(s.duckdb.path)):
        if p.exists():
            p.unlink()
    store = open_dimension_store(s)
    roll = DuckDbRollupStore(s.in_runtime(s.duckdb.path))
    t = time.perf_counter()
    load_catalog(cat, s.recs, cache, bulk_writer(cache), store, roll)
    roll.close()
    store.close()
    cache.close()
    print(f"loaded in {time.perf_counter() - t:.1f} s", file=sys.stderr)


def _request(path_qs: str):
    from starlette.requests import Request

    path, _, qs = path_qs.partition("?")
    return Request({"type": "http", "method": "GET", "path": path, "query_string": qs.encode(), "headers": []})


def main(argv: list[str] | None = None) -> dict:
    import logging

    logging.getLogger("hotpath").setLevel(logging.ERROR)
    ap = argparse.ArgumentParser()
    ap.add_argument("--masters", type=int, default=20_000)
    ap.add_argument("--n", type=int, default=3000, help="requests per measured pass")
    ap.add_argument("--keep", action="store_true", help="keep the loaded catalog for the next run")
    ap.add_argument("--rounds", type=int, default=5, help="measured passes (the best counts)")
    ap.add_argument("--profile", choices=["related", "bestsellers", "handler"], default=None)
    a = ap.parse_args(argv)

    from hotpath.deployments.recs import RecsIngress
    from hotpath.recs.catalog import generate, master_uuid
    from hotpath.recs.model import parse_bestsellers, parse_related
    from hotpath.recs.settings import CatalogSettings

    s = _settings(a.masters)
    cat = generate(CatalogSettings(masters=a.masters, users=max(100, a.masters // 10)))
    _ensure_loaded(s, cat)

    Ingress = RecsIngress.func_or_class
    ing = Ingress(s, True)
    svc = ing.service

    # the bench's query mix
    rng = random.Random(5)
    U = len(cat.user_views)
    widgets = list(s.recs.widgets)
    rel = [
        f"/related?user_id=u{rng.randrange(U)}&master_id={master_uuid(rng.randrange(cat.n_masters))}"
        f"&widget={rng.choice(widgets)}&k=20"
        for _ in range(5000)
    ]
    bs = [f"/bestsellers?category_id={rng.choice(cat.cat_ids)}&user_id=u{rng.randrange(U)}&k=20" for _ in range(2000)]
    n = a.n
    rel_paths = [rel[i % len(rel)] for i in range(n)]
    bs_paths = [bs[i % len(bs)] for i in range(n)]
    prefix = s.recs.route_prefix

    def prepare(paths, parse):
        out = []
        for p in paths:
            params = dict(_request(prefix + p).query_params)
            q = parse(params, s.recs)
            out.append((q, svc._ztop_many(*svc.user_keys(q.user_id)) if q.user_id else None))
        return out

    rel_q = prepare(rel_paths, parse_related)
    bs_q = prepare(bs_paths, parse_bestsellers)

    def run_service(qs, fn) -> float:
        t = time.process_time()
        for q, h in qs:
            fn(q, h)
        return (time.process_time() - t) / len(qs) * 1e6

    loop = asyncio.new_event_loop()

    split = [((prefix + p).partition("?")[0], (prefix + p).partition("?")[2].encode()) for p in set(rel_paths + bs_paths)]
    split = dict(zip([p for p in set(rel_paths + bs_paths)], split))

    async def handle_all(paths):
        out = []
        for p in paths:
            path, qs = split[p]
            out.append((await ing.handle("GET", path, qs, lambda: None))[1])
        return out

    def run_handler(paths) -> tuple[float, str]:
        t = time.process_time()
        bodies = loop.run_until_complete(handle_all(paths))
        dt = time.process_time() - t
        h = hashlib.blake2b(digest_size=16)
        for b in bodies:  # format-independent: the parsed values, canonically re-encoded
            h.update(json.dumps(json.loads(b), sort_keys=True).encode())
        return dt / len(paths) * 1e6, h.hexdigest()

    # warm: every query once (semantic lists, rows of non-hot masters, compiled lists)
    run_service(rel_q, svc.related)
    run_service(bs_q, svc.bestsellers)
    run_handler(rel_paths[:200])

    if a.profile:
        import cProfile
        import pstats

        pr = cProfile.Profile()
        pr.enable()
        if a.profile == "related":
            run_service(rel_q, svc.related)
        elif a.profile == "bestsellers":
            run_service(bs_q, svc.bestsellers)
        else:
            run_handler(rel_paths)
        pr.disable()
        pstats.Stats(pr).sort_stats("tottime").print_stats(35)
        pstats.Stats(pr).sort_stats("cumulative").print_stats(45)

    res: dict = {"n": n, "masters": a.masters, "load_avg": [round(x, 2) for x in os.getloadavg()]}
    best = {}
    for rnd in range(a.rounds):
        for name, fn in (("related_service_us", lambda: run_service(rel_q, svc.related)),
                         ("bestsellers_service_us", lambda: run_service(bs_q, svc.bestsellers))):  # fmt: skip
            v = fn()
            best[name] = min(best.get(name, v), v)
        for name, paths in (("related", rel_paths), ("bestsellers", bs_paths)):
            v, d = run_handler(paths)
            best[f"{name}_handler_us"] = min(best.get(f"{name}_handler_us", v), v)
            res[f"{name}_digest"] = d
    res.update({k: round(v, 1) for k, v in best.items()})
    res["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]

    loop.run_until_complete(ing._areader.close())
    loop.close()
    svc.close()
    if not a.keep:
        from hotpath.stores.factory import open_hot_cache

        cache = open_hot_cache(s)
        keys = list(cache.scan(s.recs.key_prefix))
        for i in range(0, len(keys), 1000):
            cache.delete(*keys[i : i + 1000])
        cache.close()
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
