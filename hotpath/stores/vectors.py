"""The cloud assistant's vector store: per-tenant chunks with unit-length embeddings, KNN by cosine.

Two implementations behind one contract suite (tests/cloud/test_vector_store_contract.py):

==================  ==============================================================
``FileVectorStore``  embedded profile: one folder per tenant (numpy matrix + JSON
                     lines), exact search by one matrix-vector product
``PgVectorStore``    full profile: PostgreSQL 16 + pgvector, one schema per tenant,
                     row-level security keyed on the tenant, an HNSW index
==================  ==============================================================

Isolation is structural: every call names the tenant, which picks the tenant's own folder / schema
(and, in PostgreSQL, the RLS setting); nothing else a caller passes (query text, filters) can name
another tenant. Filters are equality on ``doc_id`` or ``source`` only; any other key is BadInput.
``replace_document`` swaps all of a document's chunks at once (a re-ingest never duplicates).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence

import numpy as np

from hotpath.cloud.models import Chunk, Hit, check_tenant_id
from hotpath.errors import BadInput

__all__ = ["VectorStore", "FILTER_KEYS", "check_filters", "check_vectors", "DIM"]

DIM = 384
FILTER_KEYS = ("doc_id", "source")


def check_filters(filters: Mapping[str, str] | None) -> dict[str, str]:
    if not filters:
        return {}
    if not isinstance(filters, Mapping):
        raise BadInput("filters must be an object of field -> value", field="filters")
    out: dict[str, str] = {}
    for key, value in filters.items():
        if key not in FILTER_KEYS:
            raise BadInput(f"unknown filter {str(key)[:40]!r}: filter on {' or '.join(FILTER_KEYS)}", field="filters")
        if not isinstance(value, str) or len(value) > 300:
            raise BadInput(f"filter {key!r} takes a string of at most 300 characters", field="filters")
        out[key] = value
    return out


def check_vectors(vectors: np.ndarray, n: int) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2 or v.shape != (n, DIM):
        raise BadInput(f"expected {n} vectors of {DIM} dimensions, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise BadInput("vectors hold NaN or infinity")
    return v


class VectorStore(abc.ABC):
    """Chunks of each tenant, searchable by a unit query vector."""

    name: str = "vectors"

    @abc.abstractmethod
    def ensure_tenant(self, tenant_id: str) -> None:
        """Create the tenant's space (idempotent)."""

    @abc.abstractmethod
    def drop_tenant(self, tenant_id: str) -> None:
        """Remove the tenant's space and every chunk in it."""

    @abc.abstractmethod
    def replace_document(self, tenant_id: str, doc_id: str, chunks: Sequence[Chunk], vectors: np.ndarray) -> int:
        """Make ``chunks`` the document's only chunks; returns how many the document had before."""

    @abc.abstractmethod
    def delete_document(self, tenant_id: str, doc_id: str) -> int: ...

    @abc.abstractmethod
    def search(self, tenant_id: str, vector: np.ndarray, k: int,
               filters: Mapping[str, str] | None = None) -> list[Hit]:
        """The ``k`` nearest chunks of the tenant, best first (score = cosine similarity)."""

    @abc.abstractmethod
    def count(self, tenant_id: str) -> int: ...

    @abc.abstractmethod
    def documents(self, tenant_id: str) -> dict[str, int]:
        """doc_id -> number of chunks."""

    def bulk_load(self, tenant_id: str, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Add many chunks of many documents at once (benchmarks); ids must be new."""
        by_doc: dict[str, list[int]] = {}
        for i, c in enumerate(chunks):
            by_doc.setdefault(c.doc_id, []).append(i)
        for doc_id, idx in by_doc.items():
            self.replace_document(tenant_id, doc_id, [chunks[i] for i in idx], vectors[idx])

    def close(self) -> None:
        pass

    @staticmethod
    def _tenant(tenant_id: str) -> str:
        return check_tenant_id(tenant_id)

    @staticmethod
    def _query(vector: np.ndarray, k: int) -> np.ndarray:
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        if q.shape != (DIM,) or not np.all(np.isfinite(q)):
            raise BadInput(f"the query vector must be {DIM} finite numbers")
        if not 1 <= int(k) <= 100:
            raise BadInput("k must be within 1..100")
        return q
