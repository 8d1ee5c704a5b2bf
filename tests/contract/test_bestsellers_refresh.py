"""The best-seller refresh loop: Redis `cat:bestsellers:{cat}` rewritten from the rollup store (DuckDB and
Druid), the read path's cache-then-store order, and its metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotpath.config import Settings
from hotpath.recs.keys import Keys
from hotpath.stores.bestsellers_refresh import BestsellerRefresher, bestsellers_key
from hotpath.stores.rollups import DuckDbRollupStore, OrderEvent, RollupStore

pytestmark = pytest.mark.services  # Redis


@pytest.fixture(params=["duckdb", "druid"])
def store(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path) -> Iterator[RollupStore]:
    if request.param == "duckdb":
        st: RollupStore = DuckDbRollupStore(tmp_path / "r.duckdb")
    else:
        from hotpath.stores.druid_rollups import DruidRollups

        st = DruidRollups(settings)
    st.ensure_schema()
    yield st
    st.close()


def test_keys_are_the_recs_products() -> None:
    assert bestsellers_key("p:", "a.b") == Keys("p:").bestsellers("a.b")


def test_refresh_writes_the_lists_and_serve_reads_them(store: RollupStore, settings: Settings, uniq: str) -> None:
    from hotpath.stores.factory import open_hot_cache

    cache = open_hot_cache(settings)
    prefix, cat = f"t-{uniq}:", f"rc-{uniq}"
    now = int(time.time() * 1000)
    store.record_orders([OrderEvent(f"a-{uniq}", cat, 4, now - 1000), OrderEvent(f"b-{uniq}", cat, 9, now - 1000)])
    want = [(f"b-{uniq}", 9.0), (f"a-{uniq}", 4.0)]
    ref = BestsellerRefresher(store, cache, n=10, interval_s=0.3, ttl_s=30, prefix=prefix)
    assert ref.lag_s() == float("inf")
    try:
        ref.serve(cat, 10)  # nothing cached yet: a miss (whatever the store already answers)
        assert ref.misses == 1 and ref.hits == 0
        cache.delete(bestsellers_key(prefix, cat))
        ref.start()
        deadline = time.monotonic() + 60
        while cache.ztop(bestsellers_key(prefix, cat), 10) != want and time.monotonic() < deadline:
            time.sleep(0.2)
        assert cache.ztop(bestsellers_key(prefix, cat), 10) == want
        assert 0 < (ttl := cache.ttl(bestsellers_key(prefix, cat))) <= 30, ttl
        assert ref.serve(cat, 1) == want[:1] and ref.hits == 1
        m = ref.metrics()
        assert m["refreshes"] >= 1 and m["refresh_lag_s"] < 30 and m["cache_hit_rate"] == 0.5
        # a miss reads the store and writes the list back
        ref.stop()
        cache.delete(bestsellers_key(prefix, cat))
        assert ref.serve(cat, 10) == want and ref.misses == 2
        assert cache.ztop(bestsellers_key(prefix, cat), 10) == want
    finally:
        ref.stop()
        cache.delete(*list(cache.scan(prefix)))
        cache.close()
