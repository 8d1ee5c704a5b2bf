"""Redis failing under the service: a private Redis (the project's own config, AOF on) killed with
SIGKILL and restarted. Degraded answers while it is down, the subscription and a resync after it
returns, the data back from the AOF, the hot mirror rebuilt from the stores."""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid

import pytest

from hotpath.errors import ServiceUnavailable
from hotpath.recs.catalog import Catalog, master_uuid
from hotpath.recs.model import Keys
from hotpath.recs.loader import set_promo
from hotpath.recs.model import BestsellersQuery, RelatedQuery
from hotpath.recs.service import RecsService
from hotpath.stores.rollups import DuckDbRollupStore

from .conftest import load_into, recs_settings_for

pytestmark = [pytest.mark.services, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A Redis of our own (never the shared one): the project's RedisService on a free port."""

    def __init__(self, settings) -> None:
        from hotpath.cluster.redis_server import RedisService

        self.settings = settings
        self.service = RedisService(settings)

    def start(self) -> None:
        self.service.start()

    def kill(self) -> None:
        for pid in self.service.processes():
            os.kill(pid, signal.SIGKILL)
        deadline = time.time() + 10
        while self.service.running() and time.time() < deadline:
            time.sleep(0.05)
        self.service.pid_path.unlink(missing_ok=True)

    def stop(self) -> None:
        self.service.stop()


@pytest.fixture(scope="module")
def private(settings, catalog: Catalog, tmp_path_factory):
    """(settings, redis, cache, store): the catalog in a private Redis + SQLite + DuckDB."""
    from hotpath.stores.factory import open_dimension_store, open_hot_cache

    tmp = tmp_path_factory.mktemp("recs-redis-failure")
    base = settings.model_copy(
        update={"profile": "embedded", "redis": settings.redis.model_copy(update={"port": _free_port()})}
    )
    s = recs_settings_for(base, tmp, f"t-fail-{uuid.uuid4().hex[:6]}:")
    redis = PrivateRedis(s)
    redis.start()
    cache = open_hot_cache(s)
    store = open_dimension_store(s)
    load_into(s, catalog, cache, store)
    yield s, redis, cache, store
    cache.close()
    store.close()
    redis.stop()


def _service(s, cache, store, **kw) -> RecsService:
    from hotpath.stores.redis_fast import hgetall_many_reader, ztop_many_reader

    return RecsService(s.recs, cache, store, DuckDbRollupStore(s.in_runtime(s.duckdb.path), read_only=True),
                       ztop_many=ztop_many_reader(cache), hgetall_many=hgetall_many_reader(cache), **kw)  # fmt: skip


def _wait(pred, timeout_s: float, step: float = 0.05):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def test_aof_is_on_and_a_kill_loses_at_most_a_second(private) -> None:
    s, redis, cache, _ = private
    conf = redis.service.conf_path.read_text()
    assert "appendonly yes" in conf and "appendfsync everysec" in conf
    key = Keys(s.recs.key_prefix).changes + ":aof-probe"
    cache.set(key, "written")
    time.sleep(1.5)  # fsynced within a second
    redis.kill()
    assert not cache.ping()
    redis.start()
    assert _wait(cache.ping, 10)
    assert cache.get(key) == "written"
    assert cache.ztop(Keys(s.recs.key_prefix).bestsellers("_all"), 1)  # the catalog came back too
    cache.delete(key)


def test_redis_down_degraded_answers_then_subscription_and_resync(private, catalog: Catalog) -> None:
    s, redis, cache, store = private
    svc = _service(s, cache, store)
    keys = Keys(s.recs.key_prefix)
    try:
        warm_q = [RelatedQuery(f"u{i}", master_uuid(i * 7), "pdp_related", 10) for i in range(20)]
        before = {q: svc.related(q) for q in warm_q}
        assert all(r.items and not r.degraded for r in before.values())
        bs_before = svc.bestsellers(BestsellersQuery(catalog.cat_ids[0], None, 10))
        assert bs_before.to_json()["degraded"] is False

        redis.kill()
        t0 = time.perf_counter()
        for q in warm_q:  # local copies answer, the user's history cannot be read
            r = svc.related(q)
            assert r.degraded and r.items and "history_unavailable" in r.fallbacks, q
            assert r.to_json()["degraded"] is True
        cold = [RelatedQuery(None, master_uuid(i), "pdp_related", 10) for i in range(1000, 1010)]
        for q in cold:  # never seen by this replica: the dimension / rollup stores answer
            r = svc.related(q)
            assert r.degraded and r.items, q
        bs = svc.bestsellers(BestsellersQuery(catalog.cat_ids[0], None, 10))
        assert bs.degraded and [i.master_id for i in bs.items] == [i.master_id for i in bs_before.items]
        elapsed = time.perf_counter() - t0
        assert elapsed < 10, f"degraded answers took {elapsed:.1f} s: requests waited on the dead Redis"
        assert svc.metrics.count("recs_degraded_total", {"endpoint": "related"}) >= 30
        assert svc.metrics.count("recs_cache_up") == 0

        redis.start()
        assert _wait(lambda: svc.metrics.count("recs_resyncs_total") >= 1, 10), "no resync after Redis returned"
        assert svc._sub.reconnects >= 1
        r = _wait(lambda: (lambda x: x if not x.degraded else None)(svc.related(warm_q[0])), 5)
        assert r is not None and not r.degraded and svc.metrics.count("recs_cache_up") == 1

        # the subscription is live again: out of stock is honoured within a second
        target = next(i for i in svc.related(warm_q[1]).items if i.pid)
        t1 = time.perf_counter()
        set_promo(cache, s.recs, target.pid, out_of_stock=True)
        assert _wait(lambda: all(i.pid != target.pid for i in svc.related(warm_q[1]).items), 1.0), (
            "out-of-stock not honoured within 1 s of Redis's return"
        )
        assert time.perf_counter() - t1 < 1.0

        # a change whose message was lost (published while nobody listened) comes in by the resync
        victim = next(i for i in svc.related(warm_q[2]).items if i.pid and i.pid != target.pid)
        svc._sub.min_backoff_s = 1.0  # resubscribe a second after the loss: the change lands in the gap
        cache._client.client_kill_filter(_type="pubsub")
        time.sleep(0.2)
        cache.hset(keys.promo(victim.pid), {"out_of_stock": "1"})
        cache.zadd(keys.changes, {f"pid:{victim.pid}": time.time()})  # recorded, never published
        assert _wait(lambda: all(i.pid != victim.pid for i in svc.related(warm_q[2]).items), 5.0), (
            "a change made while the subscription was away was not picked up by the resync"
        )
    finally:
        svc.close()
        if not cache.ping():
            redis.start()


def test_nothing_to_answer_is_503_not_an_empty_list(private) -> None:
    s, redis, cache, _ = private
    svc = RecsService(s.recs, cache, None, None, subscribe=False)  # no stores, nothing local yet
    try:
        redis.kill()
        with pytest.raises(ServiceUnavailable):
            svc.related(RelatedQuery(None, master_uuid(5), "pdp_related", 10))
        assert svc.metrics.count("recs_unavailable_total", {"endpoint": "related"}) == 1
    finally:
        svc.close()
        redis.start()
        assert _wait(cache.ping, 10)


def test_warm_rebuilds_the_hot_mirror_from_the_stores(private, catalog: Catalog, reference) -> None:
    from hotpath.recs.loader import warm_hot_mirror
    from hotpath.stores.redis_fast import bulk_writer

    from .conftest import drop_prefix

    s, redis, cache, store = private
    keys = Keys(s.recs.key_prefix)
    drop_prefix(cache, s.recs.key_prefix)  # Redis lost everything
    assert not cache.ztop(keys.bestsellers("_all"), 1)
    rollups = DuckDbRollupStore(s.in_runtime(s.duckdb.path), read_only=True)
    try:
        rep = warm_hot_mirror(s.recs, bulk_writer(cache), store, rollups)
    finally:
        rollups.close()
    assert rep["categories"] == len(catalog.cat_ids) + 1 and rep["masters"] > 0
    top = cache.ztop(keys.bestsellers("_all"), 5)
    m0 = top[0][0]
    assert cache.hgetall(keys.meta(m0))["cat"] and cache.hgetall(keys.pids(m0)) and cache.ztop(keys.sem(m0), 1)
    assert cache.ztop(keys.coview(catalog.cat_ids[0]), 1)
    # served from the rebuilt mirror, every list from Redis: the oracle's answers (promo fields are not
    # in the stores: they come back from the promos topic, so the oracle here has none)
    import dataclasses

    from hotpath.recs.catalog import pid_uuid

    from .reference import Reference

    plain = {pid_uuid(j): dataclasses.replace(reference.pid_attrs(j), boost=1.0, out_of_stock=False, ad_bid=0.0,
                                              flash_sale=False) for j in range(catalog.n_pids)}  # fmt: skip
    oracle = Reference(catalog, s.recs, plain)
    svc = _service(s, cache, store, subscribe=False)
    try:
        for c in catalog.cat_ids[:5]:
            q = BestsellersQuery(c, None, 10)
            assert [i.to_json() for i in svc.bestsellers(q).items] == [i.to_json() for i in oracle.bestsellers(q)], c
        assert svc.metrics.count("recs_cache_lookups_total", {"family": "bestsellers", "outcome": "store"}) == 0
    finally:
        svc.close()


def test_a_data_dir_from_before_aof_keeps_its_data_and_gets_aof(settings, tmp_path) -> None:
    """Redis 7 started with AOF on and no AOF yet would ignore dump.rdb and start empty."""
    import redis as redis_py

    from hotpath.cluster.redis_server import RedisService

    s = settings.model_copy(update={"runtime_dir": tmp_path,
                                    "redis": settings.redis.model_copy(update={"port": _free_port()})})  # fmt: skip
    svc = RedisService(s)
    svc.data_dir.mkdir(parents=True)
    port = _free_port()
    old = __import__("subprocess").Popen(["redis-server", "--port", str(port), "--dir", str(svc.data_dir),
                                          "--save", "", "--appendonly", "no"])  # fmt: skip
    try:
        c = redis_py.Redis(port=port)
        assert _wait(lambda: _ping(c), 10)
        c.set("old-key", "kept")
        c.save()
    finally:
        old.terminate()
        old.wait(10)
    assert not (svc.data_dir / "appendonlydir").exists()
    svc.start()
    try:
        c = redis_py.Redis(port=s.redis.port)
        assert c.get("old-key") == b"kept"
        assert c.config_get("appendonly")["appendonly"] == "yes"
        assert (svc.data_dir / "appendonlydir").exists() and "appendonly yes" in svc.conf_path.read_text()
    finally:
        svc.stop()
    svc.start()  # and once more, now from the AOF
    try:
        assert redis_py.Redis(port=s.redis.port).get("old-key") == b"kept"
    finally:
        svc.stop()


def _ping(c) -> bool:
    try:
        return bool(c.ping())
    except Exception:
        return False
