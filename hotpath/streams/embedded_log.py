"""The embedded :class:`EventLog` (stands in for Kafka in the embedded profile).

Layout: one SQLite file per topic under ``settings.event_log.path`` (runtime dir), holding a
``meta`` table (the partition count) and one table per partition, ``p0``, ``p1``, ... whose
``offset INTEGER PRIMARY KEY`` is the record's offset: dense from 0, appended at the end of the
B-tree. An append is one ``BEGIN IMMEDIATE`` transaction over every partition it touches, so
several processes may append to the same topic: SQLite's file lock serialises them and each
computes its offsets inside the lock. WAL mode with ``synchronous=NORMAL``: a committed append
survives the process (not a power cut), and readers never block the writer.

SQLite calls run on a small thread pool (never on the event loop). ``read`` with a ``timeout_s``
waits for appends made through this object at once, and polls for other writers' appends every
``poll_interval_s``.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from hotpath.config import Settings
from hotpath.errors import BadInput, NotFound, StreamError
from hotpath.streams.base import EventIn, EventLog, LogRecord, partition_for

__all__ = ["EmbeddedEventLog", "check_topic_name"]

T = TypeVar("T")
_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


def check_topic_name(topic: str) -> str:
    """Kafka's rule for topic names, so a name valid here is valid on Kafka too."""
    if not isinstance(topic, str) or not _TOPIC_RE.match(topic) or topic in (".", ".."):
        raise BadInput(f"invalid topic name {topic!r}: use 1-249 of [A-Za-z0-9._-]", field="topic")
    return topic


class EmbeddedEventLog(EventLog):
    """:class:`EventLog` in SQLite files under ``path`` (default ``settings.event_log.path``)."""

    def __init__(
        self,
        settings: Settings,
        *,
        path: Path | str | None = None,
        poll_interval_s: float = 0.02,
        threads: int = 2,
    ) -> None:
        self.root = settings.in_runtime(Path(path) if path is not None else settings.event_log.path)
        self._poll_interval_s = poll_interval_s
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hotpath-eventlog")
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._partitions: dict[str, int] = {}
        self._waiters: set[asyncio.Future[None]] = set()
        self._closed = False

    # ------------------------------------------------------------------ plumbing (worker threads)
    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        if self._closed:
            raise StreamError("the embedded event log is closed")
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _file(self, topic: str) -> Path:
        return self.root / f"{topic}.db"

    def _conn(self, topic: str, create: bool = False) -> sqlite3.Connection:
        conns: dict[str, sqlite3.Connection] = getattr(self._local, "conns", None) or {}
        self._local.conns = conns
        conn = conns.get(topic)
        if conn is not None:
            return conn
        path = self._file(topic)
        try:
            if create:
                self.root.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
            else:
                conn = sqlite3.connect(
                    f"file:{path}?mode=rw", uri=True, timeout=30.0, isolation_level=None, check_same_thread=False
                )
        except sqlite3.OperationalError as exc:
            if not create:
                raise NotFound(f"topic {topic!r} does not exist in {self.root}") from exc
            raise StreamError(f"cannot open {path}: {exc}") from exc
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conns[topic] = conn
        with self._conns_lock:
            self._conns.append(conn)
        return conn

    def _count(self, topic: str) -> int:
        n = self._partitions.get(topic)
        if n is None:
            try:
                row = self._conn(topic).execute("SELECT v FROM meta WHERE k = 'partitions'").fetchone()
            except sqlite3.OperationalError as exc:  # file there, topic not created yet
                raise NotFound(f"topic {topic!r} does not exist in {self.root}") from exc
            if row is None:
                raise NotFound(f"topic {topic!r} does not exist in {self.root}")
            n = self._partitions[topic] = int(row[0])
        return n

    def _check_partition(self, topic: str, partition: int) -> None:
        n = self._count(topic)
        if not 0 <= partition < n:
            raise BadInput(f"topic {topic!r} has partitions 0..{n - 1}, not {partition}", field="partition")

    # ------------------------------------------------------------------ blocking bodies
    def _create(self, topic: str, partitions: int) -> int:
        conn = self._conn(topic, create=True)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
                conn.execute("INSERT OR IGNORE INTO meta (k, v) VALUES ('partitions', ?)", (partitions,))
                (n,) = conn.execute("SELECT v FROM meta WHERE k = 'partitions'").fetchone()
                for p in range(n):
                    conn.execute(
                        f"CREATE TABLE IF NOT EXISTS p{p} "
                        "(offset INTEGER PRIMARY KEY, key BLOB, value BLOB NOT NULL, ts INTEGER NOT NULL)"
                    )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StreamError(f"creating topic {topic!r} failed: {exc}") from exc
        self._partitions[topic] = int(n)
        return int(n)

    def _append(self, topic: str, events: Sequence[EventIn]) -> list[tuple[int, int]]:
        n = self._count(topic)
        now_ms = time.time_ns() // 1_000_000
        by_partition: dict[int, list[tuple[object, ...]]] = {}
        slots: list[tuple[int, int]] = []  # (partition, index within that partition's batch)
        for ev in events:
            p = partition_for(ev.key, n)
            rows = by_partition.get(p)
            if rows is None:
                rows = by_partition[p] = []
            slots.append((p, len(rows)))
            rows.append((ev.key, ev.value, now_ms if ev.timestamp_ms is None else ev.timestamp_ms))
        conn = self._conn(topic)
        base: dict[int, int] = {}
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for p, rows in by_partition.items():
                    (start,) = conn.execute(f"SELECT COALESCE(MAX(offset) + 1, 0) FROM p{p}").fetchone()
                    base[p] = start
                    conn.executemany(
                        f"INSERT INTO p{p} (offset, key, value, ts) VALUES (?, ?, ?, ?)",
                        [(start + i, *row) for i, row in enumerate(rows)],
                    )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StreamError(f"appending to topic {topic!r} failed: {exc}") from exc
        return [(p, base[p] + i) for p, i in slots]

    def _read(self, topic: str, partition: int, offset: int, max_records: int) -> list[LogRecord]:
        self._check_partition(topic, partition)
        try:
            rows = (
                self._conn(topic)
                .execute(
                    f"SELECT offset, key, value, ts FROM p{partition} WHERE offset >= ? ORDER BY offset LIMIT ?",
                    (offset, max_records),
                )
                .fetchall()
            )
        except sqlite3.Error as exc:
            raise StreamError(f"reading topic {topic!r} partition {partition} failed: {exc}") from exc
        if not rows and offset > 0:
            end = self._end(topic, partition)
            if offset > end:  # as Kafka does: a position past the end is an error, not a wait
                raise BadInput(
                    f"offset {offset} is past the end {end} of topic {topic!r} partition {partition}", field="offset"
                )
        return [LogRecord(topic, partition, o, k, v, t) for o, k, v, t in rows]

    def _end(self, topic: str, partition: int) -> int:
        self._check_partition(topic, partition)
        try:
            (end,) = self._conn(topic).execute(f"SELECT COALESCE(MAX(offset) + 1, 0) FROM p{partition}").fetchone()
        except sqlite3.Error as exc:
            raise StreamError(f"reading the end of topic {topic!r} partition {partition} failed: {exc}") from exc
        return int(end)

    # ------------------------------------------------------------------ EventLog
    async def create_topic(self, topic: str, partitions: int) -> None:
        check_topic_name(topic)
        if partitions < 1:
            raise BadInput(f"a topic needs at least 1 partition, not {partitions}", field="partitions")
        await self._run(self._create, topic, partitions)

    async def partitions(self, topic: str) -> int:
        check_topic_name(topic)
        n = self._partitions.get(topic)
        return n if n is not None else await self._run(self._count, topic)

    async def append(self, topic: str, events: Sequence[EventIn]) -> list[tuple[int, int]]:
        check_topic_name(topic)
        if not events:
            await self.partitions(topic)
            return []
        result = await self._run(self._append, topic, events)
        waiters, self._waiters = self._waiters, set()
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
        return result

    async def read(
        self, topic: str, partition: int, offset: int, *, max_records: int = 1000, timeout_s: float = 0.0
    ) -> list[LogRecord]:
        check_topic_name(topic)
        if offset < 0:
            raise BadInput(f"offset must be >= 0, not {offset}", field="offset")
        if max_records < 1:
            raise BadInput(f"max_records must be >= 1, not {max_records}", field="max_records")
        deadline = time.monotonic() + max(0.0, timeout_s)
        loop = asyncio.get_running_loop()
        while True:
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.add(fut)
            try:
                records = await self._run(self._read, topic, partition, offset, max_records)
                left = deadline - time.monotonic()
                if records or left <= 0:
                    return records
                await asyncio.wait([fut], timeout=min(left, self._poll_interval_s))
            finally:
                self._waiters.discard(fut)
                fut.cancel()

    async def end_offset(self, topic: str, partition: int) -> int:
        check_topic_name(topic)
        return await self._run(self._end, topic, partition)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._pool.shutdown, True)  # let running SQLite calls finish
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
