"""``hotpath bench recs``: the recommendation endpoints through a running Serve app, vs a baseline.

``hotpath bench recs --target URL`` measures any running endpoint instead (what ``make run``
printed, e.g. ``http://127.0.0.1:30000/v1/recs``): the demo catalog's ids (regenerated from the
settings, the same seed) drive ``/related`` and ``/bestsellers`` through ``wrk`` (``--generator
python``: an asyncio + httpx client; ``both``) at each of ``--connections`` (4, 8, 16, 32),
``--runs`` times interleaved; per point the medians of req/s, p50, p99 and the serving processes'
CPU µs per request (every local process listening on the target's port, read with psutil: robust
under contention), and the best point whose p99 is within ``--p99-ms`` (15): the target is met when
that point also reaches ``--target-rps`` (1,000). By Little's law 1,000 req/s at p99 <= 15 ms needs
few connections and spare capacity, so the low counts are the ones that can meet it.

Steps: load a generated catalog into Redis (bench key prefix), deploy two apps on Ray Serve: the
service (replica-local columns + pub/sub; on a shared port, as ``make run`` deploys it) and the *baseline* (the same pipeline written the
straightforward way: every request reads every zset and pipelines HGETALL of every candidate's
hashes); drive both with ``wrk`` on loopback (an asyncio+httpx generator when wrk is missing);
the service's endpoints are measured at the lowest concurrency (2, 4, 8, ... up to
``--concurrency``) whose short probe reaches ``--target-rps`` (``--no-sweep``: at ``--concurrency``),
the baseline at the same concurrency; time rerank of 1,000 candidates in-process, both ways; measure how
long a promo/stock change takes to reach serving.

By default a private Ray instance is started with ``RAY_SERVE_THROUGHPUT_OPTIMIZED=1`` (direct
ingress) and ``RAY_worker_niceness=0`` (Ray runs workers at nice 15, so a serving replica loses
every CPU contest on a shared machine), since both must be in the environment of the Ray processes;
``--address`` uses a running cluster instead. Bounded: every phase has a time limit.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np

from hotpath.config import Settings

__all__ = ["run_bench", "run_target", "format_target", "run_outage", "PacedLoad", "paced_related_load", "register"]

_WRK_LUA = r"""
local paths = {}
init = function(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  math.randomseed(os.time() * 1000 + (tonumber(args[2]) or 0))
end
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nRESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"errors":%d,"status_errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


_PACED_LUA = _WRK_LUA.replace("init = function(args)\n", "local pace = 0\ninit = function(args)\n  pace = tonumber(args[3]) or 0\n", 1) + r"""
delay = function()
  return pace
end
"""
"""The same script, each connection waiting ``args[3]`` ms between its requests (a paced load)."""


class PacedLoad:
    """wrk in the background at about ``rate`` req/s over ``paths`` (each of ``connections`` waits
    between its requests), for another benchmark to run beside; :meth:`finish` waits for it and
    returns the same figures as a sweep's measurement plus ``rate_target``."""

    def __init__(self, base: str, paths: list[str], seconds: float, rate: float, connections: int = 16,
                 latency_ms: float = 1.0) -> None:  # fmt: skip
        self.rate, self._dir = rate, tempfile.TemporaryDirectory()
        lua, pf = Path(self._dir.name, "paced.lua"), Path(self._dir.name, "paths.txt")
        lua.write_text(_PACED_LUA)
        pf.write_text("\n".join(paths) + "\n")
        self.seconds, self.connections = seconds, connections

        def cmd(secs: float, pace: int) -> list[str]:
            return ["wrk", "-t1", f"-c{connections}", f"-d{int(max(1, secs))}s", "--timeout", "2s",
                    "-s", str(lua), base, "--", str(pf), str(random.randrange(1 << 30)), str(pace)]  # fmt: skip

        # A connection sends one request per (pace + latency + timer slack): 2 s probes measure
        # the latter two, and the pace is set from them.
        # Two probes: the first also pays for connecting.
        cycle_ms = connections * 1000.0 / rate
        pace = max(0, round(cycle_ms - latency_ms))
        for _ in range(2):
            out = subprocess.run(cmd(2, pace), capture_output=True, text=True, timeout=40).stdout
            r = self._parse(out, "")
            got = r["requests"] / (r["duration_us"] / 1e6) if r["requests"] else 0.0
            overhead = connections * 1000.0 / got - pace if got > 0 else latency_ms
            pace = max(0, round(cycle_ms - max(0.0, overhead)))
        self.pace_ms = pace
        self._proc = subprocess.Popen(cmd(seconds, self.pace_ms), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    @staticmethod
    def _parse(out: str, err: str) -> dict:
        line = next((ln for ln in out.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            from hotpath.errors import ServiceError

            raise ServiceError(f"wrk gave no result: {(err or out).strip().splitlines()[-1:] or '(nothing)'}")
        return json.loads(line[len("RESULT ") :])

    def finish(self) -> dict:
        try:
            out, err = self._proc.communicate(timeout=self.seconds + 30)
        finally:
            self._dir.cleanup()
        return {"rate_target": self.rate, "connections": self.connections, "pace_ms": self.pace_ms,
                **_wrk_figures(self._parse(out, err), "wrk (paced)")}  # fmt: skip


def _pct(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples), q)) if samples else float("nan")


def _wrk(base: str, paths: list[str], seconds: float, concurrency: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        lua, pf = Path(d, "bench.lua"), Path(d, "paths.txt")
        lua.write_text(_WRK_LUA)
        pf.write_text("\n".join(paths) + "\n")
        cmd = [
            "wrk", "-t1", f"-c{concurrency}", f"-d{int(max(1, seconds))}s", "--timeout", "2s",
            "-s", str(lua), base, "--", str(pf), str(random.randrange(1 << 30)),
        ]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    return _wrk_figures(PacedLoad._parse(out, ""), "wrk")


def _wrk_figures(r: dict, generator: str) -> dict:
    """The figures of one wrk run's RESULT line."""
    return {
        "rps": round(r["requests"] / (r["duration_us"] / 1e6), 1),
        "p50_ms": round(r["p50_us"] / 1000, 2),
        "p99_ms": round(r["p99_us"] / 1000, 2),
        "requests": r["requests"],
        "errors": r["errors"] + r["status_errors"],
        "generator": generator,
    }


async def _httpx_load(base: str, paths: list[str], seconds: float, concurrency: int) -> dict:
    import httpx

    lat: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < stop:
            p = random.choice(paths)
            t = time.perf_counter()
            try:
                r = await client.get(base + p)
                if r.status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            lat.append(time.perf_counter() - t)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=5.0) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        dt = time.perf_counter() - t0
    ms = [x * 1000 for x in lat]
    return {
        "rps": round(len(lat) / dt, 1),
        "p50_ms": round(_pct(ms, 50), 2),
        "p99_ms": round(_pct(ms, 99), 2),
        "requests": len(lat),
        "errors": errors,
        "generator": "python",
    }


def _load(base: str | list[str], paths: list[str], seconds: float, concurrency: int, generator: str = "wrk") -> dict:
    """Drive one base URL, or several (one per direct-ingress replica) in parallel, splitting the
    concurrency; several are combined as total rps and the worst p50/p99 (conservative).
    ``generator``: ``wrk`` (external, in C; the Python client when wrk is missing) or ``python``."""
    bases = [base] if isinstance(base, str) else base
    if len(bases) == 1:
        if generator == "wrk" and shutil.which("wrk"):
            return _wrk(bases[0], paths, seconds, concurrency)
        return asyncio.run(_httpx_load(bases[0], paths, seconds, concurrency))
    from concurrent.futures import ThreadPoolExecutor

    per = max(1, concurrency // len(bases))
    with ThreadPoolExecutor(len(bases)) as ex:
        outs = list(ex.map(lambda b: _load(b, paths, seconds, per, generator), bases))
    return {
        "rps": round(sum(o["rps"] for o in outs), 1),
        "p50_ms": max(o["p50_ms"] for o in outs),
        "p99_ms": max(o["p99_ms"] for o in outs),
        "requests": sum(o["requests"] for o in outs),
        "errors": sum(o["errors"] for o in outs),
        "generator": outs[0]["generator"],
        "replica_endpoints": len(bases),
    }


_PROBE_MARGIN = 1.1
"""A probe must beat the target rate by this much: a full run is longer, so noisier, than its probe."""


def _sweep(root, paths: list[str], seconds: float, max_c: int, target_rps: float, probe_s: float, say,
           generator: str = "wrk") -> dict:  # fmt: skip
    """The lowest concurrency (2, 4, 8, ... up to ``max_c``) whose short probe sustains
    ``target_rps`` (with a 10 % margin), then a full ``seconds`` run there (at ``max_c`` when no
    level reaches it); ``target_reached`` says whether the full run did.

    A closed-loop generator at high concurrency measures queueing, not service: by Little's law,
    1,000 req/s with 32 in flight means 32 ms mean latency whatever the server does. So the
    figures that count are at the least load that still reaches the target rate."""
    levels = []
    c = 2
    while c < max_c:
        levels.append(c)
        c *= 2
    levels.append(max_c)
    probes = []
    chosen = None
    for c in levels:
        r = _load(root, paths, probe_s, c, generator)
        probes.append({"concurrency": c, **{k: r[k] for k in ("rps", "p50_ms", "p99_ms")}})
        say(f"bench:   probe c={c}: {r['rps']} req/s p50 {r['p50_ms']} p99 {r['p99_ms']} ms")
        if r["rps"] >= target_rps * _PROBE_MARGIN:
            chosen = c
            break
    c = chosen if chosen is not None else max_c
    say(f"bench:   full run at concurrency {c} for {seconds:.0f} s")
    out = _load(root, paths, seconds, c, generator)
    out.update({"concurrency": c, "target_rps": target_rps, "target_reached": out["rps"] >= target_rps,
                "sweep": probes})  # fmt: skip
    return out


def _rerank_timing(service, mids: list[str], widget: str, iters: int, *, baseline: bool) -> dict:
    """Rerank 1,000 random candidates, attribute fetch included: the service reads its local
    columns (re-reading only expired rows); the baseline pipelines HGETALL of every candidate's hashes."""
    from hotpath.recs.ranking import RowMerged

    rng = random.Random(3)
    lat = []
    for _ in range(iters):
        sample = rng.sample(mids, 1000)
        base = np.array([rng.random() for _ in sample])
        t = time.perf_counter()
        rows = np.array(service.table.rows(sample), dtype=np.int64)  # baseline: loads every row from Redis
        z = np.zeros(len(rows))
        m = RowMerged(rows, base, {"semantic": z, "best_seller": base, "co_view": z, "user_interest": z})
        service.rerank(m, widget, 20, refresh=not baseline)
        lat.append((time.perf_counter() - t) * 1000)
    return {"rps": round(1000 / np.mean(lat), 1), "p50_ms": round(_pct(lat, 50), 3), "p99_ms": round(_pct(lat, 99), 3), "candidates": 1000}


def _freshness(settings: Settings, base: str, cat) -> dict:
    """Mark the best pid of a served item out of stock; time until the served list drops it."""
    import httpx

    from hotpath.recs.catalog import master_uuid
    from hotpath.recs.loader import set_promo
    from hotpath.stores.factory import open_hot_cache

    cache = open_hot_cache(settings)
    url = f"{base}/related?master_id={master_uuid(11)}&k=5"
    with httpx.Client(timeout=5.0) as c:
        items = c.get(url).json()["items"]
        target = next((i for i in items if i["pid"]), None)
        if target is None:
            return {"ms": None}
        t0 = time.perf_counter()
        set_promo(cache, settings.recs, target["pid"], out_of_stock=True)
        ms = None
        while time.perf_counter() - t0 < 5:
            got = c.get(url).json()["items"]
            if all(i["pid"] != target["pid"] for i in got):
                ms = round((time.perf_counter() - t0) * 1000, 1)
                break
        set_promo(cache, settings.recs, target["pid"], out_of_stock=False)
    cache.close()
    return {"ms": ms, "pid": target["pid"], "target_ms": 1000}


def run_bench(
    settings: Settings,
    *,
    seconds: float = 30.0,
    concurrency: int = 32,
    masters: int = 20_000,
    address: str | None = None,
    replicas: int = 1,
    sweep: bool = True,
    target_rps: float = 1000.0,
    say=print,
) -> dict:
    import ray
    from ray import serve

    from hotpath.graphs.recs_app import build_recs_app, recs_base_url, recs_roots
    from hotpath.recs.catalog import generate, master_uuid
    from hotpath.recs.loader import load_catalog
    from hotpath.recs.settings import CatalogSettings
    from hotpath.stores.factory import open_dimension_store, open_hot_cache
    from hotpath.stores.redis_fast import bulk_writer
    from hotpath.stores.rollups import DuckDbRollupStore

    bench_dir = settings.runtime_dir / "bench" / "recs"
    recs = settings.recs.model_copy(update={"key_prefix": "bench:", "replicas": replicas})
    settings = settings.model_copy(
        update={
            "recs": recs,
            "runtime_dir": bench_dir,
            "sqlite": settings.sqlite.model_copy(update={"path": bench_dir / "dim.sqlite"}),
            "duckdb": settings.duckdb.model_copy(update={"path": bench_dir / "rollups.duckdb"}),
        }
    )
    shutil.rmtree(bench_dir, ignore_errors=True)
    bench_dir.mkdir(parents=True)

    say(f"bench: generating and loading {masters} masters")
    cat = generate(CatalogSettings(masters=masters, users=max(100, masters // 10)))
    cache = open_hot_cache(settings)
    store = open_dimension_store(settings)
    roll = DuckDbRollupStore(settings.in_runtime(settings.duckdb.path))
    t = time.perf_counter()
    rep = load_catalog(cat, recs, cache, bulk_writer(cache), store, roll)
    roll.close()
    store.close()
    load_s = time.perf_counter() - t

    own = address is None
    if own:
        os.environ["RAY_SERVE_THROUGHPUT_OPTIMIZED"] = "1"
        os.environ.setdefault("RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT", "30100")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ.setdefault("RAY_worker_niceness", "0")  # Ray runs workers at nice 15 by default
        os.environ.setdefault("RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", "1")  # teardown: 30 s per app
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, namespace="recs-bench",
                 _node_ip_address=settings.serve.host)  # fmt: skip
    else:
        ray.init(address=address, namespace="recs-bench", log_to_driver=False, _node_ip_address=settings.serve.host)
    result: dict = {}
    try:
        from ray.serve.config import HTTPOptions
        from ray.serve.schema import LoggingConfig

        http_port = settings.serve.http_port + (100 if own else 0)
        serve.start(http_options=HTTPOptions(host=settings.serve.host, port=http_port),
                    logging_config=LoggingConfig(enable_access_log=False))  # fmt: skip
        s_http = settings.model_copy(update={"serve": settings.serve.model_copy(update={"http_port": http_port})})
        say("bench: deploying the service and the baseline")
        from hotpath.graphs.recs_app import shared_port

        # the service on a shared port, as `make run` deploys it: past the range Serve's direct ingress
        # allocates from (+1 .. +900), and fixed (an ephemeral port picked here could be taken by an
        # outgoing connection before the replica binds it)
        svc_port = shared_port(s_http) + 950
        serve.run(build_recs_app(settings, local=True, name="RecsBench", http_port=svc_port), name="recs-bench",
                  route_prefix="/bench/v1/recs", blocking=False)  # fmt: skip
        base_settings = settings.model_copy(update={"recs": recs.model_copy(update={"replicas": 1})})
        serve.run(build_recs_app(base_settings, local=False, name="RecsBaseline"), name="recs-baseline", route_prefix="/baseline/v1/recs", blocking=False)  # noqa: E501
        _wait_running(serve, ["recs-bench", "recs-baseline"])
        bases = {
            "service": recs_base_url(s_http, app_name="recs-bench", route_prefix="/bench/v1/recs", http_port=svc_port),
            "baseline": recs_base_url(s_http, app_name="recs-baseline", route_prefix="/baseline/v1/recs"),
        }
        roots = {
            "service": [f"http://{settings.serve.host}:{svc_port}"],  # every replica shares it
            "baseline": recs_roots(s_http, app_name="recs-baseline"),
        }
        rng = random.Random(5)
        U = len(cat.user_views)
        widgets = list(recs.widgets)
        rel = [
            f"/related?user_id=u{rng.randrange(U)}&master_id={master_uuid(rng.randrange(cat.n_masters))}"
            f"&widget={rng.choice(widgets)}&k=20"
            for _ in range(5000)
        ]
        bs = [f"/bestsellers?category_id={rng.choice(cat.cat_ids)}&user_id=u{rng.randrange(U)}&k=20" for _ in range(2000)]
        result = {"machine": _machine(), "catalog": {"masters": cat.n_masters, "pids": cat.n_pids, "load_s": round(load_s, 1)}}
        result["baseline"] = {}
        for which, base in bases.items():
            from urllib.parse import urlsplit

            u = urlsplit(base)
            root, prefix = roots[which], u.path
            say(f"bench: warming {which} at {base}")
            _load(root, [prefix + p for p in rel], min(5, seconds), concurrency)
            _load(root, [prefix + p for p in bs], min(3, seconds), concurrency)
            out = result if which == "service" else result["baseline"]
            if which == "service" and sweep:
                probe_s = min(8.0, seconds)
                say(f"bench: service related: concurrency sweep to {target_rps:.0f} req/s")
                out["related"] = _sweep(root, [prefix + p for p in rel], seconds, concurrency, target_rps, probe_s, say)
                say("bench: service bestsellers: concurrency sweep")
                out["bestsellers"] = _sweep(root, [prefix + p for p in bs], max(5, seconds / 2), concurrency,
                                            target_rps, probe_s, say)  # fmt: skip
                continue
            c_rel = result["related"].get("concurrency", concurrency) if which == "baseline" else concurrency
            c_bs = result["bestsellers"].get("concurrency", concurrency) if which == "baseline" else concurrency
            say(f"bench: {which} related for {seconds:.0f} s at concurrency {c_rel}")
            out["related"] = _load(root, [prefix + p for p in rel], seconds, c_rel)
            out["related"]["concurrency"] = c_rel
            say(f"bench: {which} bestsellers for {seconds / 2:.0f} s")
            out["bestsellers"] = _load(root, [prefix + p for p in bs], max(5, seconds / 2), c_bs)
            out["bestsellers"]["concurrency"] = c_bs
        result["endpoints"] = bases

        # best-sellers on fallback: cache keys gone -> the rollup store answers (and writes back)
        say("bench: bestsellers on fallback (Redis keys deleted)")
        result["bestsellers_fallback"] = _fallback_timing(settings, bases["service"], cat, rng)

        say("bench: rerank of 1,000 candidates")
        from hotpath.deployments.recs import build_service

        svc = build_service(settings, local=True)
        base_svc = build_service(settings, local=False)
        mids = [master_uuid(i) for i in range(cat.n_masters)]
        svc.table.rows(mids)
        result["rerank"] = _rerank_timing(svc, mids, "sponsored", 300, baseline=False)
        result["baseline"]["rerank"] = _rerank_timing(base_svc, mids, "sponsored", 100, baseline=True)
        svc.close()
        base_svc.close()
        say("bench: promo/stock freshness")
        result["freshness"] = _freshness(settings, bases["service"], cat)
        result["ratio_vs_baseline"] = {
            k: round(result[k]["rps"] / result["baseline"][k]["rps"], 2) if result["baseline"][k]["rps"] else None
            for k in ("related", "bestsellers", "rerank")
        }
        result["config"] = {"seconds": seconds, "concurrency": concurrency, "sweep": sweep, "target_rps": target_rps,
                            "throughput_optimized": own,
                            "replicas": recs.replicas, "max_ongoing_requests": recs.max_ongoing_requests}  # fmt: skip
        result["load_report"] = rep.to_json()
    finally:
        try:
            serve.delete("recs-bench")
            serve.delete("recs-baseline")
            if own:
                serve.shutdown()
        finally:
            ray.shutdown()
            _drop_prefix(cache, "bench:")
            cache.close()
    return result


def _fallback_timing(settings: Settings, base: str, cat, rng: random.Random) -> dict:
    import httpx

    from hotpath.recs.model import Keys
    from hotpath.stores.factory import open_hot_cache

    cache = open_hot_cache(settings)
    keys = Keys(settings.recs.key_prefix)
    lat = []
    leaves = rng.sample(cat.cat_ids, min(60, len(cat.cat_ids)))
    cache.delete(*[keys.bestsellers(leaf) for leaf in leaves])
    channel = keys.channel(settings.recs.invalidation_channel)
    for leaf in leaves:  # the replica drops its local copies (what the job that changed them announces)
        cache.publish(channel, f"cat:{leaf}|{time.time()!r}")
    time.sleep(0.5)
    with httpx.Client(timeout=5.0) as c:
        for leaf in leaves:
            t = time.perf_counter()
            r = c.get(f"{base}/bestsellers?category_id={leaf}&k=20")
            lat.append((time.perf_counter() - t) * 1000)
            if r.status_code != 200 or "unknown_category" in r.json()["fallbacks"]:
                raise RuntimeError(f"fallback answer for {leaf} is wrong: {r.status_code}")
    cache.close()
    return {"p50_ms": round(_pct(lat, 50), 2), "p99_ms": round(_pct(lat, 99), 2), "requests": len(lat),
            "note": "sequential; each request's current category is gone from Redis and from the replica's "
                    "local copy (dropped by a cat: invalidation), so the rollup store answers"}  # fmt: skip


def _wait_running(serve, apps: list[str], timeout_s: float = 120) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout_s:
        st = serve.status().applications
        if all(a in st and str(st[a].status).endswith("RUNNING") for a in apps):
            return
        time.sleep(0.5)
    raise TimeoutError(f"apps {apps} not running after {timeout_s} s")


def _drop_prefix(cache, prefix: str) -> None:
    try:
        keys = list(cache.scan(prefix))
        for i in range(0, len(keys), 1000):
            cache.delete(*keys[i : i + 1000])
    except Exception:
        pass


def _machine() -> dict:
    try:
        load1 = os.getloadavg()[0]
    except OSError:
        load1 = None
    return {"cpus": os.cpu_count(), "load1_at_end": load1}


def _target_paths(settings: Settings, masters: int | None, n: int = 5000) -> tuple[list[str], list[str]]:
    """Query paths over the demo catalog (regenerated from the settings: same seed, same ids)."""
    from hotpath.recs.catalog import generate, master_uuid

    cs = settings.recs.catalog
    if masters is not None:
        cs = cs.model_copy(update={"masters": masters})
    cat = generate(cs)
    rng = random.Random(5)
    U = len(cat.user_views)
    widgets = list(settings.recs.widgets)
    rel = [
        f"/related?user_id=u{rng.randrange(U)}&master_id={master_uuid(rng.randrange(cat.n_masters))}"
        f"&widget={rng.choice(widgets)}&k=20"
        for _ in range(n)
    ]
    bs = [f"/bestsellers?category_id={rng.choice(cat.cat_ids)}&user_id=u{rng.randrange(U)}&k=20" for _ in range(n // 2)]
    return rel, bs


def _split_target(url: str) -> tuple[str, str]:
    """``http://host:port`` and the route prefix of a target (a base or any example URL under it)."""
    from urllib.parse import urlsplit

    u = urlsplit(url)
    if u.scheme not in ("http", "https") or not u.netloc:
        from hotpath.errors import BadInput

        raise BadInput(f"--target must be an http:// URL, got {url!r}", field="target")
    path = u.path.rstrip("/")
    for tail in ("/related", "/bestsellers", "/metrics", "/healthz"):
        if path.endswith(tail):
            path = path[: -len(tail)]
    return f"{u.scheme}://{u.netloc}", path


def paced_related_load(settings: Settings, target: str, seconds: float, rate: float, connections: int = 64) -> PacedLoad:
    """``/related`` requests over the demo catalog at about ``rate`` req/s against a running recs
    endpoint (``target`` as for ``--target``), in the background; see :class:`PacedLoad`. Many
    connections, each waiting long between its requests, so that the rate holds when the server
    slows down under the other load (a connection's cycle is its wait plus the latency)."""
    root, prefix = _split_target(target)
    rel, _ = _target_paths(settings, None, n=2000)
    return PacedLoad(root, [prefix + p for p in rel], seconds, rate, connections)


def _server_processes(root: str) -> list:
    """The local processes listening on the target's port (every replica sharing it), for their CPU
    time; empty when the target is not on this machine or psutil may not see them."""
    from urllib.parse import urlsplit

    import psutil

    u = urlsplit(root)
    if u.hostname not in ("127.0.0.1", "localhost", "::1", "0.0.0.0"):
        return []
    port = u.port or 80
    try:
        pids = {c.pid for c in psutil.net_connections("tcp") if c.status == "LISTEN" and c.laddr.port == port and c.pid}
        return [psutil.Process(p) for p in sorted(pids)]
    except (psutil.Error, OSError):
        return []


def _cpu_s(procs: list) -> float | None:
    import psutil

    try:
        return sum(t.user + t.system for t in (p.cpu_times() for p in procs)) if procs else None
    except psutil.Error:  # a replica went away mid-run
        return None


def _measure(root: str, paths: list[str], seconds: float, connections: int, generator: str, procs: list) -> dict:
    """One load run, with the serving processes' CPU per request (robust under contention: it counts
    the CPU the servers used, not the time requests waited for a core)."""
    c0 = _cpu_s(procs)
    r = _load(root, paths, seconds, connections, generator)
    c1 = _cpu_s(procs)
    r["cpu_us_per_req"] = round((c1 - c0) / r["requests"] * 1e6, 1) if c0 is not None and c1 is not None and r["requests"] else None
    r["load1"] = round(os.getloadavg()[0], 2)
    r["at"] = time.strftime("%H:%M:%S", time.gmtime())
    return r


DEFAULT_CONNECTIONS = (4, 8, 16, 32)


def run_target(
    settings: Settings,
    target: str,
    *,
    seconds: float = 10.0,
    connections: tuple[int, ...] = DEFAULT_CONNECTIONS,
    runs: int = 3,
    target_rps: float = 1000.0,
    p99_target_ms: float = 15.0,
    generators: tuple[str, ...] = ("wrk",),
    masters: int | None = None,
    say=print,
) -> dict:
    """Measure a running endpoint at each connection count of ``connections``, ``runs`` times
    (interleaved: run 1 at every count, then run 2, ... so a drifting machine load hits all counts
    alike); per count the medians of req/s, p50, p99 and CPU µs per request of the serving
    processes. ``best``: the highest-rate count whose median p99 is within ``p99_target_ms``;
    ``target_met``: it also reaches ``target_rps``. ``median`` (kept for callers): the best point,
    else the highest-rate one."""
    import httpx

    root, prefix = _split_target(target)
    rel, bs = _target_paths(settings, masters)
    probe = httpx.get(root + prefix + rel[0], timeout=10)
    if probe.status_code != 200:
        from hotpath.errors import ServiceUnavailable

        raise ServiceUnavailable(f"{target} answered {probe.status_code} to {rel[0]}: {probe.text[:200]}")
    procs = _server_processes(root)
    conns = tuple(sorted(set(connections)))
    out: dict = {"target": root + prefix, "machine": _machine(), "server_processes": len(procs), "config": {
        "seconds": seconds, "runs": runs, "connections": list(conns), "target_rps": target_rps,
        "p99_target_ms": p99_target_ms}}  # fmt: skip
    say(f"bench: warming {root + prefix} ({len(procs)} serving process(es) found on its port)")
    _load(root, [prefix + p for p in rel], min(5, seconds), 4)
    _load(root, [prefix + p for p in bs], min(3, seconds), 4)
    for gen in generators:
        res: dict = {}
        for name, paths in (("related", rel), ("bestsellers", bs)):
            full = [prefix + p for p in paths]
            by_c: dict[int, list[dict]] = {c: [] for c in conns}
            for i in range(runs):
                for c in conns:
                    r = _measure(root, full, seconds, c, gen, procs)
                    by_c[c].append(r)
                    say(f"bench: {gen} {name} run {i + 1}/{runs} c={c}: {r['rps']} req/s p50 {r['p50_ms']} "
                        f"p99 {r['p99_ms']} ms, {r['cpu_us_per_req']} cpu-µs/req, load {r['load1']}")  # fmt: skip
            sweep = []
            for c in conns:
                rs = by_c[c]
                cpu = [r["cpu_us_per_req"] for r in rs if r["cpu_us_per_req"] is not None]
                sweep.append({
                    "connections": c,
                    "rps": round(float(np.median([r["rps"] for r in rs])), 1),
                    "p50_ms": round(float(np.median([r["p50_ms"] for r in rs])), 2),
                    "p99_ms": round(float(np.median([r["p99_ms"] for r in rs])), 2),
                    "cpu_us_per_req": round(float(np.median(cpu)), 1) if cpu else None,
                    "errors": sum(r["errors"] for r in rs),
                    "runs": [{k: r[k] for k in ("at", "load1", "rps", "p50_ms", "p99_ms", "cpu_us_per_req", "errors")}
                             for r in rs],  # fmt: skip
                })
            within = [p for p in sweep if p["p99_ms"] <= p99_target_ms and p["errors"] == 0]
            best = max(within, key=lambda p: p["rps"]) if within else None
            top = best or max(sweep, key=lambda p: p["rps"])
            res[name] = {
                "sweep": sweep,
                "best": best,
                "target_met": best is not None and best["rps"] >= target_rps,
                "median": {"concurrency": top["connections"], **{k: top[k] for k in ("rps", "p50_ms", "p99_ms", "errors")}},
            }
        out[gen] = res
    return out


def format_target(res: dict) -> str:
    """The sweep as the table the target is judged by (one per generator and endpoint)."""
    cfg = res["config"]
    lines = [f"target {res['target']}  ({res['server_processes']} serving process(es); {cfg['runs']} runs of "
             f"{cfg['seconds']:g} s per point, medians; machine: {res['machine']['cpus']} cpus, "
             f"load1 {res['machine']['load1_at_end']:.1f})"]  # fmt: skip
    for gen in ("wrk", "python"):
        for ep in ("related", "bestsellers"):
            if ep not in res.get(gen, {}):
                continue
            r = res[gen][ep]
            lines.append(f"{gen} {ep}:")
            lines.append("  conns     req/s   p50 ms   p99 ms  cpu-µs/req  errors")
            for p in r["sweep"]:
                cpu = "-" if p["cpu_us_per_req"] is None else f"{p['cpu_us_per_req']:.0f}"
                lines.append(f"  {p['connections']:>5} {p['rps']:>9.1f} {p['p50_ms']:>8.2f} {p['p99_ms']:>8.2f}"
                             f" {cpu:>11} {p['errors']:>7}")  # fmt: skip
            b = r["best"]
            if b is None:
                lines.append(f"  best within p99 <= {cfg['p99_target_ms']:g} ms: none")
            else:
                verdict = "target met" if r["target_met"] else f"below {cfg['target_rps']:g} req/s"
                lines.append(f"  best within p99 <= {cfg['p99_target_ms']:g} ms: c={b['connections']} {b['rps']} req/s, "
                             f"p50 {b['p50_ms']} ms, p99 {b['p99_ms']} ms ({verdict})")  # fmt: skip
    return "\n".join(lines)


def register(bench) -> None:
    """``hotpath bench recs``."""
    import contextlib
    import sys

    import typer

    @bench.command("recs")
    def bench_recs(
        target: Optional[str] = typer.Option(None, help="Measure this running endpoint (e.g. what `make run` printed)"),
        seconds: Optional[float] = typer.Option(None, min=1.0, max=600.0,
                                                help="Load time per endpoint and run (default 30 s; with --target per sweep point, 10 s)"),
        connections: str = typer.Option(",".join(map(str, DEFAULT_CONNECTIONS)),
                                        help="With --target: the connection counts swept"),
        p99_ms: float = typer.Option(15.0, min=0.1, help="With --target: the p99 a sweep point must keep"),
        concurrency: int = typer.Option(32, min=1, max=1024, help="Highest concurrency (the sweep stops earlier)"),
        sweep: bool = typer.Option(True, "--sweep/--no-sweep",
                                   help="Measure at the lowest concurrency (2, 4, 8, ...) reaching --target-rps"),
        target_rps: float = typer.Option(1000.0, min=1.0, help="Rate the sweep looks for"),
        runs: int = typer.Option(3, min=1, max=20, help="With --target: runs per endpoint (the median is reported)"),
        generator: str = typer.Option("wrk", help="With --target: wrk, python or both"),
        masters: Optional[int] = typer.Option(None, min=100, max=1_000_000,
                                              help="Catalog size (default: 20,000; with --target: the settings' demo catalog)"),
        address: Optional[str] = typer.Option(None, help="Use this running Ray cluster (default: a private one)"),
        replicas: int = typer.Option(1, min=1, max=8, help="Ingress replicas of the service (all on its one shared port)"),
        outage: Optional[float] = typer.Option(None, min=5.0, max=300.0,
                                               help="With --target: kill this stack's Redis for this many seconds under load"),
        rate: float = typer.Option(200.0, min=1.0, help="With --outage: request rate"),
        as_json: bool = typer.Option(False, "--json"),
        config: Optional[Path] = typer.Option(None, "--config"),
    ) -> None:
        """Related and best-sellers through HTTP: a running endpoint (--target), or a private Serve app
        with the straightforward baseline and in-process rerank timing."""
        from hotpath.config import load_settings
        from hotpath.errors import BadInput

        s = load_settings(config)
        say = lambda m: typer.echo(m, err=True)  # noqa: E731
        if target is not None and outage is not None:
            typer.echo(json.dumps(run_outage(s, target, outage_s=outage, rate=rate, masters=masters, say=say)))
            return
        if target is not None:
            gens = ("wrk", "python") if generator == "both" else (generator,)
            if any(g not in ("wrk", "python") for g in gens):
                raise BadInput(f"--generator must be wrk, python or both, got {generator!r}", field="generator")
            try:
                conns = tuple(int(x) for x in connections.split(",") if x.strip())
            except ValueError:
                conns = ()
            if not conns or min(conns) < 1 or max(conns) > 1024:
                raise BadInput(f"--connections must be a comma-separated list of 1..1024, got {connections!r}",
                               field="connections")  # fmt: skip
            res = run_target(s, target, seconds=seconds or 10.0, connections=conns, runs=runs, target_rps=target_rps,
                             p99_target_ms=p99_ms, generators=gens, masters=masters, say=say)  # fmt: skip
            typer.echo(json.dumps(res) if as_json else format_target(res))
            return
        # Ray prints some teardown notices on stdout ("(raylet) Task ... failed"): with --json,
        # stdout carries the JSON object only
        with contextlib.redirect_stdout(sys.stderr):
            res = run_bench(s, seconds=seconds or 30.0, concurrency=concurrency, masters=masters or 20_000, address=address,
                            replicas=replicas, sweep=sweep, target_rps=target_rps, say=say)  # fmt: skip
        if as_json:
            typer.echo(json.dumps(res))
        else:
            for k in ("related", "bestsellers", "rerank"):
                r, b = res[k], res["baseline"][k]
                at = f" at c={r['concurrency']}" if "concurrency" in r else ""
                typer.echo(f"{k:<12} {r['rps']:>9} req/s{at}  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms   "
                           f"(baseline {b['rps']} req/s, p99 {b['p99_ms']} ms)")  # fmt: skip
            typer.echo(json.dumps({k: res[k] for k in ("bestsellers_fallback", "freshness", "ratio_vs_baseline")}))
        sys.stdout.flush()


def run_outage(settings: Settings, target: str, *, outage_s: float = 30.0, rate: float = 200.0,
               masters: int | None = None, say=print) -> dict:  # fmt: skip
    """Redis killed (SIGKILL) for ``outage_s`` under ``rate`` req/s of ``/related``, then restarted:
    5xx per second of the outage, degraded answers, how long after Redis's return an out-of-stock is
    honoured, and whether a promo event appended meanwhile was applied (nothing lost from the topic).

    Kills the Redis of *these settings* (``hotpath services``' own, by its PID file): run it on a
    private stack, never on a shared one."""
    import os as _os
    import signal
    import threading

    import httpx

    from hotpath.cluster.redis_server import RedisService
    from hotpath.recs.loader import set_promo
    from hotpath.streams.base import EventIn
    from hotpath.stores.factory import open_hot_cache
    from hotpath.streams.factory import open_event_log

    root, prefix = _split_target(target)
    rel, _ = _target_paths(settings, masters, n=2000)
    redis = RedisService(settings)
    if not redis.processes():
        from hotpath.errors import ServiceUnavailable

        raise ServiceUnavailable("no Redis of these settings is running (start it with `hotpath services up`)")
    samples: list[tuple[float, int, bool]] = []
    stop = threading.Event()

    def driver(k: int) -> None:
        with httpx.Client(timeout=2.0) as c:
            i, t_next = k, time.perf_counter()
            while not stop.is_set():
                t_next += 4.0 / rate
                try:
                    r = c.get(root + prefix + rel[i % len(rel)])
                    samples.append((time.time(), r.status_code, r.status_code == 200 and b'"degraded":true' in r.content))
                except httpx.HTTPError:
                    samples.append((time.time(), 599, False))
                i += 4
                d = t_next - time.perf_counter()
                if d > 0:
                    time.sleep(d)
                else:
                    t_next = time.perf_counter()

    threads = [threading.Thread(target=driver, args=(k,), daemon=True) for k in range(4)]  # rate / 4 each
    for th in threads:
        th.start()
    time.sleep(5)
    pid_probe = f"/related?master_id={rel[0].split('master_id=')[1].split('&')[0]}&k=10"
    with httpx.Client(timeout=5.0) as c:
        items = c.get(root + prefix + pid_probe).json()["items"]
    victim = next(i["pid"] for i in items if i["pid"])
    say(f"bench: killing Redis ({redis.processes()}) for {outage_s:.0f} s under {rate:.0f} req/s")
    t_kill = time.time()
    for p in redis.processes():
        _os.kill(p, signal.SIGKILL)
    time.sleep(1.0)
    redis.pid_path.unlink(missing_ok=True)
    s = settings.recs
    promo = json.dumps({"pid": victim, "boost": 3.0, "ts": time.time()}).encode()

    async def append() -> None:
        log = open_event_log(settings)
        try:
            await log.create_topic(s.promos_topic, s.promos_partitions)
            await log.append(s.promos_topic, [EventIn(promo, victim.encode())])
        finally:
            await log.close()

    asyncio.run(append())  # the topic takes it while Redis is down
    time.sleep(max(0.0, outage_s - (time.time() - t_kill)))
    redis.start()
    t_back = time.time()
    say("bench: Redis is back")
    cache = open_hot_cache(settings)
    set_promo(cache, s, victim, out_of_stock=True)
    honoured_ms = None
    with httpx.Client(timeout=5.0) as c:
        while time.time() - t_back < 10:
            r = c.get(root + prefix + pid_probe)
            if r.status_code == 200 and all(i["pid"] != victim for i in r.json()["items"]):
                honoured_ms = round((time.time() - t_back) * 1000)
                break
            time.sleep(0.02)
    time.sleep(3)
    promo_applied = cache.hgetall(f"{s.key_prefix}promo:{victim}").get("boost")
    set_promo(cache, s, victim, out_of_stock=False)
    cache.close()
    stop.set()
    for th in threads:
        th.join(5)
    during = [x for x in samples if t_kill <= x[0] < t_back]
    per_s: dict[int, int] = {}
    for t, code, _ in during:
        if code >= 500:
            per_s[int(t - t_kill)] = per_s.get(int(t - t_kill), 0) + 1
    return {
        "outage_s": round(t_back - t_kill, 1), "requests_during": len(during),
        "rate_achieved": round(len(during) / max(1e-9, t_back - t_kill), 1),
        "degraded_during": sum(1 for x in during if x[2]),
        "5xx_during": sum(per_s.values()), "5xx_by_second": per_s,
        "5xx_after_first_second": sum(n for sec, n in per_s.items() if sec >= 1),
        "out_of_stock_honoured_ms_after_return": honoured_ms,
        "promo_appended_during_outage_applied": promo_applied == "3.0",
        "5xx_after_return": sum(1 for t, code, _ in samples if t >= t_back and code >= 500),
    }
