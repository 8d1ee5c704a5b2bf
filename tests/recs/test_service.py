"""The service (local copies, Redis, stores, vectorised rerank) against the brute-force reference.

Three stacks: an in-memory hot cache + SQLite (server-free), real Redis + SQLite (embedded profile),
real Redis + Cassandra (full profile). Each gets the same generated catalog.
"""

from __future__ import annotations

import logging
import random
import time
import uuid

import pytest

from hotpath.recs.catalog import Catalog, master_uuid
from hotpath.recs.model import Keys
from hotpath.recs.loader import set_promo
from hotpath.recs.model import BestsellersQuery, PidAttrs, RelatedQuery
from .reference import Reference
from hotpath.recs.service import RecsService
from hotpath.stores.rollups import DuckDbRollupStore

from .conftest import bs_queries, load_into, queries, recs_settings_for


@pytest.fixture(scope="module")
def memory_stack(settings, catalog: Catalog, tmp_path_factory):
    from hotpath.stores.memory_cache import InMemoryHotCache
    from hotpath.stores.sqlite_dim import SqliteDimensionStore

    tmp = tmp_path_factory.mktemp("recs-mem")
    s = recs_settings_for(settings.model_copy(update={"profile": "embedded"}), tmp, "m:")
    cache = InMemoryHotCache()
    store = SqliteDimensionStore(s)
    load_into(s, catalog, cache, store)
    yield s, cache, store
    store.close()
    cache.close()


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis_sqlite", marks=pytest.mark.services),
        pytest.param("redis_cassandra", marks=pytest.mark.services),
    ]
)
def stack(request):
    return request.getfixturevalue("memory_stack" if request.param == "memory" else request.param)


def make_service(stack, **kw) -> RecsService:
    s, cache, store = stack
    from hotpath.stores.redis_fast import ztop_many_reader

    return RecsService(
        s.recs, cache, store, DuckDbRollupStore(s.in_runtime(s.duckdb.path), read_only=True),
        ztop_many=ztop_many_reader(cache), **kw,
    )  # fmt: skip


def as_json(items):
    return [i.to_json() for i in items]


def test_related_and_bestsellers_match_the_reference(stack, catalog: Catalog, reference: Reference) -> None:
    svc = make_service(stack)
    try:
        rng = random.Random(1)
        for q in queries(catalog, rng, 40, list(svc.settings.widgets)):
            assert as_json(svc.related(q).items) == as_json(reference.related(q)), q
        for q in bs_queries(catalog, rng, 25):
            assert as_json(svc.bestsellers(q).items) == as_json(reference.bestsellers(q)), q
    finally:
        svc.close()


def test_cache_misses_fall_back_to_the_stores_and_write_back(stack, catalog: Catalog, reference: Reference) -> None:
    s, cache, store = stack
    keys = Keys(s.recs.key_prefix)
    rng = random.Random(2)
    picks = [rng.randrange(catalog.n_masters) for _ in range(8)]
    leaves = {catalog.cat_ids[int(catalog.master_leaf[i])] for i in picks}
    for i in picks:
        m = master_uuid(i)
        cache.delete(keys.sem(m), keys.meta(m), keys.pids(m))
    for leaf in leaves:
        cache.delete(keys.bestsellers(leaf), keys.coview(leaf))
    svc = make_service(stack)
    try:
        for i in picks:
            q = RelatedQuery(None, master_uuid(i), "pdp_related", 20)
            assert as_json(svc.related(q).items) == as_json(reference.related(q))
        for leaf in leaves:
            q = BestsellersQuery(leaf, None, 10)
            assert as_json(svc.bestsellers(q).items) == as_json(reference.bestsellers(q))
        m = svc.metrics
        for fam in ("semantic", "master", "bestsellers", "co_view"):
            assert m.count("recs_cache_lookups_total", {"family": fam, "outcome": "store"}) >= 1, fam
        # hot keys were written back, with the semantic mirror's TTL
        m0 = master_uuid(picks[0])
        assert cache.ztop(keys.sem(m0), 1) and cache.hgetall(keys.pids(m0))
        assert 0 < cache.ttl(keys.sem(m0)) <= s.recs.semantic_ttl_s
        assert cache.ztop(keys.bestsellers(next(iter(leaves))), 1)
    finally:
        svc.close()


def test_stale_master_is_served_counted_logged_once_and_queued(stack, catalog: Catalog, caplog) -> None:
    s, cache, _ = stack
    now = time.time()
    stale = next(i for i in range(catalog.n_masters) if catalog.inference_ts[i] < now - 100 * 86400)
    mid = master_uuid(stale)
    svc = make_service(stack)
    try:
        with caplog.at_level(logging.WARNING, logger="hotpath.recs.service"):
            r1 = svc.related(RelatedQuery(None, mid, "pdp_related", 10))
            r2 = svc.related(RelatedQuery(None, mid, "pdp_related", 10))
        assert r1.items and r1.stale_masters == (mid,) and r2.stale_masters == (mid,)
        assert any(it.signals and "semantic" in it.signals for it in r1.items)  # the old map is still served
        assert svc.metrics.count("recs_stale_master_serves_total") == 2
        assert svc.metrics.count("recs_stale_masters") == 1
        assert sum(mid in rec.getMessage() for rec in caplog.records) == 1
        assert mid in dict(cache.ztop(Keys(s.recs.key_prefix).refresh_queue, 1000))
        fresh = next(i for i in range(catalog.n_masters) if catalog.inference_ts[i] > now - 30 * 86400)
        assert svc.related(RelatedQuery(None, master_uuid(fresh), "pdp_related", 10)).stale_masters == ()
    finally:
        svc.close()


def test_unknown_user_master_and_empty_history_fall_back(stack, catalog: Catalog) -> None:
    svc = make_service(stack)
    try:
        ghost = str(uuid.UUID(int=12345))
        r = svc.related(RelatedQuery("ghost-user", ghost, "pdp_related", 10))
        assert len(r.items) == 10 and {"no_history", "unknown_master", "global_bestsellers"} <= set(r.fallbacks)
        assert all(i.signals == ("best_seller",) or "promo" in i.signals for i in r.items)
        r = svc.related(RelatedQuery(None, None, "homepage", 5))
        assert len(r.items) == 5 and "global_bestsellers" in r.fallbacks
        r = svc.bestsellers(BestsellersQuery("zz.none", "ghost-user", 7))
        assert len(r.items) == 7 and "unknown_category" in r.fallbacks
        # a known master with an unknown user: answered from the master alone
        r = svc.related(RelatedQuery("ghost-user", master_uuid(5), "pdp_related", 10))
        assert r.items and "unknown_master" not in r.fallbacks
        assert svc.metrics.count("recs_fallbacks_total", {"endpoint": "related", "reason": "unknown_master"}) == 1
    finally:
        svc.close()


def test_every_item_names_its_signals_and_scores(stack, catalog: Catalog) -> None:
    svc = make_service(stack)
    try:
        r = svc.related(RelatedQuery("u3", master_uuid(40), "sponsored", 50))
        seen = set()
        for it in r.items:
            assert it.signals, it
            for sig in it.signals:
                if sig != "promo":
                    assert it.scores[sig] > 0
            seen.update(it.signals)
            assert it.scores["base"] > 0
        assert {"semantic", "best_seller", "co_view"} <= seen
    finally:
        svc.close()


def test_planted_structure_comes_back(stack, catalog: Catalog) -> None:
    svc = make_service(stack)
    try:
        hits = total = 0
        for u in range(0, len(catalog.user_views), 7):
            viewed = {m for m, _ in catalog.user_views[u]}
            group = [m for m in catalog.group_of(int(catalog.user_anchor[u])) if m not in viewed]
            if not group:
                continue
            got = [it.master_id for it in svc.related(RelatedQuery(f"u{u}", None, "pdp_related", 10)).items]
            total += len(group)
            hits += sum(master_uuid(m) in got for m in group)
        assert total > 20 and hits / total > 0.9, (hits, total)
        # a master's group ranks first; its leaf's partner shows up as a co-viewed category
        i = 10
        group = [master_uuid(m) for m in catalog.group_of(i) if m != i]
        items = svc.related(RelatedQuery(None, master_uuid(i), "pdp_related", 20)).items
        assert set(group) <= {it.master_id for it in items[: len(group) + 2]}
        partner = catalog.cat_ids[catalog.partner(int(catalog.master_leaf[i]))]
        items = svc.bestsellers(BestsellersQuery(catalog.cat_ids[int(catalog.master_leaf[i])], None, 100)).items
        assert any(it.category == partner and "co_view" in it.signals for it in items)
    finally:
        svc.close()


def test_out_of_stock_reaches_serving_within_a_second(stack, catalog: Catalog, reference: Reference) -> None:
    s, cache, _ = stack
    svc = make_service(stack)
    try:
        q = RelatedQuery(None, master_uuid(25), "pdp_related", 5)
        before = svc.related(q).items
        top = before[0]
        set_promo(cache, s.recs, top.pid, out_of_stock=True)
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 1.0:
            now = svc.related(q).items
            if top.pid not in {it.pid for it in now}:
                break
            time.sleep(0.01)
        lag = time.perf_counter() - t0
        assert top.pid not in {it.pid for it in now}, "the out-of-stock pid is still served after 1 s"
        assert lag < 1.0
        # the same answer as the reference with that pid out of stock
        ref = Reference(catalog, s.recs, {top.pid: PidAttrs(top.pid, top.price, top.rating, out_of_stock=True)})
        j = int(top.pid[-12:], 16)
        ref.promos[top.pid] = PidAttrs(
            top.pid, top.price, top.rating, float(catalog.pid_boost[j]), True, float(catalog.pid_ad_bid[j]),
            bool(catalog.pid_flash[j]),
        )  # fmt: skip
        assert as_json(now) == as_json(ref.related(q))
        assert svc.metrics.count("recs_invalidation_lag_seconds_count") >= 1
    finally:
        set_promo(cache, s.recs, top.pid, out_of_stock=bool(catalog.pid_oos[int(top.pid[-12:], 16)]),
                  boost=float(catalog.pid_boost[int(top.pid[-12:], 16)]),
                  ad_bid=float(catalog.pid_ad_bid[int(top.pid[-12:], 16)]),
                  flash_sale=bool(catalog.pid_flash[int(top.pid[-12:], 16)]))  # fmt: skip
        svc.close()


def test_missing_attributes_are_never_an_error(stack, catalog: Catalog, reference: Reference) -> None:
    s, cache, _ = stack
    keys = Keys(s.recs.key_prefix)
    i = 60
    for j in catalog.pids_of(i):
        cache.delete(keys.attr(f"00000000-0000-4000-9000-{j:012x}"))  # pid:attr gone: the mapping's metadata answers
    svc = make_service(stack)
    try:
        q = RelatedQuery(None, master_uuid(i + 1), "pdp_related", 50)
        assert as_json(svc.related(q).items) == as_json(reference.related(q))
        missing = next(j for j in range(catalog.n_pids) if catalog.pid_price[j] != catalog.pid_price[j])
        assert missing >= 0  # the generator plants pids without a price
    finally:
        svc.close()


def test_expired_rows_are_re_read_in_the_background(memory_stack, catalog: Catalog) -> None:
    """A change made without an invalidation (a lost message) still arrives: the row expires and is
    re-read off the request path, while the old copy keeps being served meanwhile."""
    s, cache, store = memory_stack
    fast = s.model_copy(update={"recs": s.recs.model_copy(update={"local_master_ttl_s": 0.3})})
    svc = make_service((fast, cache, store))
    keys = Keys(s.recs.key_prefix)
    try:
        q = RelatedQuery(None, master_uuid(33), "pdp_related", 5)
        top = svc.related(q).items[0]
        cache.hset(keys.promo(top.pid), {"out_of_stock": "1"})  # no publish
        t0 = time.perf_counter()
        gone = False
        while time.perf_counter() - t0 < 3.0 and not gone:
            gone = top.pid not in {it.pid for it in svc.related(q).items}
            time.sleep(0.05)
        assert gone
    finally:
        cache.delete(keys.promo(top.pid))
        j = int(top.pid[-12:], 16)
        if catalog.pid_boost[j] != 1.0 or catalog.pid_oos[j] or catalog.pid_ad_bid[j] or catalog.pid_flash[j]:
            set_promo(cache, s.recs, top.pid, boost=float(catalog.pid_boost[j]), out_of_stock=bool(catalog.pid_oos[j]),
                      ad_bid=float(catalog.pid_ad_bid[j]), flash_sale=bool(catalog.pid_flash[j]))  # fmt: skip
        svc.close()


def test_rerank_items_and_json_body_agree(memory_stack, catalog: Catalog) -> None:
    """The serving path builds items' JSON straight from the columns; ``items`` (built lazily) and
    the orjson body carry the same values as ``Item.to_json``."""
    import json

    svc = make_service(memory_stack)
    try:
        rng = random.Random(4)
        for q in queries(catalog, rng, 10, list(svc.settings.widgets)):
            res = svc.related(q)
            body = json.loads(res.to_bytes())
            assert body["items"] == as_json(res.items)
            assert body == json.loads(json.dumps(res.to_json()))
            assert body["fallbacks"] == list(res.fallbacks)
    finally:
        svc.close()


@pytest.mark.services
async def test_async_history_reader_matches_the_cache(redis_sqlite, catalog: Catalog) -> None:
    from hotpath.stores.redis_fast import AsyncZReader

    s, cache, store = redis_sqlite
    keys = Keys(s.recs.key_prefix)
    reader = AsyncZReader(cache, s)
    try:
        for u in ["u0", "u1", "u7", "u42", "nobody"]:
            ks = [keys.recent_views(u), keys.recent_cats(u)]
            for n in (1, 5, 10):
                assert await reader.ztop_many(ks, n) == cache.ztop_many(ks, n)
        assert await reader.ztop_many([], 5) == []
    finally:
        await reader.close()


def test_precomputed_widget_terms_equal_the_rule_on_each_rows_best_pid(memory_stack, catalog: Catalog) -> None:
    """The per-row (mult, add, keep, promo) columns the rerank reads are the rule
    (``ranking.widget_terms``) of each row's best pid, for every widget, custom rules included,
    also after the columns grew and rows were reloaded."""
    from hotpath.recs.ranking import widget_terms
    from hotpath.recs.settings import WidgetRule

    s, cache, store = memory_stack
    widgets = {
        **s.recs.widgets,
        "picky": WidgetRule(min_rating=4.0, boost_power=2.0, ad_bid_weight=0.3, flash_sale_add=0.1),
        "keep_all": WidgetRule(drop_out_of_stock=False, boost_power=0.0, flash_sale_mult=0.5),
    }
    rs = s.recs.model_copy(update={"widgets": widgets})
    svc = RecsService(rs, cache, store, None, subscribe=False)
    try:
        rows = svc.table.rows([master_uuid(i) for i in range(catalog.n_masters)] + [master_uuid(10**9)])
        svc.table.load([master_uuid(i) for i in range(0, catalog.n_masters, 7)])
        t = svc.table
        promos = 0
        for name, rule in widgets.items():
            cols = t.wterms[name]
            for r in rows:
                want = widget_terms(t.best[r], rule)
                got = (float(cols[0][r]), float(cols[1][r]), bool(cols[2][r]), bool(cols[3][r]))
                assert got == want, (name, r)
                promos += want[3]
        assert promos > 0 and not t.wterms["picky"][2][rows].all()  # the rules did bite
    finally:
        svc.close()


def test_expired_lists_are_served_and_re_read_in_the_background(memory_stack, catalog: Catalog) -> None:
    """An expired co-view / best-seller copy is served as is while a background thread re-reads it:
    no request waits on Redis for a list it has; a list gone from Redis is dropped, so the next
    request takes the fallback (rollup store) path."""
    import threading

    s, cache, store = memory_stack
    keys = Keys(s.recs.key_prefix)
    fast = s.recs.model_copy(update={"local_ttl_s": 0.3})
    reads: list[tuple[str, list[str]]] = []

    def ztop_many(ks, n):
        reads.append((threading.current_thread().name, list(ks)))
        return cache.ztop_many(ks, n)

    rollups = DuckDbRollupStore(s.in_runtime(s.duckdb.path), read_only=True)
    svc = RecsService(fast, cache, store, rollups, ztop_many=ztop_many)
    leaf = catalog.cat_ids[int(catalog.master_leaf[5])]
    old = cache.ztop(keys.bestsellers(leaf), 1000)
    try:
        q = BestsellersQuery(leaf, None, 10)
        first = svc.bestsellers(q).items
        planted = first[-1].master_id
        cache.zreplace(keys.bestsellers(leaf), {**dict(old), planted: old[0][1] * 10})
        time.sleep(0.35)  # the local copy expires
        reads.clear()
        assert svc.bestsellers(q).items == first  # served from the expired copy...
        assert not [r for r in reads if r[0] == threading.current_thread().name]  # ...without a read
        deadline = time.time() + 5
        while svc.bestsellers(q).items[0].master_id != planted:
            assert time.time() < deadline, "the new list never arrived"
            time.sleep(0.05)
        assert any(name == "recs-zset-refresh" and keys.bestsellers(leaf) in ks for name, ks in reads)
        # gone from Redis: the copy is dropped once re-read, then the rollup store answers
        cache.delete(keys.bestsellers(leaf))
        before = svc.metrics.count("recs_cache_lookups_total", {"family": "bestsellers", "outcome": "store"})
        deadline = time.time() + 5
        while svc.metrics.count("recs_cache_lookups_total", {"family": "bestsellers", "outcome": "store"}) == before:
            assert time.time() < deadline, "the fallback never ran"
            svc.bestsellers(q)
            time.sleep(0.05)
        assert svc.bestsellers(q).items == first  # the rollup store's list (written back)
        assert cache.ztop(keys.bestsellers(leaf), 1)
    finally:
        cache.zreplace(keys.bestsellers(leaf), dict(old))
        svc.close()


def test_category_invalidation_drops_the_local_lists(memory_stack, catalog: Catalog) -> None:
    s, cache, store = memory_stack
    keys = Keys(s.recs.key_prefix)
    svc = RecsService(s.recs, cache, store, None)
    leaf = catalog.cat_ids[int(catalog.master_leaf[9])]
    old = cache.ztop(keys.bestsellers(leaf), 1000)
    try:
        q = BestsellersQuery(leaf, None, 5)
        first = svc.bestsellers(q).items
        planted = first[-1].master_id
        cache.zreplace(keys.bestsellers(leaf), {**dict(old), planted: old[0][1] * 10})
        assert svc.bestsellers(q).items == first  # the local copy (10 s) still answers
        cache.publish(keys.channel(s.recs.invalidation_channel), f"cat:{leaf}|{time.time()!r}")
        deadline = time.time() + 5
        while svc.bestsellers(q).items[0].master_id != planted:
            assert time.time() < deadline, "the invalidation never applied"
            time.sleep(0.02)
    finally:
        cache.zreplace(keys.bestsellers(leaf), dict(old))
        svc.close()


@pytest.mark.services
async def test_async_history_reader_batches_concurrent_reads(redis_sqlite, catalog: Catalog) -> None:
    """Many requests in flight at once share writes on one connection; each gets its own replies."""
    import asyncio

    from hotpath.stores.redis_fast import AsyncZReader

    s, cache, _ = redis_sqlite
    keys = Keys(s.recs.key_prefix)
    reader = AsyncZReader(cache, s)
    users = [f"u{i}" for i in range(60)] + ["nobody"]
    try:
        got = await asyncio.gather(*(reader.ztop_many([keys.recent_views(u), keys.recent_cats(u)], 7) for u in users))
        for u, g in zip(users, got):
            assert g == cache.ztop_many([keys.recent_views(u), keys.recent_cats(u)], 7), u
        assert any(g[0] for g in got)
    finally:
        await reader.close()


@pytest.mark.services
async def test_async_history_reader_fails_cleanly_and_reconnects(redis_sqlite) -> None:
    import asyncio

    from hotpath.errors import ServiceUnavailable
    from hotpath.stores.redis_fast import AsyncZReader

    s, cache, _ = redis_sqlite
    keys = Keys(s.recs.key_prefix)
    ks = [keys.recent_views("u1"), keys.recent_cats("u1")]
    reader = AsyncZReader(cache, s)
    try:
        want = await reader.ztop_many(ks, 5)
        pending = asyncio.ensure_future(reader.ztop_many(ks, 5))
        await asyncio.sleep(0)  # queued, not yet answered
        reader._proto.transport.abort()  # the connection drops under it
        with pytest.raises(ServiceUnavailable):
            await pending
        assert await reader.ztop_many(ks, 5) == want  # the next call reconnects
    finally:
        await reader.close()

    # a server that accepts and never answers: the read fails after the timeout, not never
    async def silent(reader_, writer_):
        await asyncio.sleep(30)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    mute = s.model_copy(update={"redis": s.redis.model_copy(update={"port": port})})
    r2 = AsyncZReader(cache, mute, timeout_s=0.2)
    try:
        with pytest.raises(ServiceUnavailable):
            await r2.ztop_many(ks, 5)
    finally:
        await r2.close()
        server.close()
    # nothing listening: refused at once
    server2 = await asyncio.start_server(silent, "127.0.0.1", 0)
    free = server2.sockets[0].getsockname()[1]
    server2.close()
    await server2.wait_closed()
    r3 = AsyncZReader(cache, s.model_copy(update={"redis": s.redis.model_copy(update={"port": free})}))
    with pytest.raises(ServiceUnavailable):
        await r3.ztop_many(ks, 5)
    await r3.close()


@pytest.mark.services
def test_fast_hash_reader_matches_the_cache_and_fails_cleanly(redis_sqlite, catalog: Catalog) -> None:
    from hotpath.errors import ServiceUnavailable, StoreError
    from hotpath.stores.redis_cache import RedisHotCache
    from hotpath.stores.redis_fast import hgetall_many_reader

    s, cache, _ = redis_sqlite
    keys = Keys(s.recs.key_prefix)
    read = hgetall_many_reader(cache)
    mids = [master_uuid(i) for i in range(0, catalog.n_masters, 97)] + [master_uuid(10**9)]
    ks = [keys.meta(m) for m in mids] + [keys.pids(m) for m in mids] + [keys.promo("no-such-pid")]
    got = read(ks)
    assert got == cache.hgetall_many(ks) and got[0] and got[-1] == {}
    assert read([]) == []
    with pytest.raises(StoreError):  # a key of another type
        read([keys.bestsellers(catalog.cat_ids[0])])
    assert read(ks[:3]) == got[:3]  # the connection is still in step after an error reply
    dead = RedisHotCache(s.model_copy(update={"redis": s.redis.model_copy(update={"port": 1})}))
    try:
        with pytest.raises(ServiceUnavailable):
            hgetall_many_reader(dead)(ks[:2])
    finally:
        dead.close()


@pytest.mark.services
def test_fast_paths_use_the_caches_public_face(redis_sqlite, catalog: Catalog) -> None:
    """redis_fast goes through ``RedisHotCache.pipeline() / errors() / endpoint``: its readers equal
    the cache's own methods, and a dead server is one ServiceUnavailable naming its address."""
    from hotpath.errors import ServiceUnavailable
    from hotpath.stores.redis_cache import RedisEndpoint, RedisHotCache
    from hotpath.stores.redis_fast import bulk_writer, ztop_many_reader

    s, cache, _ = redis_sqlite
    assert cache.endpoint == RedisEndpoint(s.redis.host, s.redis.port, s.redis.db, None)
    keys = Keys(s.recs.key_prefix)
    zk = [keys.bestsellers(c) for c in catalog.cat_ids[:20]] + [keys.coview("no-such-cat")]
    assert ztop_many_reader(cache)(zk, 7) == cache.ztop_many(zk, 7)
    w = bulk_writer(cache)
    w.zset(keys.coview("t-bulk"), {"a": 1.0, "b": 2.0}, ttl_s=60)
    w.hash(keys.meta("t-bulk"), {"cat": "x"}, ttl_s=60)
    w.flush()
    assert cache.ztop(keys.coview("t-bulk"), 5) == [("b", 2.0), ("a", 1.0)] and cache.hgetall(keys.meta("t-bulk")) == {"cat": "x"}
    cache.delete(keys.coview("t-bulk"), keys.meta("t-bulk"))
    dead = RedisHotCache(s, url="redis://127.0.0.1:1/0", socket_timeout_s=0.5)
    try:
        assert dead.endpoint.port == 1
        with pytest.raises(ServiceUnavailable, match="127.0.0.1:1"):
            ztop_many_reader(dead)(zk, 3)
        dw = bulk_writer(dead)
        dw.zset("k", {"a": 1.0})
        with pytest.raises(ServiceUnavailable, match="127.0.0.1:1"):
            dw.flush()
    finally:
        dead.close()
