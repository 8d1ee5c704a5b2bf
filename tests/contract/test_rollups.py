"""The RollupStore contract: DuckDB and Druid pass the same tests (Druid needs the full profile's services).

Druid is eventually consistent (orders go through Kafka and the indexing task), so every read is
polled until it matches or a deadline passes; DuckDB matches on the first read. Each test uses its own
categories and masters (the Druid datasource is shared), and timestamps a few minutes old, inside the
supervisor's late-data window.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from hotpath.config import Settings
from hotpath.errors import BadInput
from hotpath.stores.rollups import ALL, DuckDbRollupStore, OrderEvent, RollupStore

VISIBLE_S = 60.0  # generous: a 2-core machine shared by many jobs
BUCKET_MS = 5 * 60 * 1000


@dataclass
class Under:
    store: RollupStore
    kind: str
    uniq: str

    def cat(self, name: str = "c") -> str:
        return f"ct-{self.uniq}-{name}"

    def m(self, i: int) -> str:
        return f"m-{self.uniq}-{i:03d}"

    def eventually(self, read: Callable[[], object], want: object) -> object:
        deadline = time.monotonic() + (VISIBLE_S if self.kind == "druid" else 0.0)
        while True:
            got = read()
            if got == want or time.monotonic() >= deadline:
                return got
            time.sleep(0.3)


@pytest.fixture(
    params=[
        "duckdb",
        pytest.param("druid", marks=pytest.mark.services),
        pytest.param("druid-native", marks=pytest.mark.services),
    ]
)
def under(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path, uniq: str) -> Iterator[Under]:
    if request.param == "duckdb":
        store: RollupStore = DuckDbRollupStore(tmp_path / "rollups.duckdb")
    else:
        from hotpath.stores.druid_rollups import DruidRollups

        store = DruidRollups(settings)
        store.top_query = "native" if request.param == "druid-native" else "sql"
    store.ensure_schema()
    try:
        yield Under(store, "duckdb" if request.param == "duckdb" else "druid", uniq)
    finally:
        store.close()


def _now_bucket_ms() -> int:
    return int(time.time() * 1000) // BUCKET_MS * BUCKET_MS


def test_top_sellers_by_quantity_then_master(under: Under) -> None:
    cat, ts = under.cat(), _now_bucket_ms() - 60_000
    orders = [
        OrderEvent(under.m(1), cat, 5, ts),
        OrderEvent(under.m(2), cat, 7, ts),
        OrderEvent(under.m(3), cat, 2, ts),
        OrderEvent(under.m(1), cat, 2, ts + 1000),  # m1: 7 in all, tied with m2 -> master id order
        OrderEvent(under.m(4), under.cat("other"), 50, ts),
    ]
    assert under.store.record_orders(orders) == 5
    want = [(under.m(1), 7.0), (under.m(2), 7.0), (under.m(3), 2.0)]
    assert under.eventually(lambda: under.store.top_sellers(cat, 10), want) == want
    assert under.store.top_sellers(cat, 2) == want[:2]
    assert under.store.top_sellers(under.cat("other"), 10) == [(under.m(4), 50.0)]
    assert under.store.top_sellers(under.cat("nobody"), 10) == []


def test_since_filters_older_orders(under: Under) -> None:
    cat, now = under.cat(), _now_bucket_ms()
    old, new = now - 2 * 3_600_000, now - 60_000  # two hours ago: inside the late-data window
    under.store.record_orders([OrderEvent(under.m(1), cat, 9, old), OrderEvent(under.m(2), cat, 3, new)])
    everything = [(under.m(1), 9.0), (under.m(2), 3.0)]
    assert under.eventually(lambda: under.store.top_sellers(cat, 10), everything) == everything
    since = now - 3_600_000  # a bucket boundary: the Druid store rounds down to the 5-minute bucket
    assert under.store.top_sellers(cat, 10, since_ms=since) == [(under.m(2), 3.0)]


def test_all_categories_at_once(under: Under) -> None:
    a, b, ts = under.cat("a"), under.cat("b"), _now_bucket_ms() - 30_000
    n = 6
    masters = [under.m(i) for i in range(n)]
    qty = np.arange(1, n + 1, dtype=np.int64)
    cats = [a if i % 2 else b for i in range(n)]
    assert under.store.record_order_columns(masters, cats, qty, np.full(n, ts, dtype=np.int64)) == n
    big = under.m(99)  # sells in both categories: `_all` sums them (and ranks it first among ours)
    under.store.record_orders([OrderEvent(big, a, 1_000_000, ts), OrderEvent(big, b, 1_000_000, ts)])
    want_a = [(big, 1e6)] + [(masters[i], float(qty[i])) for i in (5, 3)]
    want_b = [(big, 1e6)] + [(masters[i], float(qty[i])) for i in (4, 2)]

    def mine() -> tuple:
        tops = under.store.top_sellers_all(3)
        return tops.get(a), tops.get(b)

    assert under.eventually(mine, (want_a, want_b)) == (want_a, want_b)
    assert under.store.top_sellers(a, 3) == want_a
    assert dict(under.store.top_sellers_all(1000)[ALL])[big] == 2e6
    assert dict(under.store.top_sellers(ALL, 1000))[big] == 2e6


def test_order_batches_are_recorded_once_per_offset(under: Under) -> None:
    cat, ts = under.cat(), _now_bucket_ms() - 30_000
    src = f"topic-{under.uniq}"
    rows = [(i, under.m(i % 2), cat, 1, ts, f"p{i}") for i in range(10, 16)]
    assert under.store.recorded_offset(src, 3) == 0
    assert under.store.record_order_batch(src, 3, rows[:4]) == 4
    assert under.store.recorded_offset(src, 3) == 14
    # a replay from an older offset (a restarted consumer) adds only the rows past the last one
    assert under.store.record_order_batch(src, 3, rows) == 2
    assert under.store.record_order_batch(src, 3, rows) == 0
    assert under.store.recorded_offset(src, 3) == 16
    assert under.store.recorded_offset(src, 4) == 0  # partitions are independent
    want = [(under.m(0), 3.0), (under.m(1), 3.0)]
    assert under.eventually(lambda: under.store.top_sellers(cat, 10), want) == want
    with pytest.raises(BadInput):
        under.store.record_order_batch(src, 3, [rows[1], rows[0]])


def test_recorded_offsets_survive_a_reopen(under: Under, settings: Settings, tmp_path: Path) -> None:
    cat, src = under.cat(), f"topic-{under.uniq}"
    under.store.record_order_batch(src, 0, [(0, under.m(1), cat, 2, _now_bucket_ms(), "p")])
    under.store.close()
    if under.kind == "duckdb":
        again: RollupStore = DuckDbRollupStore(tmp_path / "rollups.duckdb")
    else:
        from hotpath.stores.druid_rollups import DruidRollups

        again = DruidRollups(settings)
    under.store = again
    assert again.recorded_offset(src, 0) == 1
    assert again.record_order_batch(src, 0, [(0, under.m(1), cat, 2, _now_bucket_ms(), "p")]) == 0


def test_a_store_reads_its_own_writes_at_once(under: Under) -> None:
    """No polling: the first read after a write sees it (Druid: it waits for its ingestion)."""
    cat, ts = under.cat(), _now_bucket_ms() - 30_000
    under.store.record_orders([OrderEvent(under.m(1), cat, 3, ts)])
    assert under.store.top_sellers(cat, 5) == [(under.m(1), 3.0)]
    under.store.record_order_batch(f"topic-{under.uniq}", 0, [(0, under.m(2), cat, 4, ts, "p")])
    assert under.store.top_sellers_all(5)[cat] == [(under.m(2), 4.0), (under.m(1), 3.0)]
