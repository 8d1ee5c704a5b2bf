"""One contract over both vector stores: the numpy file store and PostgreSQL + pgvector (real server)."""

from __future__ import annotations

import numpy as np
import pytest

from hotpath.cloud.models import Chunk
from hotpath.errors import BadInput

SQLISH = ["' OR '1'='1", "x'; DROP TABLE chunks; --", "\" OR tenant_id <> ''", "%", "*"]


def _unit(rng, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 384)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _chunks(doc: str, n: int, source: str = "") -> list[Chunk]:
    return [Chunk(f"{doc}#{i}", doc, i, f"{doc} title", f"{doc} text {i}", source, {"k": "v"}) for i in range(n)]


@pytest.fixture(params=["file", pytest.param("postgres", marks=pytest.mark.services)])
def store(request, tmp_path):
    if request.param == "file":
        from hotpath.stores.vectors_file import FileVectorStore

        s = FileVectorStore(tmp_path / "vectors")
        yield s
        s.close()
    else:
        yield request.getfixturevalue("pg_store")


@pytest.fixture
def tenants(store, uniq):
    a, b = f"{uniq}a", f"{uniq}b"
    for t in (a, b):
        store.ensure_tenant(t)
    yield a, b
    for t in (a, b):
        store.drop_tenant(t)


def test_search_returns_nearest_first_with_cosine_scores(store, tenants) -> None:
    a, _ = tenants
    rng = np.random.default_rng(1)
    vecs = _unit(rng, 30)
    store.replace_document(a, "doc1", _chunks("doc1", 30), vecs)
    hits = store.search(a, vecs[7], 3)
    assert hits[0].chunk.chunk_id == "doc1#7"
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert hits[0].chunk.text == "doc1 text 7" and hits[0].chunk.meta == {"k": "v"}
    assert hits[0].score >= hits[1].score >= hits[2].score
    assert all(h.tenant_id == a for h in hits)
    brute = np.argsort(-(vecs @ vecs[7]))[:3]
    assert [h.chunk.ordinal for h in hits] == list(brute)


def test_reingest_replaces_a_document_without_duplicates(store, tenants) -> None:
    a, _ = tenants
    rng = np.random.default_rng(2)
    assert store.replace_document(a, "doc1", _chunks("doc1", 5), _unit(rng, 5)) == 0
    store.replace_document(a, "doc2", _chunks("doc2", 4), _unit(rng, 4))
    assert store.replace_document(a, "doc1", _chunks("doc1", 3), _unit(rng, 3)) == 5
    assert store.count(a) == 7
    assert store.documents(a) == {"doc1": 3, "doc2": 4}
    assert store.delete_document(a, "doc2") == 4
    assert store.documents(a) == {"doc1": 3}


def test_filters_are_equality_on_known_fields_only(store, tenants) -> None:
    a, _ = tenants
    rng = np.random.default_rng(3)
    store.replace_document(a, "doc1", _chunks("doc1", 5, "one.md"), _unit(rng, 5))
    store.replace_document(a, "doc2", _chunks("doc2", 5, "two.md"), _unit(rng, 5))
    q = _unit(rng, 1)[0]
    assert {h.chunk.doc_id for h in store.search(a, q, 10, {"doc_id": "doc2"})} == {"doc2"}
    assert {h.chunk.source for h in store.search(a, q, 10, {"source": "one.md"})} == {"one.md"}
    for bad in ({"tenant_id": "x"}, {"doc_id": 3}, {"1=1 OR doc_id": "doc1"}):
        with pytest.raises(BadInput):
            store.search(a, q, 3, bad)


def test_tenant_a_never_sees_tenant_b(store, tenants) -> None:
    a, b = tenants
    rng = np.random.default_rng(4)
    vb = _unit(rng, 10)
    store.replace_document(b, "secret", _chunks("secret", 10), vb)
    store.replace_document(a, "mine", _chunks("mine", 2), _unit(rng, 2))
    # B's own vectors as queries, every filter trick, SQL-ish values: only A's chunks come back
    for v in vb:
        assert {h.chunk.doc_id for h in store.search(a, v, 10)} == {"mine"}
    for value in SQLISH + ["secret"]:
        for key in ("doc_id", "source"):
            assert all(h.chunk.doc_id == "mine" for h in store.search(a, vb[0], 10, {key: value}))
    for bad_tenant in (b.upper(), f"{a}' OR '1'='1", "../" + b, f"{a};{b}"):
        with pytest.raises(BadInput):
            store.search(bad_tenant, vb[0], 3)
    assert store.count(b) == 10
    store.drop_tenant(b)
    assert store.search(b, vb[0], 3) == []


def test_bad_vectors_are_refused(store, tenants) -> None:
    a, _ = tenants
    with pytest.raises(BadInput):
        store.replace_document(a, "d", _chunks("d", 2), np.zeros((2, 10), np.float32))
    with pytest.raises(BadInput):
        store.search(a, np.full(384, np.nan, np.float32), 3)
    with pytest.raises(BadInput):
        store.search(a, np.ones(384, np.float32), 0)


@pytest.mark.services
def test_postgres_row_level_security_hides_other_tenants_rows(pg_store, settings, uniq) -> None:
    """Even a statement that names B's table sees none of B's rows under A's tenant setting."""
    import psycopg
    from psycopg import sql

    from hotpath.stores.vectors_pg import schema_name

    a, b = f"{uniq}a", f"{uniq}b"
    rng = np.random.default_rng(5)
    try:
        pg_store.replace_document(b, "secret", _chunks("secret", 3), _unit(rng, 3))
        pg_store.ensure_tenant(a)
        pg = settings.cloud.postgres
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            assert not conn.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone()[0]
            table = sql.Identifier(schema_name(b), "chunks")
            with conn.transaction():
                conn.execute("SELECT set_config('hotpath.tenant', %s, true)", (a,))
                assert conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()[0] == 0
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(sql.SQL("INSERT INTO {} (chunk_id, tenant_id, doc_id, ordinal, title, body, embedding)"
                                         " VALUES ('x', %s, 'x', 0, '', '', %s::vector)").format(table),
                                 (b, "[" + ",".join(["0"] * 384) + "]"))
            assert conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()[0] == 0  # no setting
            with conn.transaction():
                conn.execute("SELECT set_config('hotpath.tenant', %s, true)", (b,))
                assert conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()[0] == 3
            idx = conn.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND indexname = 'chunks_hnsw'",
                               (schema_name(b),)).fetchone()
            assert idx and "hnsw" in idx[0] and "vector_cosine_ops" in idx[0]
    finally:
        pg_store.drop_tenant(a)
        pg_store.drop_tenant(b)
