"""The rollup interface and its record, apart from the implementations (so each imports only this).

``RollupStore`` / ``OrderEvent`` are re-exported by :mod:`hotpath.stores.rollups`, where the ordering
and exactly-once contracts are described.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["OrderEvent", "RollupStore", "ALL"]


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One order line: ``qty`` units of a master (through one of its pids) in a category."""

    master_id: str
    cat_id: str
    qty: int
    ts_ms: int
    pid: str | None = None


class RollupStore(abc.ABC):
    @abc.abstractmethod
    def ensure_schema(self) -> None: ...

    @abc.abstractmethod
    def record_orders(self, orders: Iterable[OrderEvent]) -> int:
        """Append order events; returns how many."""

    @abc.abstractmethod
    def record_order_columns(
        self, master_ids: Sequence[str], cat_ids: Sequence[str], qty: np.ndarray, ts_ms: np.ndarray
    ) -> int:
        """Bulk append (columnar), for loaders."""

    @abc.abstractmethod
    def record_order_batch(self, source: str, partition: int, rows: Sequence[tuple[int, str, str, int, int, str]]) -> int:
        """Orders read from event-log partition ``partition`` of ``source`` (a topic), as
        ``(offset, master_id, cat_id, qty, ts_ms, pid)`` in ascending offset order. Rows at an offset
        already recorded for that partition are skipped (idempotent under replays). Returns the
        rows added."""

    @abc.abstractmethod
    def recorded_offset(self, source: str, partition: int) -> int:
        """The offset after the last order :meth:`record_order_batch` recorded for the partition (0: none)."""

    @abc.abstractmethod
    def top_sellers(self, cat_id: str, n: int, *, since_ms: int | None = None) -> list[tuple[str, float]]:
        """Up to ``n`` ``(master_id, quantity)`` of a category; ``cat_id='_all'`` for the whole catalog."""

    @abc.abstractmethod
    def top_sellers_all(self, n: int, *, since_ms: int | None = None) -> dict[str, list[tuple[str, float]]]:
        """``top_sellers`` for every category at once (cache warm-up)."""

    @abc.abstractmethod
    def close(self) -> None: ...


ALL = "_all"
