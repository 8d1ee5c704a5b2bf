"""Nearest neighbours over all masters' embeddings (faiss), and the ``related_masters`` maps.

Embeddings are unit vectors, so inner product is cosine similarity. Catalogs up to
``exact_below`` masters are searched exactly (``IndexFlatIP``); larger ones with an HNSW graph
(``IndexHNSWFlat``, inner-product metric), built in the job. :func:`recall_at_k` measures the
HNSW result against exact search (the benchmark's ``ann_recall_at_10``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hotpath.errors import BadInput

__all__ = ["NeighbourIndex", "related_maps", "recall_at_k", "quantise_score"]


@dataclass
class NeighbourIndex:
    index: object
    exact: bool
    size: int

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        *,
        exact_below: int = 50_000,
        m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 128,
        exact: bool | None = None,
        threads: int | None = None,
    ) -> "NeighbourIndex":
        import faiss

        if vectors.ndim != 2 or vectors.shape[0] == 0:
            raise BadInput(f"need a non-empty [n, d] matrix of embeddings, got shape {vectors.shape}")
        if threads:
            faiss.omp_set_num_threads(int(threads))
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        use_exact = exact if exact is not None else len(x) <= exact_below
        if use_exact:
            index = faiss.IndexFlatIP(x.shape[1])
        else:
            index = faiss.IndexHNSWFlat(x.shape[1], m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = ef_construction
            index.hnsw.efSearch = ef_search
        index.add(x)
        return cls(index=index, exact=use_exact, size=len(x))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores [q, k], rows [q, k]) best first; rows are -1 where fewer than k exist."""
        k = min(int(k), self.size)
        q = np.ascontiguousarray(queries, dtype=np.float32)
        scores, rows = self.index.search(q, k)  # type: ignore[attr-defined]
        return scores, rows


def quantise_score(x: np.ndarray) -> np.ndarray:
    """Cosine scores rounded to multiples of 1/1024 (exact in float32: Cassandra's ``float``)."""
    return np.round(np.asarray(x, dtype=np.float64) * 1024.0) / 1024.0


def related_maps(
    query_rows: np.ndarray,
    scores: np.ndarray,
    rows: np.ndarray,
    ids: Sequence[str],
    *,
    k: int,
    min_score: float = 0.0,
) -> list[dict[str, float]]:
    """One ``{related master: score}`` per query row: its own row and missing (-1) hits dropped,
    at most ``k`` entries, scores at or above ``min_score`` (best first, ties by row)."""
    out: list[dict[str, float]] = []
    q = quantise_score(scores)
    for i, self_row in enumerate(np.asarray(query_rows).tolist()):
        m: dict[str, float] = {}
        for r, s in zip(rows[i].tolist(), q[i].tolist()):
            if r < 0 or r == self_row or s < min_score:
                continue
            m[ids[r]] = float(s)
            if len(m) >= k:
                break
        out.append(m)
    return out


def recall_at_k(approx_rows: np.ndarray, exact_rows: np.ndarray, k: int) -> float:
    """Mean share of the exact top-``k`` that the approximate top-``k`` found."""
    hits = 0
    total = 0
    for a, e in zip(approx_rows[:, :k].tolist(), exact_rows[:, :k].tolist()):
        want = {x for x in e if x >= 0}
        hits += len(want & set(a))
        total += len(want)
    return hits / total if total else 1.0
