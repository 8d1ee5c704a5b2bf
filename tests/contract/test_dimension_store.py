"""The DimensionStore contract: SQLite and Cassandra pass the same tests (Cassandra needs the services).

CQL ``float`` is 32-bit, so scores are compared with a relative tolerance of 1e-6 (exactly
representable values such as 0.5 compare exactly in both stores).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from hotpath.config import Settings
from hotpath.errors import ServiceUnavailable
from hotpath.stores.base import CategoryCoView, DimensionStore, MasterPids, SemanticRelations
from hotpath.stores.sqlite_dim import SqliteDimensionStore


@pytest.fixture(scope="module")
def cassandra_store(settings: Settings) -> Iterator[DimensionStore]:
    """One throwaway keyspace per run (keyspace DDL is slow); tests use fresh random keys in it."""
    from hotpath.stores.cassandra_dim import CassandraDimensionStore

    store = CassandraDimensionStore(settings, keyspace=f"hotpath_ct_{uuid.uuid4().hex[:12]}")
    try:
        store.ensure_schema()
    except ServiceUnavailable as exc:
        store.close()
        pytest.fail(f"{exc.one_line()}")
    try:
        yield store
    finally:
        store.drop_keyspace()
        store.close()


@pytest.fixture(params=["sqlite", pytest.param("cassandra", marks=pytest.mark.services)])
def store(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path) -> Iterator[DimensionStore]:
    if request.param == "sqlite":
        s = SqliteDimensionStore(settings, path=tmp_path / "dims.sqlite")
        s.ensure_schema()
        yield s
        s.close()
    else:
        yield request.getfixturevalue("cassandra_store")


def approx_map(m):
    return pytest.approx(dict(m), rel=1e-6)


def ts(ms: int = 0) -> datetime:
    return datetime(2026, 11, 26, 7, 30, 15, tzinfo=UTC) + timedelta(milliseconds=ms)


def test_ensure_schema_idempotent(store: DimensionStore) -> None:
    store.ensure_schema()
    store.ensure_schema()
    if isinstance(store, SqliteDimensionStore):
        from hotpath.stores.sqlite_dim import MIGRATIONS

        want = [m[0] for m in MIGRATIONS]
    else:
        from hotpath.stores.cassandra_dim import migrations

        want = [m[0] for m in migrations()]
    assert store.applied_migrations() == want  # type: ignore[attr-defined]


def test_semantic_round_trip(store: DimensionStore) -> None:
    a, b, r1, r2, r3 = (uuid.uuid4() for _ in range(5))
    rows = [
        SemanticRelations(a, {r1: 0.5, r2: 0.25, r3: 0.1}, ts(123), "daily-batch-v3"),
        SemanticRelations(b, {}, ts(), "cold"),
    ]
    assert store.put_semantic(rows) == 2
    got = store.get_semantic([a, b, uuid.uuid4()])
    assert set(got) == {a, b}  # the missing id is absent
    assert got[a].master_id == a
    assert got[a].related_masters == approx_map({r1: 0.5, r2: 0.25, r3: 0.1})
    assert got[a].related_masters[r1] == 0.5  # exactly representable
    assert all(isinstance(k, uuid.UUID) for k in got[a].related_masters)
    assert got[a].inference_ts == ts(123)
    assert got[a].inference_ts.tzinfo is not None and got[a].inference_ts.utcoffset() == timedelta(0)
    assert got[a].inference_source == "daily-batch-v3"
    assert dict(got[b].related_masters) == {}


def test_semantic_timestamps_utc_millisecond(store: DimensionStore) -> None:
    naive, plus7, micro = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    store.put_semantic(
        [
            SemanticRelations(naive, {}, datetime(2026, 1, 2, 3, 4, 5), "s"),  # naive counts as UTC
            SemanticRelations(plus7, {}, datetime(2026, 1, 2, 10, 4, 5, tzinfo=timezone(timedelta(hours=7))), "s"),
            SemanticRelations(micro, {}, datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC), "s"),
        ]
    )
    got = store.get_semantic([naive, plus7, micro])
    assert got[naive].inference_ts == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert got[plus7].inference_ts == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert got[plus7].inference_ts.utcoffset() == timedelta(0)
    assert got[micro].inference_ts == datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)


def test_semantic_upsert_replaces_row(store: DimensionStore) -> None:
    a, r1, r2 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    store.put_semantic([SemanticRelations(a, {r1: 1.0}, ts(), "v1")])
    store.put_semantic([SemanticRelations(a, {r2: 2.0}, ts(1000), "v2")])
    row = store.get_semantic([a])[a]
    assert dict(row.related_masters) == {r2: 2.0}  # replaced, not merged
    assert row.inference_ts == ts(1000)
    assert row.inference_source == "v2"


def test_coview_round_trip_and_upsert(store: DimensionStore, uniq: str) -> None:
    e, b, empty = f"{uniq}-electronics", f"{uniq}-books", f"{uniq}-empty"
    rows = [
        CategoryCoView(e, {"phones": 0.75, "laptops": 0.3333, "cables": 1e-3}),
        CategoryCoView(b, {"ebooks": 2.0}),
        CategoryCoView(empty, {}),
    ]
    assert store.put_coview(rows) == 3
    got = store.get_coview([e, b, empty, f"{uniq}-missing", e])
    assert set(got) == {e, b, empty}
    assert got[e].cat_id == e
    assert got[e].related_cats == approx_map({"phones": 0.75, "laptops": 0.3333, "cables": 1e-3})
    assert dict(got[empty].related_cats) == {}
    store.put_coview([CategoryCoView(b, {"comics": 0.5})])
    assert dict(store.get_coview([b])[b].related_cats) == {"comics": 0.5}


def test_master_pids_round_trip(store: DimensionStore) -> None:
    m, bare = uuid.uuid4(), uuid.uuid4()
    pids = [uuid.uuid4() for _ in range(5)]
    pids.append(pids[0])  # a list keeps order and duplicates
    meta = {pids[0]: '{"price": 10.5}', pids[3]: "plain text ✓"}
    assert store.put_master_pids([MasterPids(m, pids, meta), MasterPids(bare, [])]) == 2
    got = store.get_master_pids([m, bare, uuid.uuid4()])
    assert set(got) == {m, bare}
    assert list(got[m].pids) == pids
    assert dict(got[m].metadata) == meta
    assert list(got[bare].pids) == [] and dict(got[bare].metadata) == {}
    store.put_master_pids([MasterPids(m, pids[:2])])
    assert list(store.get_master_pids([m])[m].pids) == pids[:2]
    assert dict(store.get_master_pids([m])[m].metadata) == {}


def test_empty_inputs(store: DimensionStore) -> None:
    assert store.put_semantic([]) == 0
    assert store.put_coview([]) == 0
    assert store.put_master_pids([]) == 0
    assert store.get_semantic([]) == {}
    assert store.get_coview([]) == {}
    assert store.get_master_pids([]) == {}


def test_bulk_upsert_and_read(store: DimensionStore) -> None:
    n = 2000
    ids = [uuid.uuid4() for _ in range(n)]
    related = uuid.uuid4()
    written = store.put_semantic(
        SemanticRelations(mid, {related: float(i % 64) / 4}, ts(i), f"bulk-{i}") for i, mid in enumerate(ids)
    )
    assert written == n
    got = store.get_semantic(ids + [uuid.uuid4()])
    assert len(got) == n
    for i in (0, 1, 777, n - 1):
        row = got[ids[i]]
        assert row.related_masters == {related: float(i % 64) / 4}
        assert row.inference_ts == ts(i)
        assert row.inference_source == f"bulk-{i}"


def test_cassandra_down_is_service_unavailable(settings: Settings) -> None:
    from hotpath.stores.cassandra_dim import CassandraDimensionStore

    down = settings.model_copy(update={"cassandra": settings.cassandra.model_copy(update={"port": 1})})
    store = CassandraDimensionStore(down, connect_timeout_s=1)
    try:
        with pytest.raises(ServiceUnavailable, match="127.0.0.1:1"):
            store.get_coview(["x"])
    finally:
        store.close()


def test_sqlite_store_shared_between_threads(settings: Settings, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store = SqliteDimensionStore(settings, path=tmp_path / "dims.sqlite")
    cats = [f"cat-{i}" for i in range(200)]

    def write(i: int) -> int:
        return store.put_coview([CategoryCoView(cats[i], {"other": float(i)})])

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(write, range(200))) == 200
    got = store.get_coview(cats)
    assert {c: dict(r.related_cats) for c, r in got.items()} == {c: {"other": float(i)} for i, c in enumerate(cats)}
    store.close()


def test_update_semantic_writes_only_the_given_rows(store: DimensionStore) -> None:
    """Zero writes to cold rows: their write marks (SQLite row versions, Cassandra WRITETIME) stay put."""
    hot, cold = [uuid.uuid4() for _ in range(3)], [uuid.uuid4() for _ in range(5)]
    r = uuid.uuid4()
    store.put_semantic([SemanticRelations(m, {r: 0.5}, ts(), "old") for m in hot + cold])
    before = store.semantic_write_marks(hot + cold)
    assert set(before) == set(hot + cold)
    written0 = store.semantic_rows_written
    new = uuid.uuid4()
    rows = [SemanticRelations(m, {r: 0.75}, ts(1000), "refresh-v1") for m in hot + [new]]
    assert store.update_semantic(rows) == 4
    assert store.semantic_rows_written - written0 == 4
    after = store.semantic_write_marks(hot + cold + [new])
    assert {m: after[m] for m in cold} == {m: before[m] for m in cold}
    assert all(after[m] > before[m] for m in hot)
    assert new in after  # a hot master without a row gets one
    got = store.get_semantic(hot + cold + [new])
    assert all(got[m].inference_source == "refresh-v1" and got[m].related_masters == approx_map({r: 0.75})
               for m in hot + [new])
    assert all(got[m].inference_source == "old" and got[m].inference_ts == ts() for m in cold)
    assert store.semantic_write_marks([uuid.uuid4()]) == {}
