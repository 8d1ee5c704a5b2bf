"""The small storage interfaces the products need, and the records that cross them.

Two interfaces, each with two implementations behind one contract test suite (the third, the
asynchronous ``EventLog``, is :mod:`hotpath.streams.base`):

=================  ==========================  ==========================
interface          embedded profile            full profile
=================  ==========================  ==========================
HotCache           Redis  (also: InMemory)     Redis
DimensionStore     SQLite                      Cassandra
=================  ==========================  ==========================

Both are synchronous (cheap calls, used from domain code, threads and actors alike); this module
imports no client library, so the domain packages may import it (an interface module). Adapters map
their client's exceptions to :class:`hotpath.errors.StoreError` / ``StreamError`` /
``ServiceUnavailable``; nothing foreign leaks through.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

__all__ = [
    "SemanticRelations",
    "CategoryCoView",
    "MasterPids",
    "Subscription",
    "HotCache",
    "DimensionStore",
]


# --------------------------------------------------------------------------- dimension records
@dataclass(frozen=True, slots=True)
class SemanticRelations:
    """A row of ``master_semantic_relations``: a master's related masters from the daily batch."""

    master_id: UUID
    related_masters: Mapping[UUID, float]
    """Related master -> similarity score (frozen map in CQL)."""
    inference_ts: datetime
    """When the batch computed this row (UTC, timezone-aware)."""
    inference_source: str
    """Which job produced it, e.g. ``daily-batch-v3``."""


@dataclass(frozen=True, slots=True)
class CategoryCoView:
    """A row of ``category_co_view_relations``: categories co-viewed with ``cat_id``."""

    cat_id: str
    related_cats: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class MasterPids:
    """A row of ``master_to_pids``: a master's seller pids and their metadata (JSON text)."""

    master_id: UUID
    pids: Sequence[UUID]
    metadata: Mapping[UUID, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- interfaces
class Subscription(abc.ABC):
    """A live pub/sub subscription; ``close()`` stops delivery."""

    @abc.abstractmethod
    def close(self) -> None: ...


class HotCache(abc.ABC):
    """Hot, volatile serving data: sorted sets, hashes, strings with TTLs, and pub/sub.

    Keys and members are ``str``. Sorted-set reads return ``(member, score)`` pairs ordered by
    score descending, ties by member ascending.
    """

    # strings / keys
    @abc.abstractmethod
    def ping(self) -> bool: ...

    @abc.abstractmethod
    def get(self, key: str) -> str | None: ...

    @abc.abstractmethod
    def set(self, key: str, value: str, *, ttl_s: float | None = None) -> None: ...

    @abc.abstractmethod
    def delete(self, *keys: str) -> int:
        """Delete keys; returns how many existed."""

    @abc.abstractmethod
    def expire(self, key: str, ttl_s: float) -> bool: ...

    @abc.abstractmethod
    def ttl(self, key: str) -> float | None:
        """Seconds left, ``None`` when the key has no TTL or does not exist."""

    @abc.abstractmethod
    def scan(self, prefix: str) -> Iterable[str]:
        """Every live key starting with ``prefix``."""

    # sorted sets
    @abc.abstractmethod
    def zadd(self, key: str, members: Mapping[str, float], *, ttl_s: float | None = None) -> None:
        """Upsert members' scores; sets the TTL when given."""

    @abc.abstractmethod
    def zreplace(self, key: str, members: Mapping[str, float], *, ttl_s: float | None = None) -> None:
        """Atomically make the set equal to ``members`` (empty mapping deletes the key). Idempotent."""

    def zreplace_many(self, items: Mapping[str, Mapping[str, float]], *, ttl_s: float | None = None) -> None:
        """``zreplace`` for many keys (each key atomic; one round trip where the backend can). Idempotent."""
        for key, members in items.items():
            self.zreplace(key, members, ttl_s=ttl_s)

    @abc.abstractmethod
    def ztop(self, key: str, n: int) -> list[tuple[str, float]]:
        """Up to ``n`` highest-scored members."""

    @abc.abstractmethod
    def ztop_many(self, keys: Sequence[str], n: int) -> list[list[tuple[str, float]]]:
        """``ztop`` for many keys in one round trip; result order matches ``keys``."""

    @abc.abstractmethod
    def zprune_below(self, key: str, min_score: float) -> int:
        """Remove members scored below ``min_score``; returns how many went."""

    @abc.abstractmethod
    def zrem(self, key: str, members: Sequence[str]) -> int:
        """Remove these members (absent ones are ignored); returns how many went."""

    # hashes
    @abc.abstractmethod
    def hset(self, key: str, mapping: Mapping[str, str], *, ttl_s: float | None = None) -> None: ...

    @abc.abstractmethod
    def hgetall(self, key: str) -> dict[str, str]: ...

    @abc.abstractmethod
    def hgetall_many(self, keys: Sequence[str]) -> list[dict[str, str]]:
        """``hgetall`` for many keys in one round trip; result order matches ``keys``."""

    # pub/sub
    @abc.abstractmethod
    def publish(self, channel: str, message: str) -> int: ...

    @abc.abstractmethod
    def subscribe(self, channel: str, callback: Callable[[str], None]) -> Subscription:
        """Call ``callback(message)`` for each message on ``channel`` until closed."""

    @abc.abstractmethod
    def close(self) -> None: ...


class DimensionStore(abc.ABC):
    """Durable dimension data: the three tables of the design notes. Writes are upserts."""

    @abc.abstractmethod
    def ensure_schema(self) -> None:
        """Create tables if missing (idempotent migration)."""

    @abc.abstractmethod
    def put_semantic(self, rows: Iterable[SemanticRelations]) -> int: ...

    @abc.abstractmethod
    def get_semantic(self, master_ids: Sequence[UUID]) -> dict[UUID, SemanticRelations]:
        """Rows that exist, keyed by master id; missing ids are absent."""

    def update_semantic(self, rows: Iterable[SemanticRelations]) -> int:
        """Rewrite exactly these masters' rows (related map, ``inference_ts``, ``inference_source``).

        What a refresh of *hot* masters uses: one keyed write per given row (a master without a row
        gets one), no other row is read-modified or written. Returns how many rows were written.
        """
        return self.put_semantic(rows)

    def semantic_write_marks(self, master_ids: Sequence[UUID]) -> dict[UUID, int]:
        """A mark per existing row that changes whenever that row is written, and only then.

        SQLite: a row version (1 on insert, +1 per write); Cassandra: the row's ``WRITETIME`` (µs).
        Lets a caller prove that rows it did not mean to touch were not written. Stores that keep
        no such mark (test doubles) raise :class:`~hotpath.errors.StoreError`.
        """
        from hotpath.errors import StoreError

        raise StoreError(f"{type(self).__name__} keeps no per-row write marks")

    @property
    def semantic_rows_written(self) -> int:
        """Semantic rows written through this store object (puts and updates), for job accounting."""
        return getattr(self, "_semantic_rows_written", 0)

    def _count_semantic(self, n: int) -> int:
        self._semantic_rows_written = self.semantic_rows_written + n
        return n

    @abc.abstractmethod
    def put_coview(self, rows: Iterable[CategoryCoView]) -> int: ...

    @abc.abstractmethod
    def get_coview(self, cat_ids: Sequence[str]) -> dict[str, CategoryCoView]: ...

    @abc.abstractmethod
    def put_master_pids(self, rows: Iterable[MasterPids]) -> int: ...

    @abc.abstractmethod
    def get_master_pids(self, master_ids: Sequence[UUID]) -> dict[UUID, MasterPids]: ...

    @abc.abstractmethod
    def close(self) -> None: ...
