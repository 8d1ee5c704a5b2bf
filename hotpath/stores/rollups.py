"""Real-time rollups of orders: top sellers per category (Druid in production, DuckDB embedded).

    RollupStore                 interface (sync, like DimensionStore)
    ├── DuckDbRollupStore       embedded: an ``orders`` table in a DuckDB file, rolled up at query time
    └── DruidRollups            full profile with ``druid.rollups`` on (hotpath/stores/druid_rollups.py):
                                orders to Kafka, Druid's Kafka supervisor rolls them up, SQL reads

Ordering contract: ``top_sellers`` is by total quantity descending, then master id ascending.
The store is shared between a writer (the loader, an order consumer) and readers (serving replicas):
DuckDB allows one writing process, so readers open the file read-only and close it after a few idle
seconds, and a writer shared by several processes (the co-view shards, each writing the orders of
its own event-log partitions) opens it with ``release=True``: it closes the file after every call,
and a call that finds the file locked by another process fails with :class:`ServiceUnavailable`
(the caller retries).

Streamed orders are written exactly once per event-log position: :meth:`RollupStore.record_order_batch`
keeps, per ``(source, partition)``, the offset after the last order it recorded and, in the same
transaction as the rows, skips every row below it. A replay after a failure (same offsets again,
in order) therefore adds nothing twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb
import numpy as np

from hotpath.errors import BadInput, ServiceUnavailable, StoreError
from hotpath.stores.rollup_base import ALL, OrderEvent, RollupStore

__all__ = ["OrderEvent", "RollupStore", "ALL", "DuckDbRollupStore", "open_rollup_store"]


_ORDERS_DDL = "CREATE TABLE IF NOT EXISTS orders (master_id VARCHAR, cat_id VARCHAR, qty BIGINT, ts_ms BIGINT)"
_OFFSETS_DDL = (
    "CREATE TABLE IF NOT EXISTS order_offsets (source VARCHAR, part INTEGER, next_offset BIGINT,"
    " PRIMARY KEY (source, part))"
)


class DuckDbRollupStore(RollupStore):
    """Orders in a DuckDB file.

    A ``read_only`` store keeps its connection for ``hold_s`` seconds after the last query and then
    closes it, so a writer (a loader) can take the file between bursts of fallback reads.
    """

    def __init__(self, path: Path, *, read_only: bool = False, hold_s: float = 5.0, release: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.release = release
        self.hold_s = hold_s
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._used = 0.0
        self._closer: threading.Timer | None = None

    def _close_idle(self) -> None:
        with self._lock:
            if self._con is not None and time.monotonic() - self._used >= self.hold_s:
                self._con.close()
                self._con = None

    def _connect(self) -> duckdb.DuckDBPyConnection:
        try:
            if self._con is None and self.read_only:
                self._con = duckdb.connect(str(self.path), read_only=True)
            if self._con is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._con = duckdb.connect(str(self.path))
            return self._con
        except duckdb.Error as exc:
            raise ServiceUnavailable(f"cannot open rollup store {self.path}: {exc}") from exc

    def _run(self, fn):
        with self._lock, self._writers_lock():
            con = self._connect()
            try:
                return fn(con)
            except duckdb.Error as exc:
                raise StoreError(f"rollup store {self.path}: {exc}") from exc
            finally:
                if self.release and self._con is not None:
                    self._con.close()
                    self._con = None
                elif self.read_only:
                    self._used = time.monotonic()
                    if self._closer is None or not self._closer.is_alive():
                        self._closer = threading.Timer(self.hold_s, self._close_idle)
                        self._closer.daemon = True
                        self._closer.start()

    @contextlib.contextmanager
    def _writers_lock(self):
        """Releasing writers of one file take turns through an OS file lock beside it: opening the
        file while another process was writing it was seen to lose that process's last commit
        (~1 run in 6 with two processes writing as fast as they could), so they never try."""
        if not self.release:
            yield
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{self.path}.writers.lock", "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def ensure_schema(self) -> None:
        def create(con: duckdb.DuckDBPyConnection) -> None:
            con.execute(_ORDERS_DDL)
            con.execute(_OFFSETS_DDL)

        self._run(create)

    def record_order_batch(self, source, partition, rows) -> int:
        if not rows:
            return 0
        offs = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        if len(offs) > 1 and not bool(np.all(offs[1:] > offs[:-1])):
            raise BadInput("order rows must come in ascending offset order", field="rows")

        def write(con: duckdb.DuckDBPyConnection) -> int:
            con.execute(_ORDERS_DDL)
            con.execute(_OFFSETS_DDL)
            con.execute("BEGIN TRANSACTION")
            try:
                got = con.execute(
                    "SELECT next_offset FROM order_offsets WHERE source = ? AND part = ?", [source, partition]
                ).fetchall()
                done = int(got[0][0]) if got else 0
                first = int(np.searchsorted(offs, done))
                fresh = rows[first:]
                if fresh:
                    batch = {
                        "master_id": np.array([r[1] for r in fresh], dtype=object),
                        "cat_id": np.array([r[2] for r in fresh], dtype=object),
                        "qty": np.array([r[3] for r in fresh], dtype=np.int64),
                        "ts_ms": np.array([r[4] for r in fresh], dtype=np.int64),
                    }
                    con.register("_orders_in", batch)
                    try:
                        con.execute("INSERT INTO orders SELECT master_id, cat_id, qty, ts_ms FROM _orders_in")
                    finally:
                        con.unregister("_orders_in")
                    con.execute(
                        "INSERT OR REPLACE INTO order_offsets VALUES (?, ?, ?)", [source, partition, int(offs[-1]) + 1]
                    )
                con.execute("COMMIT")
                return len(fresh)
            except BaseException:
                con.execute("ROLLBACK")
                raise

        return self._run(write)

    def recorded_offset(self, source: str, partition: int) -> int:
        def read(con: duckdb.DuckDBPyConnection) -> int:
            try:
                got = con.execute(
                    "SELECT next_offset FROM order_offsets WHERE source = ? AND part = ?", [source, partition]
                ).fetchall()
            except duckdb.CatalogException:  # no order recorded yet (works on read-only stores too)
                return 0
            return int(got[0][0]) if got else 0

        return self._run(read)

    def record_orders(self, orders: Iterable[OrderEvent]) -> int:
        rows = [(o.master_id, o.cat_id, int(o.qty), int(o.ts_ms)) for o in orders]
        if rows:
            self._run(lambda con: con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", rows))
        return len(rows)

    def record_order_columns(self, master_ids, cat_ids, qty, ts_ms) -> int:
        n = len(qty)
        if n == 0:
            return 0
        batch = {
            "master_id": np.asarray(master_ids, dtype=object),
            "cat_id": np.asarray(cat_ids, dtype=object),
            "qty": np.asarray(qty, dtype=np.int64),
            "ts_ms": np.asarray(ts_ms, dtype=np.int64),
        }

        def insert(con: duckdb.DuckDBPyConnection) -> None:
            con.register("_orders_in", batch)
            try:
                con.execute("INSERT INTO orders SELECT master_id, cat_id, qty, ts_ms FROM _orders_in")
            finally:
                con.unregister("_orders_in")

        self._run(insert)
        return n

    def top_sellers(self, cat_id: str, n: int, *, since_ms: int | None = None) -> list[tuple[str, float]]:
        where, args = [], []
        if cat_id != ALL:
            where.append("cat_id = ?")
            args.append(cat_id)
        if since_ms is not None:
            where.append("ts_ms >= ?")
            args.append(since_ms)
        sql = (
            "SELECT master_id, SUM(qty) AS s FROM orders"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " GROUP BY master_id ORDER BY s DESC, master_id ASC LIMIT ?"
        )
        rows = self._run(lambda con: con.execute(sql, [*args, n]).fetchall())
        return [(m, float(s)) for m, s in rows]

    def top_sellers_all(self, n: int, *, since_ms: int | None = None) -> dict[str, list[tuple[str, float]]]:
        cond = "WHERE ts_ms >= ?" if since_ms is not None else ""
        sql = f"""
            SELECT cat_id, master_id, s FROM (
              SELECT cat_id, master_id, SUM(qty) AS s,
                     row_number() OVER (PARTITION BY cat_id ORDER BY SUM(qty) DESC, master_id ASC) AS r
              FROM orders {cond} GROUP BY cat_id, master_id)
            WHERE r <= ? ORDER BY cat_id, r"""
        args = [since_ms, n] if since_ms is not None else [n]
        rows = self._run(lambda con: con.execute(sql, args).fetchall())
        out: dict[str, list[tuple[str, float]]] = {}
        for cat, m, s in rows:
            out.setdefault(cat, []).append((m, float(s)))
        out[ALL] = self.top_sellers(ALL, n, since_ms=since_ms)
        return out

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None


def open_rollup_store(settings, *, read_only: bool = False, release: bool = False) -> RollupStore:
    """The rollup store of the settings' profile: DuckDB, or Druid in the full profile when
    ``druid.rollups`` is on. ``release``: a DuckDB writer sharing the file with other processes
    (closes it after every call). A ``read_only`` Druid store (a serving replica) also runs the
    best-seller refresh loop (``druid.refresh_s`` > 0) that rewrites ``cat:bestsellers:{cat}`` in the
    hot cache from Druid; closing the store stops it."""
    if settings.profile == "full" and settings.druid.rollups:
        from hotpath.stores.druid_rollups import DruidRollups

        store = DruidRollups(settings)
        if read_only and settings.druid.refresh_s > 0:
            from hotpath.stores.bestsellers_refresh import BestsellerRefresher
            from hotpath.stores.factory import open_hot_cache

            cache = open_hot_cache(settings)
            refresher = BestsellerRefresher(
                store, cache, n=settings.recs.bestsellers_per_cat, interval_s=settings.druid.refresh_s,
                ttl_s=settings.druid.cache_ttl_s, prefix=settings.recs.key_prefix,
            )  # fmt: skip
            store.attach_refresher(refresher.start(), cache)
        return store
    return DuckDbRollupStore(settings.in_runtime(settings.duckdb.path), read_only=read_only, release=release)
