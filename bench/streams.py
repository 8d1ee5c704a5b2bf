"""Append/read throughput of an event log: ``python -m bench.streams [embedded|kafka] ...``.

Appends ``--events`` events of ``--size`` bytes in batches of ``--batch`` to a fresh topic, then
reads every partition back in pages of ``--page`` records; prints events/s for both phases as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

from hotpath.config import load_settings
from hotpath.streams.base import EventIn, EventLog


async def run(log: EventLog, *, events: int, size: int, batch: int, page: int, partitions: int) -> dict:
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    await log.create_topic(topic, partitions)
    payload = b"v" * size
    batches = [
        [EventIn(payload, key=f"user-{(b * batch + i) % 10_000}".encode()) for i in range(batch)]
        for b in range(events // batch)
    ]
    start = time.perf_counter()
    for chunk in batches:
        await log.append(topic, chunk)
    append_s = time.perf_counter() - start

    start = time.perf_counter()
    read = 0
    for p in range(partitions):
        end = await log.end_offset(topic, p)
        offset = 0
        while offset < end:
            records = await log.read(topic, p, offset, max_records=page, timeout_s=5)
            offset = records[-1].offset + 1
            read += len(records)
    read_s = time.perf_counter() - start
    appended = len(batches) * batch
    assert read == appended, (read, appended)
    if hasattr(log, "delete_topic"):
        await log.delete_topic(topic)
    return {
        "events": appended,
        "size_bytes": size,
        "batch": batch,
        "partitions": partitions,
        "append_events_per_s": round(appended / append_s),
        "read_events_per_s": round(read / read_s),
        "append_s": round(append_s, 3),
        "read_s": round(read_s, 3),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("impl", choices=["embedded", "kafka"])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--page", type=int, default=5000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--path", default=None, help="embedded log folder (default: a temporary one)")
    args = parser.parse_args()
    settings = load_settings()
    if args.impl == "embedded":
        import tempfile

        from hotpath.streams.embedded_log import EmbeddedEventLog

        tmp = tempfile.TemporaryDirectory(prefix="hotpath-bench-")
        log: EventLog = EmbeddedEventLog(settings, path=args.path or tmp.name)
    else:
        from hotpath.streams.kafka_log import KafkaEventLog

        log = KafkaEventLog(settings)
    try:
        result = await run(
            log, events=args.events, size=args.size, batch=args.batch, page=args.page, partitions=args.partitions
        )
    finally:
        await log.close()
    print(json.dumps({"impl": args.impl, **result}))


if __name__ == "__main__":
    asyncio.run(main())
