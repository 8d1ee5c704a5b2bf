"""The event-log interface and the records that cross it (an interface module: no client library,
so the domain packages may import it).

=================  ==========================  ==========================
interface          embedded profile            full profile
=================  ==========================  ==========================
EventLog           embedded file log           Kafka
=================  ==========================  ==========================

``EventLog`` is asynchronous (long-running consumers, aiokafka). Adapters map their client's
exceptions to :class:`hotpath.errors.StreamError` / ``ServiceUnavailable``; one contract suite
(``tests/contract/test_event_log.py``) runs every implementation.
"""

from __future__ import annotations

import abc
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["EventIn", "LogRecord", "EventLog", "partition_for"]


# --------------------------------------------------------------------------- event-log records
@dataclass(frozen=True, slots=True)
class EventIn:
    """One event to append. ``key`` picks the partition (see :func:`partition_for`)."""

    value: bytes
    key: bytes | None = None
    timestamp_ms: int | None = None
    """Event time in ms since the epoch; the log's append time when ``None``."""


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One event read back, with its position in the log."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int


def partition_for(key: bytes | None, partitions: int, *, fallback: int = 0) -> int:
    """The partition of a keyed event: the same function for every EventLog implementation."""
    if key is None:
        return fallback % partitions
    return zlib.crc32(key) % partitions


class EventLog(abc.ABC):
    """A partitioned, append-only, replayable log of events (Kafka or the embedded log).

    Offsets are per partition, dense, starting at 0. Consumers keep their own offsets (in their
    checkpoints), so the log needs no consumer-group state.
    """

    @abc.abstractmethod
    async def create_topic(self, topic: str, partitions: int) -> None:
        """Create the topic if missing; an existing topic keeps its partition count."""

    @abc.abstractmethod
    async def partitions(self, topic: str) -> int:
        """Partition count; raises NotFound for an unknown topic."""

    @abc.abstractmethod
    async def append(self, topic: str, events: Sequence[EventIn]) -> list[tuple[int, int]]:
        """Append events, partitioned by :func:`partition_for`; returns ``(partition, offset)`` each."""

    @abc.abstractmethod
    async def read(
        self, topic: str, partition: int, offset: int, *, max_records: int = 1000, timeout_s: float = 0.0
    ) -> list[LogRecord]:
        """Records from ``offset`` on (at most ``max_records``), waiting up to ``timeout_s`` for one.

        May return fewer records than are available (read on from the last offset + 1). An offset
        past :meth:`end_offset` raises BadInput; an unknown topic NotFound.
        """

    @abc.abstractmethod
    async def end_offset(self, topic: str, partition: int) -> int:
        """The offset the next appended record will get."""

    @abc.abstractmethod
    async def close(self) -> None: ...
