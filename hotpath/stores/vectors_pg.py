"""PostgreSQL + pgvector behind :class:`~hotpath.stores.vectors.VectorStore`: a schema per tenant, RLS.

Layout of tenant ``acme``::

    schema "t_acme"
      table chunks(chunk_id text PK, tenant_id text, doc_id, ordinal, title, body, source, meta jsonb,
                   embedding vector(384))
      index hnsw (embedding vector_cosine_ops)   -- m / ef_construction from settings
      index (doc_id)
      ROW LEVEL SECURITY (forced): tenant_id = current_setting('hotpath.tenant')

Two connections: the *admin* (superuser) runs DDL only (create/drop a tenant's schema, policy and
grants); every read and write goes through the *app* role, which is not a superuser and does not
bypass RLS. Each data statement runs in a transaction that first sets ``hotpath.tenant`` (local to
the transaction) to the tenant whose schema it names, so a statement that reached another tenant's
table would still see none of its rows. Filters and query text are only ever bound parameters.

psycopg errors are mapped to :class:`StoreError` / :class:`ServiceUnavailable`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence

import numpy as np

from hotpath.cloud.models import Chunk, Hit
from hotpath.cloud.settings import PostgresSettings
from hotpath.errors import ServiceUnavailable, StoreError
from hotpath.stores.vectors import DIM, VectorStore, check_filters, check_vectors

__all__ = ["PgVectorStore", "schema_name"]


def schema_name(tenant_id: str) -> str:
    return f"t_{tenant_id}"


def _vec(v: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in np.asarray(v, np.float32).tolist()) + "]"


class PgVectorStore(VectorStore):
    name = "postgres"

    def __init__(self, pg: PostgresSettings) -> None:
        self.pg = pg
        self._local = threading.local()
        self._admin_conn = None
        self._admin_lock = threading.Lock()
        self._known: set[str] = set()

    # ------------------------------------------------------------------ connections
    def _open(self, user: str):  # noqa: ANN202
        import psycopg

        try:
            return psycopg.connect(host=self.pg.host, port=self.pg.port, dbname=self.pg.database, user=user,
                                   connect_timeout=3, autocommit=True)
        except psycopg.OperationalError as exc:
            raise ServiceUnavailable(
                f"PostgreSQL at {self.pg.host}:{self.pg.port} is unreachable: {str(exc).strip()[:200]}",
                hint="`hotpath services up --profile full` starts it",
            ) from exc

    def _app(self):  # noqa: ANN202
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._local.conn = self._open(self.pg.app_user)
        return conn

    def _admin(self):  # noqa: ANN202
        if self._admin_conn is None or self._admin_conn.closed:
            self._admin_conn = self._open(self.pg.admin_user)
        return self._admin_conn

    def _run(self, fn, *, admin: bool = False):  # noqa: ANN001, ANN202
        """Run ``fn(conn)``, mapping psycopg's errors; a broken app connection is reopened once."""
        import psycopg

        for attempt in (0, 1):
            try:
                if admin:
                    with self._admin_lock:
                        return fn(self._admin())
                return fn(self._app())
            except psycopg.OperationalError as exc:
                if attempt == 0:
                    self._local.conn = None
                    self._admin_conn = None
                    continue
                raise ServiceUnavailable(f"PostgreSQL failed: {str(exc).strip()[:200]}") from exc
            except psycopg.Error as exc:
                raise StoreError(f"PostgreSQL: {type(exc).__name__}: {str(exc).strip()[:200]}") from exc
        raise AssertionError("unreachable")

    @staticmethod
    def _scope(conn, tenant_id: str) -> None:  # noqa: ANN001
        """Inside a transaction: RLS sees ``tenant_id`` (set_config(..., true) is SET LOCAL)."""
        conn.execute("SELECT set_config('hotpath.tenant', %s, true)", (tenant_id,))

    def _table(self, tenant_id: str):  # noqa: ANN202
        from psycopg import sql

        return sql.Identifier(schema_name(self._tenant(tenant_id)), "chunks")

    # ------------------------------------------------------------------ DDL
    def ensure_tenant(self, tenant_id: str) -> None:
        tenant_id = self._tenant(tenant_id)
        if tenant_id in self._known:
            return
        from psycopg import sql

        schema = sql.Identifier(schema_name(tenant_id))
        table = self._table(tenant_id)
        app = sql.Identifier(self.pg.app_user)
        lit = sql.Literal(tenant_id)

        def ddl(conn) -> None:  # noqa: ANN001
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('hotpath-tenant-ddl'))")
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
                conn.execute(sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {t} ("
                    " chunk_id text PRIMARY KEY,"
                    " tenant_id text NOT NULL DEFAULT current_setting('hotpath.tenant') CHECK (tenant_id = {lit}),"
                    " doc_id text NOT NULL, ordinal int NOT NULL, title text NOT NULL, body text NOT NULL,"
                    " source text NOT NULL DEFAULT '', meta jsonb NOT NULL DEFAULT '{{}}',"
                    " embedding vector({dim}) NOT NULL)").format(t=table, lit=lit, dim=sql.Literal(DIM)))
                conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS chunks_doc ON {} (doc_id)").format(table))
                conn.execute(sql.SQL(
                    "CREATE INDEX IF NOT EXISTS chunks_hnsw ON {} USING hnsw (embedding vector_cosine_ops)"
                    " WITH (m = {}, ef_construction = {})").format(
                        table, sql.Literal(self.pg.hnsw_m), sql.Literal(self.pg.hnsw_ef_construction)))
                conn.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(table))
                conn.execute(sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(table))
                conn.execute(sql.SQL("DROP POLICY IF EXISTS tenant_only ON {}").format(table))
                conn.execute(sql.SQL(
                    "CREATE POLICY tenant_only ON {} USING (tenant_id = current_setting('hotpath.tenant', true))"
                    " WITH CHECK (tenant_id = current_setting('hotpath.tenant', true))").format(table))
                conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, app))
                conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(table, app))

        self._run(ddl, admin=True)
        self._known.add(tenant_id)

    def drop_tenant(self, tenant_id: str) -> None:
        from psycopg import sql

        tenant_id = self._tenant(tenant_id)
        self._run(lambda c: c.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
            sql.Identifier(schema_name(tenant_id)))), admin=True)
        self._known.discard(tenant_id)

    def _exists(self, tenant_id: str) -> bool:
        if tenant_id in self._known:
            return True
        row = self._run(lambda c: c.execute("SELECT to_regclass(%s)", (f'"{schema_name(tenant_id)}".chunks',)).fetchone())
        if row and row[0]:
            self._known.add(tenant_id)
            return True
        return False

    # ------------------------------------------------------------------ data
    def replace_document(self, tenant_id: str, doc_id: str, chunks: Sequence[Chunk], vectors: np.ndarray) -> int:
        from psycopg import sql

        vectors = check_vectors(vectors, len(chunks))
        self.ensure_tenant(tenant_id)
        table = self._table(tenant_id)

        def write(conn) -> int:  # noqa: ANN001
            with conn.transaction():
                self._scope(conn, tenant_id)
                cur = conn.execute(sql.SQL("DELETE FROM {} WHERE doc_id = %s").format(table), (doc_id,))
                before = cur.rowcount
                with conn.cursor() as c:
                    c.executemany(
                        sql.SQL("INSERT INTO {} (chunk_id, tenant_id, doc_id, ordinal, title, body, source, meta,"
                                " embedding) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::vector)").format(table),
                        [(ch.chunk_id, tenant_id, ch.doc_id, ch.ordinal, ch.title, ch.text, ch.source,
                          json.dumps(ch.meta), _vec(v)) for ch, v in zip(chunks, vectors)],
                    )
            return before

        return self._run(write)

    def bulk_load(self, tenant_id: str, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """COPY the rows in (as the admin), the HNSW index dropped and rebuilt after (much faster than inserts)."""
        from psycopg import sql

        vectors = check_vectors(vectors, len(chunks))
        self.ensure_tenant(tenant_id)
        table = self._table(tenant_id)
        schema = sql.Identifier(schema_name(tenant_id))
        self._run(lambda c: c.execute(sql.SQL("DROP INDEX IF EXISTS {}.chunks_hnsw").format(schema)), admin=True)

        def copy(conn) -> None:  # noqa: ANN001
            # COPY is refused under row-level security: the admin loads, and the table's CHECK
            # (tenant_id = this schema's tenant) still holds every row to its tenant.
            with conn.transaction():
                with conn.cursor() as cur:
                    with cur.copy(sql.SQL("COPY {} (chunk_id, tenant_id, doc_id, ordinal, title, body, source, meta,"
                                          " embedding) FROM STDIN").format(table)) as cp:
                        for ch, v in zip(chunks, vectors):
                            cp.write_row((ch.chunk_id, tenant_id, ch.doc_id, ch.ordinal, ch.title, ch.text,
                                          ch.source, json.dumps(ch.meta), _vec(v)))

        self._run(copy, admin=True)
        self._run(lambda c: c.execute(sql.SQL(
            "CREATE INDEX IF NOT EXISTS chunks_hnsw ON {} USING hnsw (embedding vector_cosine_ops)"
            " WITH (m = {}, ef_construction = {})").format(
                table, sql.Literal(self.pg.hnsw_m), sql.Literal(self.pg.hnsw_ef_construction))), admin=True)

    def delete_document(self, tenant_id: str, doc_id: str) -> int:
        from psycopg import sql

        if not self._exists(self._tenant(tenant_id)):
            return 0
        table = self._table(tenant_id)

        def delete(conn) -> int:  # noqa: ANN001
            with conn.transaction():
                self._scope(conn, tenant_id)
                return conn.execute(sql.SQL("DELETE FROM {} WHERE doc_id = %s").format(table), (doc_id,)).rowcount

        return self._run(delete)

    def search(self, tenant_id: str, vector: np.ndarray, k: int,
               filters: Mapping[str, str] | None = None) -> list[Hit]:
        from psycopg import sql

        q = _vec(self._query(vector, k))
        f = check_filters(filters)
        if not self._exists(self._tenant(tenant_id)):
            return []
        where = sql.SQL("")
        params: list[object] = [q]
        if f:
            where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(key)) for key in f)
            params.extend(f.values())
        params.extend([q, int(k)])
        stmt = sql.SQL(
            "SELECT chunk_id, doc_id, ordinal, title, body, source, meta, 1 - (embedding <=> %s::vector)"
            " FROM {}{} ORDER BY embedding <=> %s::vector LIMIT %s").format(self._table(tenant_id), where)

        def query(conn) -> list:  # noqa: ANN001
            with conn.transaction():
                conn.execute("SELECT set_config('hotpath.tenant', %s, true), set_config('hnsw.ef_search', %s, true)",
                             (tenant_id, str(max(self.pg.hnsw_ef_search, int(k)))))
                return conn.execute(stmt, params).fetchall()

        rows = self._run(query)
        return [Hit(Chunk(r[0], r[1], r[2], r[3], r[4], r[5], r[6] or {}), float(r[7]), tenant_id) for r in rows]

    def count(self, tenant_id: str) -> int:
        from psycopg import sql

        if not self._exists(self._tenant(tenant_id)):
            return 0

        def cnt(conn) -> int:  # noqa: ANN001
            with conn.transaction():
                self._scope(conn, tenant_id)
                return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(self._table(tenant_id))).fetchone()[0]

        return int(self._run(cnt))

    def documents(self, tenant_id: str) -> dict[str, int]:
        from psycopg import sql

        if not self._exists(self._tenant(tenant_id)):
            return {}

        def docs(conn) -> dict[str, int]:  # noqa: ANN001
            with conn.transaction():
                self._scope(conn, tenant_id)
                rows = conn.execute(sql.SQL("SELECT doc_id, count(*) FROM {} GROUP BY doc_id").format(
                    self._table(tenant_id))).fetchall()
            return {r[0]: int(r[1]) for r in rows}

        return self._run(docs)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        if self._admin_conn is not None:
            self._admin_conn.close()
            self._admin_conn = None
