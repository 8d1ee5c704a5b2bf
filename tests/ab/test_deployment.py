"""The recs HTTP face with an experiments file: the response names the arms and exposures reach the
event log. The deployment class is called in-process (no Serve), over real Redis (the shared server),
SQLite and DuckDB loaded with the generated catalog under a unique key prefix."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest
import yaml

from hotpath.ab.events import read_events
from hotpath.recs.catalog import generate, master_uuid
from hotpath.recs.loader import load_catalog
from hotpath.recs.settings import CatalogSettings
from hotpath.stores.redis_fast import bulk_writer
from hotpath.stores.rollups import DuckDbRollupStore
from hotpath.streams.embedded_log import EmbeddedEventLog

pytestmark = pytest.mark.services


def _request(path: str, query: str):
    from starlette.requests import Request

    return Request({"type": "http", "method": "GET", "scheme": "http", "server": ("test", 80), "root_path": "",
                    "path": path, "query_string": query.encode(), "headers": []})  # fmt: skip


def test_the_http_face_names_the_variant_and_logs_exposures(settings, tmp_path) -> None:
    from hotpath.deployments.recs import RecsIngress
    from hotpath.stores.factory import open_dimension_store, open_hot_cache

    prefix = f"t-ab-{uuid.uuid4().hex[:8]}:"
    (tmp_path / "experiments.yaml").write_text(yaml.safe_dump({"experiments": [
        {"name": "decay", "variants": [{"name": "control"}, {"name": "fast", "overrides": {"recent_view_decay": 0.5}}]},
    ]}))  # fmt: skip
    s = settings.model_copy(update={
        "profile": "embedded", "runtime_dir": tmp_path,
        "sqlite": settings.sqlite.model_copy(update={"path": tmp_path / "dim.sqlite"}),
        "duckdb": settings.duckdb.model_copy(update={"path": tmp_path / "rollups.duckdb"}),
        "event_log": settings.event_log.model_copy(update={"path": tmp_path / "log"}),
        "recs": settings.recs.model_copy(update={"key_prefix": prefix}),
        "ab": settings.ab.model_copy(update={"experiments_file": tmp_path / "experiments.yaml", "flush_interval_s": 0.05}),
    })  # fmt: skip
    cache = open_hot_cache(s)
    if not cache.ping():
        pytest.fail(f"Redis at {s.redis.host}:{s.redis.port} is not up: run `hotpath services up`")
    store = open_dimension_store(s)
    cat = generate(CatalogSettings(masters=300, users=30, departments=2, subcats_per_department=2, leaves_per_subcat=3, seed=3))
    rollups = DuckDbRollupStore(s.in_runtime(s.duckdb.path))
    load_catalog(cat, s.recs, cache, bulk_writer(cache), store, rollups)
    rollups.close()
    ingress = RecsIngress.func_or_class(s, local=False)
    try:

        async def serve() -> list[dict]:
            out = []
            for i in range(40):
                q = f"user_id=u{i}&master_id={master_uuid(i)}&widget=homepage&k=5"
                r = await ingress(_request("/v1/recs/related", q))
                assert r.status_code == 200
                out.append(orjson.loads(r.body))
            r = await ingress(_request("/v1/recs/bestsellers", "user_id=u1&k=3"))
            out.append(orjson.loads(r.body))
            anon = await ingress(_request("/v1/recs/related", "widget=homepage"))
            assert "meta" not in orjson.loads(anon.body)
            return out

        bodies = asyncio.run(serve())
        variants = [b["meta"]["experiments"][0]["variant"] for b in bodies]
        assert set(variants) == {"control", "fast"}
        ingress.ab.exposures.flush(20)
        log = EmbeddedEventLog(s)
        evs = asyncio.run(read_events(log, s.ab.exposure_topic))
        asyncio.run(log.close())
        assert sorted((e.user_id, e.variant) for e in evs) == sorted(
            [(f"u{i}", v) for i, v in enumerate(variants[:40])] + [("u1", variants[40])]
        )
        assert variants[40] == variants[1]  # sticky across endpoints
    finally:
        ingress.ab.close()
        ingress.service.close()
        keys = list(cache.scan(prefix))
        for i in range(0, len(keys), 1000):
            cache.delete(*keys[i : i + 1000])
        store.close()
        cache.close()
