"""The SQLite :class:`DimensionStore` of the embedded profile (stands in for Cassandra).

One file (``settings.sqlite.path`` under the runtime dir), WAL mode so readers in other processes
never block the writer; maps and lists are stored as JSON text, timestamps as epoch milliseconds
(Cassandra's precision, so both stores return the same values). Bulk upserts are one
``executemany`` in one transaction. One connection guarded by a lock makes the store safe to share
between threads; other processes open their own and meet at SQLite's file locks (busy timeout 30 s).

Migrations: numbered scripts in :data:`MIGRATIONS`, applied once each and recorded in
``schema_migrations`` by :meth:`SqliteDimensionStore.ensure_schema` (idempotent).
"""

from __future__ import annotations

import calendar
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

from hotpath.config import Settings
from hotpath.errors import StoreError
from hotpath.stores.base import CategoryCoView, DimensionStore, MasterPids, SemanticRelations

__all__ = ["SqliteDimensionStore", "MIGRATIONS"]

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "dimension tables of the design notes",
        """
        CREATE TABLE IF NOT EXISTS master_semantic_relations (
            master_id TEXT PRIMARY KEY,          -- canonical UUID string
            related_masters TEXT NOT NULL,       -- JSON object {uuid: float}
            inference_ts INTEGER NOT NULL,       -- ms since the epoch, UTC
            inference_source TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS category_co_view_relations (
            cat_id TEXT PRIMARY KEY,
            related_cats TEXT NOT NULL           -- JSON object {cat: float}
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS master_to_pids (
            master_id TEXT PRIMARY KEY,
            pids TEXT NOT NULL,                  -- JSON array of uuid strings
            metadata TEXT NOT NULL               -- JSON object {uuid: text}
        ) WITHOUT ROWID;
        """,
    ),
    (
        2,
        "row versions of master_semantic_relations (proof of which rows a refresh wrote)",
        """
        ALTER TABLE master_semantic_relations ADD COLUMN row_version INTEGER NOT NULL DEFAULT 1;
        """,
    ),
)

# A keyed upsert that bumps the row's version (INSERT OR REPLACE would delete and re-insert it)
_UPSERT_SEMANTIC = (
    "INSERT INTO master_semantic_relations (master_id, related_masters, inference_ts, inference_source) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (master_id) DO UPDATE SET related_masters = excluded.related_masters, "
    "inference_ts = excluded.inference_ts, inference_source = excluded.inference_source, "
    "row_version = row_version + 1"
)

_CHUNK = 500  # ids per SELECT ... IN (...), well under SQLite's variable limit


def to_epoch_ms(ts: datetime) -> int:
    """Milliseconds since the epoch; a naive datetime counts as UTC (as the Cassandra driver does)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return calendar.timegm(ts.utctimetuple()) * 1000 + ts.microsecond // 1000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_epoch_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


class SqliteDimensionStore(DimensionStore):
    """:class:`DimensionStore` in one SQLite file (``path`` overrides ``settings.sqlite.path``)."""

    def __init__(self, settings: Settings, *, path: Path | str | None = None) -> None:
        self.path = settings.in_runtime(Path(path) if path is not None else settings.sqlite.path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._schema_ready = False

    # ------------------------------------------------------------------ plumbing
    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except (OSError, sqlite3.Error) as exc:
                raise StoreError(f"cannot open the dimension store {self.path}: {exc}") from exc
            self._conn = conn
        return self._conn

    @contextmanager
    def _tx(self, what: str) -> Iterator[sqlite3.Connection]:
        """The connection inside one write transaction, under the lock; SQLite errors mapped."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite {what} on {self.path} failed: {exc}") from exc

    def _query(self, sql: str, args: Sequence[object], what: str) -> list[tuple]:
        with self._lock:
            try:
                return self._connection().execute(sql, tuple(args)).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite {what} on {self.path} failed: {exc}") from exc

    def _select_in(self, table: str, columns: str, key: str, ids: Sequence[str]) -> list[tuple]:
        self._require_schema()
        rows: list[tuple] = []
        unique = list(dict.fromkeys(ids))
        for i in range(0, len(unique), _CHUNK):
            chunk = unique[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows += self._query(f"SELECT {columns} FROM {table} WHERE {key} IN ({marks})", chunk, f"read {table}")
        return rows

    def _require_schema(self) -> None:
        if not self._schema_ready:
            self.ensure_schema()

    # ------------------------------------------------------------------ schema
    def ensure_schema(self) -> None:
        with self._tx("migration") as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
            )
            applied = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
            for version, name, script in MIGRATIONS:
                if version in applied:
                    continue
                for statement in (s.strip() for s in script.split(";")):
                    if statement:
                        conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, to_epoch_ms(datetime.now(UTC))),
                )
        self._schema_ready = True

    def applied_migrations(self) -> list[int]:
        return [v for (v,) in self._query("SELECT version FROM schema_migrations ORDER BY version", (), "read")]

    # ------------------------------------------------------------------ semantic relations
    def put_semantic(self, rows: Iterable[SemanticRelations]) -> int:
        self._require_schema()
        params = [
            (
                str(r.master_id),
                json.dumps({str(k): float(v) for k, v in r.related_masters.items()}),
                to_epoch_ms(r.inference_ts),
                r.inference_source,
            )
            for r in rows
        ]
        if params:
            with self._tx("upsert master_semantic_relations") as conn:
                conn.executemany(_UPSERT_SEMANTIC, params)
        return self._count_semantic(len(params))

    def semantic_write_marks(self, master_ids: Sequence[UUID]) -> dict[UUID, int]:
        return {
            UUID(mid): int(version)
            for mid, version in self._select_in(
                "master_semantic_relations", "master_id, row_version", "master_id", [str(m) for m in master_ids]
            )
        }

    def get_semantic(self, master_ids: Sequence[UUID]) -> dict[UUID, SemanticRelations]:
        out: dict[UUID, SemanticRelations] = {}
        for mid, related, ts, source in self._select_in(
            "master_semantic_relations",
            "master_id, related_masters, inference_ts, inference_source",
            "master_id",
            [str(m) for m in master_ids],
        ):
            key = UUID(mid)
            out[key] = SemanticRelations(
                master_id=key,
                related_masters={UUID(k): v for k, v in json.loads(related).items()},
                inference_ts=from_epoch_ms(ts),
                inference_source=source,
            )
        return out

    # ------------------------------------------------------------------ category co-views
    def put_coview(self, rows: Iterable[CategoryCoView]) -> int:
        self._require_schema()
        params = [(r.cat_id, json.dumps({str(k): float(v) for k, v in r.related_cats.items()})) for r in rows]
        if params:
            with self._tx("upsert category_co_view_relations") as conn:
                conn.executemany("INSERT OR REPLACE INTO category_co_view_relations VALUES (?, ?)", params)
        return len(params)

    def get_coview(self, cat_ids: Sequence[str]) -> dict[str, CategoryCoView]:
        return {
            cat: CategoryCoView(cat_id=cat, related_cats=json.loads(related))
            for cat, related in self._select_in("category_co_view_relations", "*", "cat_id", list(cat_ids))
        }

    # ------------------------------------------------------------------ master -> pids
    def put_master_pids(self, rows: Iterable[MasterPids]) -> int:
        self._require_schema()
        params = [
            (
                str(r.master_id),
                json.dumps([str(p) for p in r.pids]),
                json.dumps({str(k): str(v) for k, v in r.metadata.items()}),
            )
            for r in rows
        ]
        if params:
            with self._tx("upsert master_to_pids") as conn:
                conn.executemany("INSERT OR REPLACE INTO master_to_pids VALUES (?, ?, ?)", params)
        return len(params)

    def get_master_pids(self, master_ids: Sequence[UUID]) -> dict[UUID, MasterPids]:
        out: dict[UUID, MasterPids] = {}
        for mid, pids, metadata in self._select_in("master_to_pids", "*", "master_id", [str(m) for m in master_ids]):
            key = UUID(mid)
            out[key] = MasterPids(
                master_id=key,
                pids=[UUID(p) for p in json.loads(pids)],
                metadata={UUID(k): v for k, v in json.loads(metadata).items()},
            )
        return out

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
