"""Paraphrase noise for distillation: noisy copies of the training lines, labelled by the teacher.

The student sees only the training split's words; the MiniLM teacher knows many more. To carry
that knowledge over, every training line gets ``copies`` noisy variants:

- a word is replaced, with probability ``p_substitute``, by one of its nearest neighbours in
  MiniLM's word-piece embedding table (whole lower-case words only, cosine similarity; e.g.
  ``cancel`` -> ``terminate``, ``recommend`` -> ``suggest``);
- a word is dropped with probability ``p_drop``; two neighbouring words swap with ``p_swap``.

The variants carry no label of their own: :func:`hotpath.intent.train.train_model` embeds them with
the teacher (cosine target) and labels them with the teacher's soft intent probabilities (a
linear head fitted on the teacher's embeddings of the labelled training lines, :func:`fit_head`).
Only the training split is used; nothing here looks at validation or test text.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable

import numpy as np

__all__ = ["neighbour_table", "paraphrase_noise", "fit_head", "head_probs", "common_words"]

_WORD = re.compile(r"[a-z]{2,}")


def neighbour_table(vocab: list[str], embeddings: np.ndarray, words: Iterable[str], k: int = 8,
                    min_similarity: float = 0.45) -> dict[str, list[str]]:
    """For each of ``words`` that is a whole-word vocabulary entry: its ``k`` nearest whole-word
    entries by cosine similarity of the (static) word-piece embeddings, at least ``min_similarity``."""
    index = {w: i for i, w in enumerate(vocab)}
    ok = np.array([bool(_WORD.fullmatch(w)) for w in vocab])
    cand = np.flatnonzero(ok)
    table = embeddings[cand].astype(np.float32)
    table /= np.maximum(np.linalg.norm(table, axis=1, keepdims=True), 1e-9)
    wanted = sorted({w for w in words if w in index and ok[index[w]]})
    out: dict[str, list[str]] = {}
    for start in range(0, len(wanted), 512):
        chunk = wanted[start:start + 512]
        q = embeddings[[index[w] for w in chunk]].astype(np.float32)
        q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-9)
        sims = q @ table.T
        for row, w in zip(sims, chunk):
            top = np.argpartition(-row, k + 1)[:k + 1]
            top = top[np.argsort(-row[top])]
            near = [vocab[cand[j]] for j in top if vocab[cand[j]] != w and row[j] >= min_similarity][:k]
            if near:
                out[w] = near
    return out


def common_words(vocab: list[str], n: int = 8000) -> list[str]:
    """The first ``n`` whole lower-case words of a WordPiece vocabulary (roughly the most frequent)."""
    return [w for w in vocab if _WORD.fullmatch(w)][:n]


def paraphrase_noise(texts: list[str], neighbours: dict[str, list[str]], copies: int = 1, seed: int = 0,
                     p_substitute: float = 0.3, p_drop: float = 0.1, p_swap: float = 0.1,
                     p_random: float = 0.0, random_words: list[str] | None = None) -> list[str]:
    """``copies`` noisy variants of every text (variants equal to their source are retried, then kept).

    With ``p_random`` a word is replaced by a word drawn from ``random_words`` instead (any
    vocabulary word: the teacher's soft label says what the sentence means then)."""
    rng = random.Random(seed)
    pool = random_words or []
    out: list[str] = []

    def swap(w: str) -> str:
        r = rng.random()
        if pool and r < p_random:
            return rng.choice(pool)
        if w in neighbours and r < p_random + p_substitute:
            return rng.choice(neighbours[w])
        return w

    for text in texts:
        words = text.split()
        for _ in range(copies):
            for _attempt in range(4):
                new = [swap(w) for w in words]
                if len(new) > 2:
                    new = [w for w in new if rng.random() >= p_drop] or new
                if len(new) > 1 and rng.random() < p_swap:
                    i = rng.randrange(len(new) - 1)
                    new[i], new[i + 1] = new[i + 1], new[i]
                variant = " ".join(new)
                if variant != text:
                    break
            out.append(variant)
    return out


def fit_head(x: np.ndarray, y: np.ndarray, n_labels: int, l2: float = 1e-3, scale: float = 10.0,
             max_iter: int = 300) -> np.ndarray:
    """Multinomial logistic regression on (normalised) teacher embeddings: W [d + 1, n_labels]
    (L-BFGS; ``scale`` multiplies the unit-length inputs so the softmax can be sharp)."""
    from scipy.optimize import minimize
    from scipy.special import logsumexp

    n, d = x.shape
    xb = np.hstack([x.astype(np.float64) * scale, np.ones((n, 1))])
    onehot = np.zeros((n, n_labels))
    onehot[np.arange(n), y] = 1.0

    def f(w: np.ndarray) -> tuple[float, np.ndarray]:
        wm = w.reshape(d + 1, n_labels)
        z = xb @ wm
        lse = logsumexp(z, axis=1)
        loss = float((lse - (z * onehot).sum(1)).mean() + 0.5 * l2 * (wm[:-1] ** 2).sum())
        g = xb.T @ (np.exp(z - lse[:, None]) - onehot) / n
        g[:-1] += l2 * wm[:-1]
        return loss, g.ravel()

    res = minimize(f, np.zeros((d + 1) * n_labels), jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    return res.x.reshape(d + 1, n_labels).astype(np.float32)


def head_probs(w: np.ndarray, x: np.ndarray, scale: float = 10.0) -> np.ndarray:
    z = np.hstack([x.astype(np.float64) * scale, np.ones((len(x), 1))]) @ w
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
