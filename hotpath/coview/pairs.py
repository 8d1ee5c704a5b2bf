"""Counting ordered key pairs of many windows at once (numpy): the hot loop of the co-view operator.

A window is a *basket*: the distinct keys one session key viewed in it. Every ordered pair of
distinct keys of a basket counts 1. Counts are integers, so the order baskets arrive in does not
change the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from itertools import chain

import numpy as np

__all__ = ["count_pairs", "KeyIds"]

_MIN_BINS, _MAX_BINS = 65_536, 1 << 23
""":func:`count_pairs` counts with a histogram instead of sorting when the pair space has at most
``_MIN_BINS`` cells, or at most 5 per pair and ``_MAX_BINS`` (64 MB of counts): a cell costs about
a fifth of what sorting costs per pair."""


def count_pairs(
    g: np.ndarray, k: np.ndarray, nk: int, first: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of distinct keys within each group (``g`` contiguous, keys distinct per group):
    ``(a, b, count)`` sorted by ``a`` then ``b``. With ``first`` (a bool per key id), only the pairs
    whose first key has ``first[a]`` set (the others are never generated)."""
    z = np.zeros(0, dtype=np.int64)
    if len(g) < 2:
        return z, z, z
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    sizes = np.diff(np.r_[starts, len(g)])
    k = k.astype(np.int64, copy=False)
    if first is not None:
        firsts = np.flatnonzero(first[:nk])
        dense = np.cumsum(first[:nk], dtype=np.int64) - 1
    # Groups of one size at a time, as an (n, s) matrix of keys: each row's pairs are its keys
    # against the other s-1 (``_others``), no per-pair index arithmetic.
    parts = []
    for s in np.unique(sizes).tolist():
        if s < 2:
            continue  # single-key groups make no pairs
        keys = k[starts[sizes == s][:, None] + np.arange(s)]
        if first is None:
            parts.append(((keys * nk)[:, :, None] + keys[:, _others(s)]).ravel())
            continue
        r, i = np.nonzero(first[keys])
        if len(r):
            parts.append(((dense[keys[r, i]] * nk)[:, None] + keys[r[:, None], _others(s)[i]]).ravel())
    if not parts:
        return z, z, z
    code = np.concatenate(parts) if len(parts) > 1 else parts[0]
    # Codes over (first key, second key); with ``first``, first keys renumbered densely over the
    # keys it selects (half the space with two shards), in the same order.
    if first is not None:
        space = len(firsts) * nk
    else:
        firsts, space = None, nk * nk
    if space <= max(_MIN_BINS, min(5 * len(code), _MAX_BINS)):  # dense enough for a histogram (no sort)
        counts = np.bincount(code, minlength=space)
        uniq = np.flatnonzero(counts)
        counts = counts[uniq]
    else:  # sorted: as 32-bit ints where they fit (twice as fast)
        code = np.sort(code.astype(np.int32) if space < 1 << 31 else code)
        bounds = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])
        uniq, counts = code[bounds].astype(np.int64), np.diff(np.r_[bounds, len(code)])
    first_key = uniq // nk
    return (first_key if firsts is None else firsts[first_key]), uniq % nk, counts


@lru_cache(maxsize=128)
def _others(s: int) -> np.ndarray:
    """``(s, s-1)``: row ``i`` lists the columns ``0..s-1`` but ``i``."""
    cols = np.arange(s)
    return np.array([np.delete(cols, i) for i in range(s)], dtype=np.intp).reshape(s, s - 1)


class KeyIds:
    """Strings to dense ints, for one batch of baskets (ids never leave the batch)."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.names: list[str] = []

    def flatten(self, baskets: Sequence[tuple[str, ...]]) -> tuple[np.ndarray, np.ndarray]:
        """``(key id of every key of every basket, basket sizes)`` (int32); new keys get ids in order."""
        ids, names = self.ids, self.names
        flat = list(chain.from_iterable(baskets))
        for key in dict.fromkeys(flat):
            if key not in ids:
                ids[key] = len(names)
                names.append(key)
        k = np.fromiter(map(ids.__getitem__, flat), dtype=np.int32, count=len(flat))
        sizes = np.fromiter(map(len, baskets), dtype=np.int32, count=len(baskets))
        return k, sizes

    def arrays(self, baskets: Sequence[tuple[str, ...]]) -> tuple[np.ndarray, np.ndarray]:
        """``(group, key id)`` of every key of every basket; new keys get ids in order of first sight."""
        k, sizes = self.flatten(baskets)
        return np.repeat(np.arange(len(baskets), dtype=np.int64), sizes), k.astype(np.int64)
