"""The EventLog contract: the embedded log and Kafka pass the same tests (Kafka needs the services)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hotpath.config import Settings
from hotpath.errors import BadInput, NotFound, ServiceUnavailable
from hotpath.streams.base import EventIn, EventLog, partition_for
from hotpath.streams.embedded_log import EmbeddedEventLog

# Independently computed: zlib.crc32(key) % 4 for these keys. Every implementation must agree.
KEYS_TO_PARTITION_OF_4 = {b"user-1": zlib.crc32(b"user-1") % 4, b"cat:electronics": zlib.crc32(b"cat:electronics") % 4}


@dataclass
class LogUnderTest:
    log: EventLog
    reopen: Callable[[], EventLog]
    uniq: str
    opened: list[EventLog] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)

    def topic(self, name: str = "t") -> str:
        t = f"contract-{self.uniq}-{name}"
        self.topics.append(t)
        return t


@pytest.fixture(params=["embedded", pytest.param("kafka", marks=pytest.mark.services)])
async def lut(
    request: pytest.FixtureRequest, settings: Settings, tmp_path: Path, uniq: str
) -> AsyncIterator[LogUnderTest]:
    if request.param == "embedded":

        def make() -> EventLog:
            return EmbeddedEventLog(settings, path=tmp_path / "eventlog")

    else:
        from hotpath.streams.kafka_log import KafkaEventLog

        def make() -> EventLog:
            return KafkaEventLog(settings)

    log = make()
    lut = LogUnderTest(log, make, uniq)
    lut.opened.append(log)
    original_reopen = lut.reopen

    def reopen() -> EventLog:
        again = original_reopen()
        lut.opened.append(again)
        return again

    lut.reopen = reopen
    try:
        yield lut
    finally:
        if request.param == "kafka":
            for topic in lut.topics:
                try:
                    await log.delete_topic(topic)  # type: ignore[attr-defined]
                except Exception:
                    pass
        for opened in lut.opened:
            await opened.close()


async def test_create_topic_and_partitions(lut: LogUnderTest) -> None:
    t = lut.topic()
    await lut.log.create_topic(t, 3)
    assert await lut.log.partitions(t) == 3
    await lut.log.create_topic(t, 5)  # exists: keeps its partition count
    assert await lut.log.partitions(t) == 3
    for p in range(3):
        assert await lut.log.end_offset(t, p) == 0
        assert await lut.log.read(t, p, 0) == []


async def test_unknown_topic_is_not_found(lut: LogUnderTest) -> None:
    t = lut.topic("missing")
    with pytest.raises(NotFound):
        await lut.log.partitions(t)
    with pytest.raises(NotFound):
        await lut.log.append(t, [EventIn(b"x", key=b"k")])
    with pytest.raises(NotFound):
        await lut.log.read(t, 0, 0)
    with pytest.raises(NotFound):
        await lut.log.end_offset(t, 0)
    with pytest.raises(NotFound):  # and asking did not create it
        await lut.log.partitions(t)


async def test_bad_input(lut: LogUnderTest) -> None:
    t = lut.topic()
    with pytest.raises(BadInput):
        await lut.log.create_topic("bad topic/name", 1)
    with pytest.raises(BadInput):
        await lut.log.create_topic(t, 0)
    await lut.log.create_topic(t, 2)
    with pytest.raises(BadInput):
        await lut.log.read(t, 2, 0)
    with pytest.raises(BadInput):
        await lut.log.read(t, 0, -1)
    with pytest.raises(BadInput):
        await lut.log.end_offset(t, 5)
    await lut.log.append(t, [EventIn(b"a", key=b"k")])
    p = partition_for(b"k", 2)
    with pytest.raises(BadInput):  # past the end is an error, not a wait
        await lut.log.read(t, p, 3, timeout_s=5)
    assert [r.value for r in await lut.log.read(t, p, 0, timeout_s=5)] == [b"a"]  # and the reader recovers


async def test_offsets_dense_from_zero_and_partitioned_by_key(lut: LogUnderTest) -> None:
    t = lut.topic()
    await lut.log.create_topic(t, 4)
    keys = [f"key-{i % 7}".encode() for i in range(40)]
    placed = await lut.log.append(t, [EventIn(f"v{i}".encode(), key=k) for i, k in enumerate(keys)])
    placed += await lut.log.append(t, [EventIn(b"late", key=keys[0])])
    keys.append(keys[0])
    assert [p for p, _ in placed] == [partition_for(k, 4) for k in keys]
    for p in range(4):
        offsets = [o for (q, o) in placed if q == p]
        assert offsets == list(range(len(offsets)))  # dense, from 0, in append order
        assert await lut.log.end_offset(t, p) == len(offsets)


async def test_partitioning_identical_across_implementations(lut: LogUnderTest) -> None:
    t = lut.topic()
    await lut.log.create_topic(t, 4)
    keys = list(KEYS_TO_PARTITION_OF_4)
    placed = await lut.log.append(t, [EventIn(b"x", key=k) for k in keys] + [EventIn(b"keyless")])
    assert [p for p, _ in placed] == [KEYS_TO_PARTITION_OF_4[k] for k in keys] + [0]


async def test_read_round_trip_from_offset(lut: LogUnderTest) -> None:
    t = lut.topic()
    await lut.log.create_topic(t, 1)
    events = [
        EventIn(f"value-{i}".encode(), key=None if i % 3 == 0 else f"k{i}".encode(), timestamp_ms=1_700_000_000_000 + i)
        for i in range(25)
    ]
    before = int(time.time() * 1000)
    await lut.log.append(t, events)
    await lut.log.append(t, [EventIn(b"now", key=b"k")])
    after = int(time.time() * 1000)

    got = await lut.log.read(t, 0, 0, max_records=1000, timeout_s=5)
    while len(got) < 26:  # a log may hand out what it has in several reads
        more = await lut.log.read(t, 0, got[-1].offset + 1, timeout_s=5)
        assert more
        got += more
    assert [r.offset for r in got] == list(range(26))
    assert all(r.topic == t and r.partition == 0 for r in got)
    assert [(r.key, r.value, r.timestamp_ms) for r in got[:25]] == [(e.key, e.value, e.timestamp_ms) for e in events]
    assert got[25].value == b"now" and before - 1000 <= got[25].timestamp_ms <= after + 1000

    middle = await read_n(lut.log, t, 0, 10, 5)
    assert [r.offset for r in middle] == [10, 11, 12, 13, 14]
    assert [r.value for r in middle] == [f"value-{i}".encode() for i in range(10, 15)]
    # jump backwards and forwards; never more than max_records
    assert [r.offset for r in await read_n(lut.log, t, 0, 2, 2)] == [2, 3]
    assert [r.offset for r in await read_n(lut.log, t, 0, 24, 2)] == [24, 25]
    assert len(await lut.log.read(t, 0, 0, max_records=3, timeout_s=5)) <= 3


async def test_interleaved_reads_of_several_partitions(lut: LogUnderTest) -> None:
    """One reader takes turns over partitions (and topics), each continuing where it stopped."""
    t1, t2 = lut.topic("one"), lut.topic("two")
    await lut.log.create_topic(t1, 3)
    await lut.log.create_topic(t2, 1)
    by_p: dict[tuple[str, int], list[bytes]] = {}
    for topic in (t1, t2):
        events = [EventIn(f"{topic}-{i}".encode(), key=f"k{i}".encode()) for i in range(60)]
        for ev, (p, _) in zip(events, await lut.log.append(topic, events), strict=True):
            by_p.setdefault((topic, p), []).append(ev.value)
    seen: dict[tuple[str, int], list[bytes]] = {tp: [] for tp in by_p}
    for _ in range(100):
        if all(len(seen[tp]) == len(by_p[tp]) for tp in by_p):
            break
        for (topic, p), values in seen.items():
            if len(values) < len(by_p[(topic, p)]):
                got = await lut.log.read(topic, p, len(values), max_records=4, timeout_s=5)
                assert got and len(got) <= 4 and got[0].offset == len(values)
                values += [r.value for r in got]
    assert seen == by_p
    # an error on one partition leaves the others readable
    with pytest.raises(BadInput):
        await lut.log.read(t1, 0, len(by_p[(t1, 0)]) + 10, timeout_s=5)
    more = await lut.log.append(t2, [EventIn(b"late")])
    assert [r.value for r in await lut.log.read(t2, 0, more[0][1], timeout_s=5)] == [b"late"]
    assert [r.value for r in await read_n(lut.log, t1, 0, 0, 2)] == by_p[(t1, 0)][:2]


async def read_n(log: EventLog, topic: str, partition: int, offset: int, n: int) -> list:
    """Exactly ``n`` records from ``offset``: a log may hand them out over several reads."""
    out: list = []
    while len(out) < n:
        got = await log.read(topic, partition, offset + len(out), max_records=n - len(out), timeout_s=5)
        assert got, f"no record at {offset + len(out)}"
        out += got
    return out


async def test_read_at_end_waits_then_returns_empty(lut: LogUnderTest) -> None:
    t = lut.topic()
    await lut.log.create_topic(t, 1)
    await lut.log.append(t, [EventIn(b"a")])
    start = time.monotonic()
    assert await lut.log.read(t, 0, 1, timeout_s=0.4) == []
    assert 0.3 <= time.monotonic() - start < 3


async def test_read_wait_returns_when_data_arrives(lut: LogUnderTest) -> None:
    t = lut.topic()
    await lut.log.create_topic(t, 2)
    key = b"wake"
    p = partition_for(key, 2)
    assert await lut.log.read(t, p, 0, timeout_s=0.1) == []  # the reader is set up and caught up

    async def append_later() -> None:
        await asyncio.sleep(0.5)
        await lut.log.append(t, [EventIn(b"hello", key=key)])

    start = time.monotonic()
    writer = asyncio.create_task(append_later())
    got = await lut.log.read(t, p, 0, timeout_s=20)
    elapsed = time.monotonic() - start
    await writer
    assert [(r.offset, r.value) for r in got] == [(0, b"hello")]
    assert 0.4 <= elapsed < 5


async def test_read_sees_other_writer(lut: LogUnderTest) -> None:
    t = lut.topic()
    await lut.log.create_topic(t, 1)
    other = lut.reopen()

    async def append_later() -> None:
        await asyncio.sleep(0.3)
        await other.append(t, [EventIn(b"from-other")])

    writer = asyncio.create_task(append_later())
    got = await lut.log.read(t, 0, 0, timeout_s=20)
    await writer
    assert [r.value for r in got] == [b"from-other"]


async def test_large_batch_round_trip(lut: LogUnderTest) -> None:
    t = lut.topic()
    await lut.log.create_topic(t, 2)
    n = 10_000
    payload = b"x" * 200  # 2 MB in all: more than one producer batch
    placed = await lut.log.append(t, [EventIn(payload + str(i).encode(), key=str(i).encode()) for i in range(n)])
    assert len(placed) == n
    for p in range(2):
        expected = [i for i in range(n) if partition_for(str(i).encode(), 2) == p]
        assert [o for q, o in placed if q == p] == list(range(len(expected)))
        values: list[bytes] = []
        while len(values) < len(expected):
            batch = await lut.log.read(t, p, len(values), max_records=3000, timeout_s=5)
            assert batch and len(batch) <= 3000
            values += [r.value for r in batch]
        assert values == [payload + str(i).encode() for i in expected]
        assert await lut.log.end_offset(t, p) == len(expected)


async def test_restart_durability(lut: LogUnderTest) -> None:
    t = lut.topic()
    await lut.log.create_topic(t, 2)
    placed = await lut.log.append(t, [EventIn(f"e{i}".encode(), key=f"k{i}".encode()) for i in range(50)])
    await lut.log.close()
    again = lut.reopen()
    assert await again.partitions(t) == 2
    for p in range(2):
        mine = [o for q, o in placed if q == p]
        assert await again.end_offset(t, p) == len(mine)
        got = await again.read(t, p, 0, timeout_s=5)
        assert [r.offset for r in got] == mine
    placed2 = await again.append(t, [EventIn(b"after", key=b"k0")])
    p0 = partition_for(b"k0", 2)
    assert placed2 == [(p0, len([1 for q, _ in placed if q == p0]))]


_WRITER = """
import asyncio, sys
from pathlib import Path
from hotpath.config import Settings
from hotpath.streams.base import EventIn
from hotpath.streams.embedded_log import EmbeddedEventLog

async def main(path, topic, name):
    log = EmbeddedEventLog(Settings(), path=Path(path))
    for b in range(20):
        await log.append(topic, [EventIn(f"{name}-{b}-{i}".encode(), key=str(i).encode()) for i in range(100)])
    await log.close()

asyncio.run(main(*sys.argv[1:]))
"""


async def test_embedded_several_processes_append(settings: Settings, tmp_path: Path, uniq: str) -> None:
    """Two processes append to one topic at once: offsets stay dense, nothing is lost."""
    path = tmp_path / "eventlog"
    log = EmbeddedEventLog(settings, path=path)
    topic = f"contract-{uniq}-mp"
    await log.create_topic(topic, 2)
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), topic, name]) for name in ("a", "b")]
    for proc in procs:
        assert await asyncio.to_thread(proc.wait, 60) == 0
    values: list[bytes] = []
    for p in range(2):
        got = await log.read(t := topic, p, 0, max_records=10_000)
        assert [r.offset for r in got] == list(range(len(got)))
        assert await log.end_offset(t, p) == len(got)
        values += [r.value for r in got]
    assert sorted(values) == sorted(f"{n}-{b}-{i}".encode() for n in "ab" for b in range(20) for i in range(100))
    await log.close()


async def test_kafka_down_is_service_unavailable(settings: Settings) -> None:
    from hotpath.streams.kafka_log import KafkaEventLog

    log = KafkaEventLog(settings, bootstrap="127.0.0.1:1", request_timeout_ms=2000)
    try:
        with pytest.raises(ServiceUnavailable, match="127.0.0.1:1"):
            await log.partitions("anything")
    finally:
        await log.close()


@pytest.mark.services
async def test_kafka_append_batch_writes_one_partition_in_order(settings: Settings, uniq: str) -> None:
    """``KafkaEventLog.append_batch`` (the load generator's path): records in order to the partition
    named whatever their keys, several producer batches, the first offset returned; bad input named."""
    from hotpath.streams.kafka_log import KafkaEventLog

    log = KafkaEventLog(settings)
    t = f"contract-{uniq}-batch"
    try:
        await log.create_topic(t, 2)
        records = [(str(i).encode(), b"y" * 300 + str(i).encode()) for i in range(6000)]  # > one batch
        assert await log.append_batch(t, 1, records[:10]) == 0
        assert await log.append_batch(t, 1, records[10:]) == 10
        got: list[tuple[bytes | None, bytes]] = []
        while len(got) < len(records):
            batch = await log.read(t, 1, len(got), max_records=5000, timeout_s=5)
            assert batch
            got += [(r.key, r.value) for r in batch]
        assert got == records and await log.end_offset(t, 0) == 0
        with pytest.raises(BadInput, match="partition 2"):
            await log.append_batch(t, 2, records[:1])
        for append in (log.append_batch(t, 0, [(None, b"z"), (None, b"z" * (8 << 20))]),
                       log.append(t, [EventIn(b"z"), EventIn(b"z" * (8 << 20))])):
            with pytest.raises(BadInput, match="larger than a Kafka batch"):
                await append
        assert await log.end_offset(t, 0) == 0  # refused whole: nothing sent
    finally:
        await log.delete_topic(t)
        await log.close()
