"""Fixtures of the co-view tests: an in-memory event log and dimension store (seams for the pure
domain tests; the end-to-end tests use the real Kafka, Redis and Ray instead)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence

import pytest

from hotpath.errors import NotFound
from hotpath.stores.base import CategoryCoView, DimensionStore
from hotpath.streams.base import EventIn, EventLog, LogRecord, partition_for


class MemoryEventLog(EventLog):
    """The EventLog contract in a dict (one process)."""

    def __init__(self) -> None:
        self.topics: dict[str, list[list[LogRecord]]] = {}

    async def create_topic(self, topic: str, partitions: int) -> None:
        self.topics.setdefault(topic, [[] for _ in range(partitions)])

    async def partitions(self, topic: str) -> int:
        if topic not in self.topics:
            raise NotFound(topic)
        return len(self.topics[topic])

    async def append(self, topic: str, events: Sequence[EventIn]) -> list[tuple[int, int]]:
        parts = self.topics[topic]
        out = []
        for ev in events:
            p = partition_for(ev.key, len(parts))
            off = len(parts[p])
            parts[p].append(LogRecord(topic, p, off, ev.key, ev.value, ev.timestamp_ms or 0))
            out.append((p, off))
        return out

    async def read(self, topic, partition, offset, *, max_records=1000, timeout_s=0.0):
        recs = self.topics[topic][partition][offset : offset + max_records]
        if not recs and timeout_s:
            await asyncio.sleep(0)
        return recs

    async def end_offset(self, topic: str, partition: int) -> int:
        return len(self.topics[topic][partition])

    async def close(self) -> None:
        pass


class MemoryDims(DimensionStore):
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, float]] = {}
        self.writes = 0

    def ensure_schema(self) -> None: ...
    def put_semantic(self, rows): raise NotImplementedError
    def get_semantic(self, master_ids): raise NotImplementedError
    def put_master_pids(self, rows): raise NotImplementedError
    def get_master_pids(self, master_ids): raise NotImplementedError

    def put_coview(self, rows) -> int:
        n = 0
        for r in rows:
            self.rows[r.cat_id] = dict(r.related_cats)
            n += 1
        self.writes += 1
        return n

    def get_coview(self, cat_ids: Sequence[str]) -> dict[str, CategoryCoView]:
        return {c: CategoryCoView(c, self.rows[c]) for c in cat_ids if c in self.rows}

    def close(self) -> None: ...


@pytest.fixture
def uniq() -> str:
    return uuid.uuid4().hex[:10]


def zset_dump(cache, prefix: str) -> dict[str, dict[str, float]]:
    """Every sorted set under ``prefix`` as {key: {member: score}} (for equality checks)."""
    out = {}
    for key in sorted(cache.scan(prefix)):
        out[key] = dict(cache.ztop(key, 10_000))
    return out


def as_mapping(rows: Mapping) -> dict:
    return {k: dict(v) for k, v in rows.items()}
