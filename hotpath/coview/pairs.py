"""Counting ordered key pairs of many windows at once (numpy): the hot loop of the co-view operator.

A window is a *basket*: the distinct keys one session key viewed in it. Every ordered pair of
distinct keys of a basket counts 1. Counts are integers, so the order baskets arrive in does not
change the result.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["count_pairs", "KeyIds"]


def count_pairs(g: np.ndarray, k: np.ndarray, nk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of distinct keys within each group (``g`` contiguous, keys distinct per group):
    ``(a, b, count)`` sorted by ``a`` then ``b``."""
    z = np.zeros(0, dtype=np.int64)
    if len(g) < 2:
        return z, z, z
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    sizes = np.diff(np.r_[starts, len(g)])
    multi = np.repeat(sizes > 1, sizes)
    if not multi.all():  # single-key groups make no pairs
        g, k = g[multi], k[multi]
        if len(g) == 0:
            return z, z, z
        starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
        sizes = np.diff(np.r_[starts, len(g)])
    size_of = np.repeat(sizes, sizes)
    start_of = np.repeat(starts, sizes)
    a_idx = np.repeat(np.arange(len(g)), size_of)
    b_idx = np.arange(len(a_idx)) - np.repeat(np.cumsum(size_of) - size_of - start_of, size_of)
    mask = a_idx != b_idx
    code = k[a_idx[mask]] * nk + k[b_idx[mask]]
    if nk * nk <= 4_000_000:
        counts = np.bincount(code, minlength=nk * nk)
        uniq = np.flatnonzero(counts)
        counts = counts[uniq]
    else:
        uniq, counts = np.unique(code, return_counts=True)
    return uniq // nk, uniq % nk, counts


class KeyIds:
    """Strings to dense ints, for one batch of baskets (ids never leave the batch)."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.names: list[str] = []

    def arrays(self, baskets: Sequence[tuple[str, ...]]) -> tuple[np.ndarray, np.ndarray]:
        ids, names = self.ids, self.names
        gs: list[int] = []
        ks: list[int] = []
        for i, basket in enumerate(baskets):
            for key in basket:
                j = ids.get(key)
                if j is None:
                    j = ids[key] = len(names)
                    names.append(key)
                ks.append(j)
            gs.extend([i] * len(basket))
        return np.array(gs, dtype=np.int64), np.array(ks, dtype=np.int64)
