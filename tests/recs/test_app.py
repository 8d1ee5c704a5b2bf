"""The Serve application over HTTP on the local Ray cluster (embedded profile, real Redis + SQLite)."""

from __future__ import annotations

import random
import time

import httpx
import pytest

from hotpath.recs.catalog import master_uuid

from .conftest import bs_queries, queries

pytestmark = [pytest.mark.ray, pytest.mark.services]

APP, PREFIX = "recs-test", "/test-recs/v1/recs"


def _test_port(s, n: int) -> int:
    """A shared port for a test app: past Serve's direct-ingress range (+1 .. +900 above the stack's
    own shared port) and fixed (an ephemeral port can be taken by an outgoing connection meanwhile)."""
    from hotpath.graphs.recs_app import shared_port

    return shared_port(s) + 960 + n


@pytest.fixture(scope="module")
def urls(ray_session, redis_sqlite):
    """The app deployed with a shared port (as `make run` does): ``{"shared": its URL, "serve":
    the replica's Serve direct-ingress URL}`` (both answer, the same way)."""
    from ray import serve

    from hotpath.graphs.recs_app import deploy_recs, recs_base_url

    s, _, _ = redis_sqlite
    port = _test_port(s, 0)
    deploy_recs(s, name=APP, route_prefix=PREFIX, http_port=port)
    out = {"shared": recs_base_url(s, app_name=APP, route_prefix=PREFIX, http_port=port),
           "serve": recs_base_url(s, app_name=APP, route_prefix=PREFIX)}  # fmt: skip
    assert out["shared"] != out["serve"]
    for url in out.values():
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
    yield out
    serve.delete(APP)


@pytest.fixture(scope="module", params=["shared", "serve"])
def base_url(urls, request) -> str:
    return urls[request.param]


def test_endpoints_answer_like_the_reference(base_url: str, catalog, reference) -> None:
    rng = random.Random(9)
    with httpx.Client(timeout=10) as c:
        for q in queries(catalog, rng, 12, ["pdp_related", "sponsored", "homepage"]):
            params = {"widget": q.widget, "k": q.k}
            if q.user_id:
                params["user_id"] = q.user_id
            if q.master_id:
                params["master_id"] = q.master_id
            r = c.get(f"{base_url}/related", params=params)
            assert r.status_code == 200, r.text
            assert r.json()["items"] == [i.to_json() for i in reference.related(q)]
        for q in bs_queries(catalog, rng, 6):
            params = {"k": q.k, **({"category_id": q.category_id} if q.category_id else {}),
                      **({"user_id": q.user_id} if q.user_id else {})}  # fmt: skip
            r = c.get(f"{base_url}/bestsellers", params=params)
            assert r.status_code == 200, r.text
            assert r.json()["items"] == [i.to_json() for i in reference.bestsellers(q)]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("related", {"k": "0"}, "k"),
        ("related", {"k": "many"}, "k"),
        ("related", {"master_id": "zzz"}, "master_id"),
        ("related", {"widget": "banner"}, "widget"),
        ("related", {"user_id": "<script>"}, "user_id"),
        ("bestsellers", {"category_id": "a b"}, "category_id"),
        ("bestsellers", {"k": "101"}, "k"),
    ],
)
def test_bad_parameters_answer_422_naming_them(base_url: str, path: str, params: dict, field: str) -> None:
    r = httpx.get(f"{base_url}/{path}", params=params, timeout=10)
    assert r.status_code == 422
    assert r.json()["parameter"] == field and field in r.json()["error"]


def test_metrics_and_fallbacks_over_http(base_url: str) -> None:
    r = httpx.get(f"{base_url}/related", params={"user_id": "ghost", "master_id": master_uuid(10**9)}, timeout=10)
    assert r.status_code == 200 and r.json()["items"] and "unknown_master" in r.json()["fallbacks"]
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    for name in ("recs_request_seconds_bucket", "recs_cache_lookups_total", "recs_fallbacks_total",
                 "recs_stale_master_serves_total", "recs_cache_hit_ratio"):  # fmt: skip
        assert name in text, name
    assert 'endpoint="related"' in text


def test_bench_target_measures_a_running_endpoint(urls: dict, redis_sqlite) -> None:
    """`hotpath bench recs --target URL`: what `make run` prints is what the benchmark measures; a
    sweep of connection counts with the serving process's CPU per request and the best point."""
    from bench.recs import format_target
    import shutil

    from bench.recs import run_target

    from .conftest import SMALL

    s, _, _ = redis_sqlite
    s = s.model_copy(update={"recs": s.recs.model_copy(update={"catalog": SMALL})})
    gens = ("wrk", "python") if shutil.which("wrk") else ("python",)
    base_url = urls["shared"]
    res = run_target(s, f"{base_url}/related?k=3", seconds=1, connections=(1, 2), runs=1, target_rps=1,
                     p99_target_ms=10_000, generators=gens, say=lambda m: None)  # fmt: skip
    assert res["target"] == base_url and res["server_processes"] == 1
    for g in gens:
        for ep in ("related", "bestsellers"):
            r = res[g][ep]
            assert [p["connections"] for p in r["sweep"]] == [1, 2]
            for p in r["sweep"]:
                assert p["rps"] > 0 and p["errors"] == 0 and p["p99_ms"] >= p["p50_ms"] > 0, (g, ep, p)
                assert 0 < p["cpu_us_per_req"] < 1e6, p  # the replica's CPU, found by its port
            assert r["best"] is not None and r["target_met"], r
            assert r["best"]["rps"] == max(p["rps"] for p in r["sweep"])
    assert "best within p99 <= 10000 ms: c=" in format_target(res)


def test_shared_port_is_shared_by_replicas(ray_session, redis_sqlite) -> None:
    """Two replicas bind the one port (SO_REUSEPORT): connections reach both, answers are alike."""
    from ray import serve

    from hotpath.graphs.recs_app import deploy_recs, recs_base_url

    s, _, _ = redis_sqlite
    s2 = s.model_copy(update={"recs": s.recs.model_copy(update={"replicas": 2, "warm_masters": 0,
                                                                "promos_consumer": False})})  # fmt: skip
    port = _test_port(s, 1)
    deploy_recs(s2, name=APP + "-2", route_prefix=PREFIX + "2", http_port=port)
    try:
        url = recs_base_url(s2, route_prefix=PREFIX + "2", http_port=port)
        from bench.recs import _server_processes

        deadline = time.time() + 90
        while time.time() < deadline and len(_server_processes(f"http://127.0.0.1:{port}")) < 2:
            time.sleep(0.5)
        assert len(_server_processes(f"http://127.0.0.1:{port}")) == 2
        pids, bodies = set(), set()
        for _ in range(40):  # a new connection each time: the kernel spreads them
            r = httpx.get(f"{url}/related", params={"master_id": master_uuid(3), "k": 3}, timeout=10)
            assert r.status_code == 200, r.text
            bodies.add(r.content)
            pids.add(httpx.get(f"{url}/healthz", timeout=10).json()["pid"])
        assert len(bodies) == 1
        assert len(pids) == 2, pids
    finally:
        serve.delete(APP + "-2")


def test_degraded_flag_is_in_every_answer(base_url: str) -> None:
    body = httpx.get(f"{base_url}/related", params={"master_id": master_uuid(3), "k": 3}, timeout=10).json()
    assert body["degraded"] is False and body["items"] and "title" in body["items"][0]
    assert httpx.get(f"{base_url}/healthz", timeout=10).json()["cache_up"] is True
