"""The Cassandra :class:`DimensionStore` of the full profile (cassandra-driver; ScyllaDB speaks it too).

The keyspace (``settings.cassandra.keyspace`` unless overridden) is created with SimpleStrategy RF 1;
the tables are the design notes' own (``cql/001_schema.cql``). Migrations are the numbered
``cql/NNN_*.cql`` files, applied in order by :meth:`CassandraDimensionStore.ensure_schema` and
recorded in the keyspace's ``schema_migrations`` table; every statement is ``IF NOT EXISTS`` so
two processes migrating at once are harmless.

Writes are upserts (INSERT replaces the row's collections) sent with
``execute_concurrent_with_args`` (100 in flight); reads are ``IN (...)`` chunks run concurrently.
CQL ``float`` is 32-bit: scores come back rounded to single precision. Timestamps have millisecond
precision and come back timezone-aware UTC.

Errors: no host, timeouts and unavailable replicas become :class:`ServiceUnavailable` naming the
address; other driver errors become :class:`StoreError`.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from uuid import UUID

from cassandra import OperationTimedOut, ReadTimeout, Unavailable, WriteTimeout
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable, Session
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.connection import ConnectionException
from cassandra.policies import RoundRobinPolicy
from cassandra.query import PreparedStatement

from hotpath.config import Settings
from hotpath.errors import BadInput, HotpathError, ServiceUnavailable, StoreError
from hotpath.stores.base import CategoryCoView, DimensionStore, MasterPids, SemanticRelations

__all__ = ["CassandraDimensionStore", "migrations"]

log = logging.getLogger(__name__)

CONCURRENCY = 100
_IN_CHUNK = 50
_KEYSPACE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,47}$")
_UNAVAILABLE = (NoHostAvailable, ConnectionException, OperationTimedOut, Unavailable, ReadTimeout, WriteTimeout)


def migrations() -> list[tuple[int, str, list[str]]]:
    """``(version, name, statements)`` of every ``cql/NNN_name.cql`` file, in version order."""
    out = []
    for entry in resources.files("hotpath.stores").joinpath("cql").iterdir():
        match = re.match(r"^(\d+)_(.+)\.cql$", entry.name)
        if not match:
            continue
        text = "\n".join(line.split("--", 1)[0] for line in entry.read_text().splitlines())
        statements = [s.strip() for s in text.split(";") if s.strip()]
        out.append((int(match.group(1)), match.group(2), statements))
    return sorted(out)


def _utc(ts: datetime | None) -> datetime:
    if ts is None:
        return datetime.fromtimestamp(0, tz=UTC)
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


class CassandraDimensionStore(DimensionStore):
    """:class:`DimensionStore` on Cassandra at ``settings.cassandra`` (connects on first use)."""

    def __init__(
        self,
        settings: Settings,
        *,
        keyspace: str | None = None,
        connect_timeout_s: float = 10.0,
        request_timeout_s: float = 10.0,
    ) -> None:
        self.keyspace = keyspace or settings.cassandra.keyspace
        if not _KEYSPACE_RE.match(self.keyspace):
            raise BadInput(f"invalid Cassandra keyspace name {self.keyspace!r}", field="keyspace")
        self.address = f"{settings.cassandra.host}:{settings.cassandra.port}"
        self._host = settings.cassandra.host
        self._port = settings.cassandra.port
        self._connect_timeout_s = connect_timeout_s
        self._request_timeout_s = request_timeout_s
        self._lock = threading.Lock()
        self._cluster: Cluster | None = None
        self._session: Session | None = None
        self._prepared: dict[str, PreparedStatement] = {}

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except HotpathError:
            raise
        except _UNAVAILABLE as exc:
            raise ServiceUnavailable(
                f"Cassandra at {self.address} is unavailable ({what}): {exc}",
                hint="start it with `hotpath services up --profile full`",
            ) from exc
        except Exception as exc:  # DriverException, InvalidRequest, serialisation errors
            raise StoreError(f"Cassandra {what} failed: {exc}") from exc

    def _get_session(self) -> Session:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    profile = ExecutionProfile(
                        load_balancing_policy=RoundRobinPolicy(), request_timeout=self._request_timeout_s
                    )
                    cluster = Cluster(
                        contact_points=[self._host],
                        port=self._port,
                        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                        connect_timeout=self._connect_timeout_s,
                        control_connection_timeout=self._connect_timeout_s,
                    )
                    try:
                        with self._errors("connect"):
                            session = cluster.connect()
                    except BaseException:
                        cluster.shutdown()
                        raise
                    self._cluster, self._session = cluster, session
        return self._session

    def _stmt(self, name: str, cql: str) -> PreparedStatement:
        stmt = self._prepared.get(name)
        if stmt is None:
            with self._errors(f"prepare {name}"):
                stmt = self._get_session().prepare(cql.format(ks=self.keyspace))
            self._prepared[name] = stmt
        return stmt

    def _write(self, name: str, cql: str, params: list[tuple[Any, ...]]) -> int:
        if not params:
            return 0
        stmt = self._stmt(name, cql)
        with self._errors(f"write {name}"):
            execute_concurrent_with_args(
                self._get_session(), stmt, params, concurrency=CONCURRENCY, raise_on_first_error=True
            )
        return len(params)

    def _read(self, name: str, cql: str, ids: Sequence[Any]) -> list[Any]:
        unique = list(dict.fromkeys(ids))
        if not unique:
            return []
        stmt = self._stmt(name, cql)
        chunks = [(unique[i : i + _IN_CHUNK],) for i in range(0, len(unique), _IN_CHUNK)]
        rows: list[Any] = []
        with self._errors(f"read {name}"):
            results = execute_concurrent_with_args(
                self._get_session(), stmt, chunks, concurrency=CONCURRENCY, raise_on_first_error=True
            )
            for result in results:
                rows.extend(result.result_or_exc)
        return rows

    # ------------------------------------------------------------------ schema
    def ensure_schema(self) -> None:
        """Create the keyspace and apply every migration not yet recorded (idempotent)."""
        session = self._get_session()
        ks = self.keyspace
        with self._errors("ensure_schema"):
            session.execute(
                f"CREATE KEYSPACE IF NOT EXISTS {ks} "
                "WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"
            )
            session.execute(
                f"CREATE TABLE IF NOT EXISTS {ks}.schema_migrations "
                "(version int PRIMARY KEY, name text, applied_at timestamp)"
            )
            applied = {row.version for row in session.execute(f"SELECT version FROM {ks}.schema_migrations")}
            pending = [m for m in migrations() if m[0] not in applied]
            if pending:
                session.set_keyspace(ks)
            for version, name, statements in pending:
                log.info("applying CQL migration %03d %s to keyspace %s", version, name, ks)
                for statement in statements:
                    session.execute(statement)
                session.execute(
                    f"INSERT INTO {ks}.schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                    (version, name, datetime.now(UTC)),
                )

    def applied_migrations(self) -> list[int]:
        with self._errors("read schema_migrations"):
            rows = self._get_session().execute(f"SELECT version FROM {self.keyspace}.schema_migrations")
            return sorted(row.version for row in rows)

    def drop_keyspace(self) -> None:
        """Drop the whole keyspace (tests use a throwaway one)."""
        with self._errors("drop keyspace"):
            self._get_session().execute(f"DROP KEYSPACE IF EXISTS {self.keyspace}")
        self._prepared.clear()

    # ------------------------------------------------------------------ semantic relations
    def put_semantic(self, rows: Iterable[SemanticRelations]) -> int:
        params = [(r.master_id, dict(r.related_masters), r.inference_ts, r.inference_source) for r in rows]
        return self._count_semantic(self._write(
            "put_semantic",
            "INSERT INTO {ks}.master_semantic_relations "
            "(master_id, related_masters, inference_ts, inference_source) VALUES (?, ?, ?, ?)",
            params,
        ))

    def update_semantic(self, rows: Iterable[SemanticRelations]) -> int:
        """One CQL ``UPDATE ... WHERE master_id = ?`` per given row (an upsert in Cassandra)."""
        params = [(dict(r.related_masters), r.inference_ts, r.inference_source, r.master_id) for r in rows]
        n = self._write(
            "update_semantic",
            "UPDATE {ks}.master_semantic_relations SET related_masters = ?, inference_ts = ?, "
            "inference_source = ? WHERE master_id = ?",
            params,
        )
        return self._count_semantic(n)

    def semantic_write_marks(self, master_ids: Sequence[UUID]) -> dict[UUID, int]:
        rows = self._read(
            "semantic_write_marks",
            "SELECT master_id, WRITETIME(inference_source) AS wt FROM {ks}.master_semantic_relations "
            "WHERE master_id IN ?",
            master_ids,
        )
        return {row.master_id: int(row.wt or 0) for row in rows}

    def get_semantic(self, master_ids: Sequence[UUID]) -> dict[UUID, SemanticRelations]:
        rows = self._read(
            "get_semantic",
            "SELECT master_id, related_masters, inference_ts, inference_source "
            "FROM {ks}.master_semantic_relations WHERE master_id IN ?",
            master_ids,
        )
        return {
            row.master_id: SemanticRelations(
                master_id=row.master_id,
                related_masters=dict(row.related_masters or {}),
                inference_ts=_utc(row.inference_ts),
                inference_source=row.inference_source or "",
            )
            for row in rows
        }

    # ------------------------------------------------------------------ category co-views
    def put_coview(self, rows: Iterable[CategoryCoView]) -> int:
        params = [(r.cat_id, dict(r.related_cats)) for r in rows]
        return self._write(
            "put_coview",
            "INSERT INTO {ks}.category_co_view_relations (cat_id, related_cats) VALUES (?, ?)",
            params,
        )

    def get_coview(self, cat_ids: Sequence[str]) -> dict[str, CategoryCoView]:
        rows = self._read(
            "get_coview",
            "SELECT cat_id, related_cats FROM {ks}.category_co_view_relations WHERE cat_id IN ?",
            cat_ids,
        )
        return {row.cat_id: CategoryCoView(row.cat_id, dict(row.related_cats or {})) for row in rows}

    # ------------------------------------------------------------------ master -> pids
    def put_master_pids(self, rows: Iterable[MasterPids]) -> int:
        params = [(r.master_id, list(r.pids), dict(r.metadata)) for r in rows]
        return self._write(
            "put_master_pids",
            "INSERT INTO {ks}.master_to_pids (master_id, pids, metadata) VALUES (?, ?, ?)",
            params,
        )

    def get_master_pids(self, master_ids: Sequence[UUID]) -> dict[UUID, MasterPids]:
        rows = self._read(
            "get_master_pids",
            "SELECT master_id, pids, metadata FROM {ks}.master_to_pids WHERE master_id IN ?",
            master_ids,
        )
        return {
            row.master_id: MasterPids(row.master_id, list(row.pids or []), dict(row.metadata or {})) for row in rows
        }

    def close(self) -> None:
        with self._lock:
            cluster, self._cluster, self._session = self._cluster, None, None
            self._prepared.clear()
        if cluster is not None:
            cluster.shutdown()
