"""Stored embeddings: one Parquet file of (master_id, title_hash, embedding) under the data dir.

A master whose title hash is the stored one keeps its stored vector (not re-embedded); a new
master or a changed title is embedded again. The file is replaced atomically (a temp file, then
``os.replace``), so a failed run leaves the previous file as it was.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hotpath.errors import StoreError

__all__ = ["StoredEmbeddings", "title_hash", "load_embeddings", "save_embeddings"]


def title_hash(title: str) -> int:
    """A stable signed 64-bit hash of the embedded text (blake2b)."""
    return int.from_bytes(hashlib.blake2b(title.encode(), digest_size=8).digest(), "little", signed=True)


@dataclass
class StoredEmbeddings:
    ids: list[str]
    hashes: np.ndarray  # int64 [n]
    vectors: np.ndarray  # float32 [n, d]

    @classmethod
    def empty(cls, dim: int) -> "StoredEmbeddings":
        return cls([], np.zeros(0, np.int64), np.zeros((0, dim), np.float32))

    def __len__(self) -> int:
        return len(self.ids)

    def position(self) -> dict[str, int]:
        return {m: i for i, m in enumerate(self.ids)}

    def stale_of(self, ids: Sequence[str], hashes: np.ndarray) -> list[int]:
        """Indices into ``ids`` whose text is new or changed (must be embedded)."""
        pos = self.position()
        out = []
        for i, (m, h) in enumerate(zip(ids, np.asarray(hashes).tolist())):
            j = pos.get(m)
            if j is None or int(self.hashes[j]) != h:
                out.append(i)
        return out


def load_embeddings(path: Path, dim: int) -> StoredEmbeddings:
    if not path.exists():
        return StoredEmbeddings.empty(dim)
    import pyarrow.parquet as pq

    try:
        t = pq.read_table(path)
        ids = t.column("master_id").to_pylist()
        hashes = t.column("title_hash").to_numpy().astype(np.int64)
        emb = t.column("embedding").combine_chunks()
        flat = emb.values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    except (OSError, KeyError, ValueError) as exc:
        raise StoreError(f"cannot read stored embeddings {path}: {exc}") from exc
    vectors = flat.reshape(len(ids), -1) if ids else np.zeros((0, dim), np.float32)
    if vectors.shape[1] != dim:
        raise StoreError(f"stored embeddings {path} are {vectors.shape[1]}-d, the encoder gives {dim}-d",
                         hint="delete the file to embed every master again")  # fmt: skip
    return StoredEmbeddings(ids, hashes, vectors)


def save_embeddings(path: Path, emb: StoredEmbeddings) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    n, d = emb.vectors.shape
    flat = pa.array(np.ascontiguousarray(emb.vectors, dtype=np.float32).ravel())
    table = pa.table({
        "master_id": pa.array(emb.ids, pa.string()),
        "title_hash": pa.array(np.asarray(emb.hashes, np.int64)),
        "embedding": pa.FixedSizeListArray.from_arrays(flat, d),
    })
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            pq.write_table(table, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        raise StoreError(f"cannot write stored embeddings {path}: {exc}") from exc
    return path


def merge(old: StoredEmbeddings, ids: Sequence[str], hashes: np.ndarray, new_idx: Sequence[int],
          new_vectors: np.ndarray) -> StoredEmbeddings:  # fmt: skip
    """The catalog's embeddings in ``ids`` order: stored vectors, with the ``new_idx`` rows replaced."""
    d = new_vectors.shape[1] if len(new_vectors) else old.vectors.shape[1]
    out = np.zeros((len(ids), d), np.float32)
    pos = old.position()
    have = np.array([pos.get(m, -1) for m in ids], dtype=np.int64)
    ok = have >= 0
    if ok.any():
        out[ok] = old.vectors[have[ok]]
    if len(new_idx):
        out[np.asarray(new_idx, dtype=np.int64)] = new_vectors
    return StoredEmbeddings(list(ids), np.asarray(hashes, np.int64), out)
