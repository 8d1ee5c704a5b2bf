"""The Kafka :class:`EventLog` of the full profile (aiokafka).

Appends pick the partition themselves with :func:`partition_for` (so this log and the embedded
one place every key identically) and hand the producer whole record batches (``create_batch`` /
``send_batch``): no per-record future, acks=all, idempotent. The batches are built by ``append``
itself, so the producer lingers 0 ms by default (a 5 ms linger cut sequential 100-event appends
from ~54k to ~11k events/s and did not help 1000-event ones). Reads use one
consumer without a group: partitions are ``assign()``-ed as they are first read and ``seek()``-ed
whenever a read does not continue where the previous one stopped; callers keep their own offsets.
Topic existence is checked with a metadata request that never auto-creates the topic, so an
unknown topic is :class:`NotFound` even on a broker with ``auto.create.topics.enable``.

One reader per (topic, partition) at a time per object; different partitions may be read
concurrently. Errors: connection failures and timeouts become :class:`ServiceUnavailable`, every
other Kafka error :class:`StreamError`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from itertools import repeat

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    OffsetOutOfRangeError,
    RequestTimedOutError,
    TopicAlreadyExistsError,
)
from aiokafka.protocol.metadata import MetadataRequest

from hotpath.config import Settings
from hotpath.errors import BadInput, HotpathError, NotFound, ServiceUnavailable, StreamError
from hotpath.streams.base import EventIn, EventLog, LogRecord, partition_for
from hotpath.streams.embedded_log import check_topic_name

__all__ = ["KafkaEventLog"]

_UNKNOWN_TOPIC = 3
_TOPIC_EXISTS = 36


class KafkaEventLog(EventLog):
    """:class:`EventLog` on the Kafka broker at ``settings.kafka`` (or ``bootstrap`` when given)."""

    def __init__(
        self,
        settings: Settings,
        *,
        bootstrap: str | None = None,
        linger_ms: int = 0,
        max_batch_bytes: int = 512 * 1024,  # under the broker's 1 MiB message.max.bytes
        request_timeout_ms: int = 15000,
    ) -> None:
        self.bootstrap = bootstrap or settings.kafka.bootstrap
        self._linger_ms = linger_ms
        self._max_batch_bytes = max_batch_bytes
        self._request_timeout_ms = request_timeout_ms
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._start_lock: asyncio.Lock | None = None
        self._partitions: dict[str, int] = {}
        self._assigned: set[TopicPartition] = set()
        self._next: dict[TopicPartition, int] = {}
        self._closed = False

    # ------------------------------------------------------------------ plumbing
    @contextlib.asynccontextmanager
    async def _errors(self, what: str) -> AsyncIterator[None]:
        try:
            yield
        except HotpathError:
            raise
        except (TimeoutError, KafkaConnectionError, KafkaTimeoutError, RequestTimedOutError) as exc:
            raise ServiceUnavailable(
                f"Kafka at {self.bootstrap} is unavailable ({what}): {exc!r}",
                hint="start it with `hotpath services up --profile full`",
            ) from exc
        except OffsetOutOfRangeError as exc:
            raise BadInput(f"Kafka {what}: offset out of range: {exc}", field="offset") from exc
        except KafkaError as exc:
            raise StreamError(f"Kafka {what} failed: {exc!r}") from exc

    def _lock(self) -> asyncio.Lock:
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        return self._start_lock

    async def _started_admin(self) -> AIOKafkaAdminClient:
        if self._admin is None:
            async with self._lock():
                if self._admin is None:
                    self._check_open()
                    admin = AIOKafkaAdminClient(
                        bootstrap_servers=self.bootstrap, request_timeout_ms=self._request_timeout_ms
                    )
                    async with self._errors("connect admin"):
                        try:
                            await admin.start()
                        except BaseException:
                            await admin.close()
                            raise
                    self._admin = admin
        return self._admin

    async def _started_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            async with self._lock():
                if self._producer is None:
                    self._check_open()
                    producer = AIOKafkaProducer(
                        bootstrap_servers=self.bootstrap,
                        acks="all",
                        enable_idempotence=True,
                        linger_ms=self._linger_ms,
                        max_batch_size=self._max_batch_bytes,
                        max_request_size=2 * self._max_batch_bytes,
                        request_timeout_ms=self._request_timeout_ms,
                    )
                    async with self._errors("connect producer"):
                        try:
                            await producer.start()
                        except BaseException:
                            await producer.stop()
                            raise
                    self._producer = producer
        return self._producer

    async def _started_consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            async with self._lock():
                if self._consumer is None:
                    self._check_open()
                    consumer = AIOKafkaConsumer(
                        bootstrap_servers=self.bootstrap,
                        group_id=None,
                        enable_auto_commit=False,
                        auto_offset_reset="none",
                        fetch_max_wait_ms=100,
                        max_partition_fetch_bytes=4 << 20,
                        request_timeout_ms=self._request_timeout_ms,
                    )
                    async with self._errors("connect consumer"):
                        try:
                            await consumer.start()
                        except BaseException:
                            await consumer.stop()
                            raise
                    self._consumer = consumer
        return self._consumer

    def _check_open(self) -> None:
        if self._closed:
            raise StreamError("the Kafka event log is closed")

    async def _check_partition(self, topic: str, partition: int) -> TopicPartition:
        n = await self.partitions(topic)
        if not 0 <= partition < n:
            raise BadInput(f"topic {topic!r} has partitions 0..{n - 1}, not {partition}", field="partition")
        return TopicPartition(topic, partition)

    # ------------------------------------------------------------------ EventLog
    async def create_topic(self, topic: str, partitions: int) -> None:
        check_topic_name(topic)
        if partitions < 1:
            raise BadInput(f"a topic needs at least 1 partition, not {partitions}", field="partitions")
        admin = await self._started_admin()
        async with self._errors(f"create topic {topic}"):
            try:
                response = await admin.create_topics(
                    [NewTopic(name=topic, num_partitions=partitions, replication_factor=1)]
                )
            except TopicAlreadyExistsError:
                response = None
            for entry in getattr(response, "topic_errors", None) or ():
                code = entry[1]
                if code not in (0, _TOPIC_EXISTS):
                    raise StreamError(f"Kafka refused to create topic {topic!r}: error {code} {entry[2:]!r}")
        self._partitions.pop(topic, None)
        # The controller answered; the broker's metadata cache learns of the topic a moment later.
        for _ in range(100):
            try:
                await self.partitions(topic)
                return
            except NotFound:
                await asyncio.sleep(0.05)
        raise StreamError(f"topic {topic!r} was created but never appeared in Kafka's metadata")

    async def partitions(self, topic: str) -> int:
        check_topic_name(topic)
        n = self._partitions.get(topic)
        if n is not None:
            return n
        admin = await self._started_admin()
        async with self._errors(f"metadata for {topic}"):
            for _ in range(50):  # a topic just created may have no partition leaders yet
                response = await admin._send_request(MetadataRequest([topic], allow_auto_topic_creation=False))
                entries = [t for t in response.to_object()["topics"] if t["topic"] == topic]
                if not entries or entries[0]["error_code"] == _UNKNOWN_TOPIC:
                    raise NotFound(f"topic {topic!r} does not exist on Kafka at {self.bootstrap}")
                parts = entries[0]["partitions"]
                if entries[0]["error_code"] == 0 and parts and all(p["error_code"] == 0 for p in parts):
                    self._partitions[topic] = n = len(parts)
                    return n
                await asyncio.sleep(0.1)
        raise ServiceUnavailable(f"topic {topic!r} on Kafka at {self.bootstrap} has no partition leaders")

    async def append(self, topic: str, events: Sequence[EventIn]) -> list[tuple[int, int]]:
        n = await self.partitions(topic)
        if not events:
            return []
        self._check_sizes(ev.key for ev in events)
        self._check_sizes(ev.value for ev in events)
        by_partition: dict[int, list[int]] = {}
        for i, ev in enumerate(events):
            by_partition.setdefault(partition_for(ev.key, n), []).append(i)
        parts = list(by_partition.items())
        firsts = await asyncio.gather(
            *(self._append_to(topic, p, [(events[i].key, events[i].value) for i in indices],
                              [events[i].timestamp_ms for i in indices])
              for p, indices in parts)
        )
        result: list[tuple[int, int]] = [(0, 0)] * len(events)
        for first, (p, indices) in zip(firsts, parts, strict=True):
            for j, i in enumerate(indices):
                result[i] = (p, first + j)
        return result

    async def append_batch(self, topic: str, partition: int, records: Sequence[tuple[bytes | None, bytes]]) -> int:
        """Append ``(key, value)`` records to one partition, in order, without an :class:`EventIn`
        each (load generators); returns the offset of the first."""
        n = await self.partitions(topic)
        if not 0 <= partition < n:
            raise BadInput(f"partition {partition} of {topic!r} does not exist (it has {n})", field="partition")
        if not records:
            raise BadInput("no records to append", field="records")
        keys, values = zip(*records)  # two C-level passes instead of two generators per record
        self._check_sizes(keys)
        self._check_sizes(values)
        return await self._append_to(topic, partition, records)

    def _check_sizes(self, blobs: Iterable[bytes | None]) -> None:
        """Before anything is sent: no key or value over a producer batch (the broker would refuse it)."""
        biggest = max(map(len, filter(None, blobs)), default=0)
        if biggest > self._max_batch_bytes:
            raise BadInput(f"an event of {biggest:,} bytes is larger than a Kafka batch ({self._max_batch_bytes:,})",
                           field="value")

    async def _append_to(
        self, topic: str, partition: int, records: Sequence[tuple[bytes | None, bytes]],
        timestamps: Sequence[int | None] | None = None,
    ) -> int:
        """``(key, value)`` records (with ``timestamps`` in ms, else the broker's time) to one
        partition, in batches; the first's offset."""
        producer = await self._started_producer()
        futures: list[asyncio.Future] = []
        stamps = timestamps if timestamps is not None else repeat(None)
        async with self._errors(f"append to {topic}"):
            batch = producer.create_batch()
            append = batch.append
            for (key, value), ts in zip(records, stamps):
                if append(key=key, value=value, timestamp=ts) is None:  # full: send it, start another
                    futures.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    append = batch.append
                    append(key=key, value=value, timestamp=ts)
            futures.append(await producer.send_batch(batch, topic, partition=partition))
            metas = await asyncio.gather(*futures)
        return metas[0].offset

    async def read(
        self, topic: str, partition: int, offset: int, *, max_records: int = 1000, timeout_s: float = 0.0
    ) -> list[LogRecord]:
        msgs = await self.read_records(topic, partition, offset, max_records=max_records, timeout_s=timeout_s)
        return [LogRecord(topic, partition, m.offset, m.key, m.value, m.timestamp) for m in msgs]

    async def read_records(
        self, topic: str, partition: int, offset: int, *, max_records: int = 1000, timeout_s: float = 0.0
    ) -> list:
        """:meth:`read` without the copy into :class:`LogRecord`: aiokafka's own records, which have
        the same ``topic``, ``partition``, ``offset``, ``key`` and ``value`` (the timestamp is
        ``timestamp``). The co-view shards read this way (a copy per record was ~1 µs of ~4)."""
        if offset < 0:
            raise BadInput(f"offset must be >= 0, not {offset}", field="offset")
        if max_records < 1:
            raise BadInput(f"max_records must be >= 1, not {max_records}", field="max_records")
        tp = await self._check_partition(topic, partition)
        consumer = await self._started_consumer()
        async with self._errors(f"read {topic}[{partition}]"):
            if tp not in self._assigned:
                self._assigned.add(tp)
                self._next.pop(tp, None)
                self._assign(consumer)
            if self._next.get(tp) != offset:
                consumer.seek(tp, offset)
            try:
                batches = await consumer.getmany(
                    tp, timeout_ms=int(max(0.0, timeout_s) * 1000), max_records=max_records
                )
                msgs = batches.get(tp, [])
                if msgs and len(msgs) < max_records:  # top up from what is already fetched, without waiting
                    more = await consumer.getmany(tp, timeout_ms=0, max_records=max_records - len(msgs))
                    msgs += more.get(tp, [])
            except BaseException:
                # Its position is unknown now; a partition without one would stall the fetcher for
                # the others, so drop it from the assignment (the next read of it assigns it again).
                self._assigned.discard(tp)
                self._next.pop(tp, None)
                with contextlib.suppress(Exception):
                    self._assign(consumer)
                raise
        self._next[tp] = msgs[-1].offset + 1 if msgs else offset
        return msgs

    def _assign(self, consumer: AIOKafkaConsumer) -> None:
        """Assign every partition read so far; assign() forgets positions, so seek them back."""
        consumer.assign(sorted(self._assigned))
        for tp in self._assigned:
            pos = self._next.get(tp)
            if pos is not None:
                consumer.seek(tp, pos)

    async def end_offset(self, topic: str, partition: int) -> int:
        tp = await self._check_partition(topic, partition)
        consumer = await self._started_consumer()
        async with self._errors(f"end offset of {topic}[{partition}]"):
            ends = await consumer.end_offsets([tp])
        return int(ends[tp])

    async def delete_topic(self, topic: str) -> None:
        """Delete a topic (tests clean up with it)."""
        admin = await self._started_admin()
        async with self._errors(f"delete topic {topic}"):
            await admin.delete_topics([topic])
        self._partitions.pop(topic, None)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for client, stop in (
            (self._producer, "stop"),
            (self._consumer, "stop"),
            (self._admin, "close"),
        ):
            if client is not None:
                with contextlib.suppress(Exception):
                    await getattr(client, stop)()
        self._producer = self._consumer = self._admin = None
