"""Exposure and outcome events, their JSON form on the event log, and the :class:`ExposureBuffer`.

On the log (one JSON object per record, key = the user id, so a user's events share a partition)::

    {"type": "exposure", "id": "...", "user_id": "u1", "ts_ms": 1764633600000,
     "widget": "pdp_related", "experiment": "decay", "variant": "control"}
    {"type": "click" | "add_to_cart" | "order", "id": "...", "user_id": "u1", "ts_ms": ...,
     "widget": "pdp_related" | null, "revenue": 12.5}

A request taking part in two layered experiments writes one exposure per experiment. Outcomes are
written by whoever sees them (the shop front end, the simulator) to ``ab.outcome_topic``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson

from hotpath.ab.experiments import Assignment
from hotpath.errors import BadInput, StreamError
from hotpath.streams.base import EventIn, EventLog

__all__ = ["OUTCOME_TYPES", "Exposure", "Outcome", "ExposureBuffer", "encode", "decode", "read_events", "append_events"]

log = logging.getLogger(__name__)

OUTCOME_TYPES = ("click", "add_to_cart", "order")
_ids = itertools.count()
_PID = f"{os.getpid():x}-{time.time_ns() & 0xFFFFFFFF:x}"


def new_id() -> str:
    """A process-unique event id (Amplitude's insert_id is derived from it: retries never duplicate)."""
    return f"{_PID}-{next(_ids):x}"


@dataclass(frozen=True, slots=True)
class Exposure:
    user_id: str
    ts_ms: int
    widget: str
    experiment: str
    variant: str
    id: str = ""

    def to_json(self) -> dict:
        return {"type": "exposure", "id": self.id, "user_id": self.user_id, "ts_ms": self.ts_ms,
                "widget": self.widget, "experiment": self.experiment, "variant": self.variant}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Outcome:
    type: str
    """``click``, ``add_to_cart`` or ``order``."""
    user_id: str
    ts_ms: int
    revenue: float = 0.0
    """Order value (orders only)."""
    widget: str | None = None
    """The widget clicked (clicks); a click names no widget when the front end cannot tell."""
    id: str = ""

    def __post_init__(self) -> None:
        if self.type not in OUTCOME_TYPES:
            raise BadInput(f"outcome type must be one of {', '.join(OUTCOME_TYPES)}, got {self.type!r}", field="type")

    def to_json(self) -> dict:
        return {"type": self.type, "id": self.id, "user_id": self.user_id, "ts_ms": self.ts_ms,
                "widget": self.widget, "revenue": self.revenue}  # fmt: skip


def encode(e: Exposure | Outcome) -> EventIn:
    d = e.to_json()
    if not d["id"]:
        d["id"] = new_id()
    return EventIn(orjson.dumps(d), key=e.user_id.encode(), timestamp_ms=e.ts_ms)


def decode(value: bytes, default_id: str = "") -> Exposure | Outcome:
    """An event from its JSON; ``default_id`` (the record's log position) when it names no id."""
    try:
        d = orjson.loads(value)
        eid = d.get("id") or default_id
        if d["type"] == "exposure":
            return Exposure(d["user_id"], int(d["ts_ms"]), d["widget"], d["experiment"], d["variant"], eid)
        return Outcome(d["type"], d["user_id"], int(d["ts_ms"]), float(d.get("revenue") or 0.0), d.get("widget"), eid)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"not an A/B event: {value[:80]!r} ({exc})") from None


async def append_events(event_log: EventLog, topic: str, events: Iterable[Exposure | Outcome], *, partitions: int = 4, chunk: int = 5000) -> int:
    await event_log.create_topic(topic, partitions)
    batch = [encode(e) for e in events]
    for i in range(0, len(batch), chunk):
        await event_log.append(topic, batch[i : i + chunk])
    return len(batch)


async def read_events(event_log: EventLog, topic: str, since: dict[int, int] | None = None) -> list[Exposure | Outcome]:
    """Every event of a topic, all partitions, from the start or from ``since`` (partition -> next
    offset, updated in place); an unknown topic reads as empty."""
    from hotpath.errors import NotFound

    try:
        n = await event_log.partitions(topic)
    except NotFound:
        return []
    out: list[Exposure | Outcome] = []
    for p in range(n):
        end = await event_log.end_offset(topic, p)
        off = since.get(p, 0) if since is not None else 0
        while off < end:
            recs = await event_log.read(topic, p, off, max_records=5000)
            if not recs:
                break
            out.extend(decode(r.value, f"{topic}:{r.partition}:{r.offset}") for r in recs)
            off = recs[-1].offset + 1
        if since is not None:
            since[p] = off
    return out


class ExposureBuffer:
    """Collects exposures on the request path (a lock and a list append: ~1 us) and appends them to
    the event log in batches from a background thread with its own event loop.

    A failed append keeps the batch and retries on the next flush; while the log stays down at most
    ``max_pending`` exposures are held, and what comes past that is dropped and counted
    (``dropped``, logged), never lost silently. :meth:`close` flushes what is left."""

    def __init__(
        self,
        event_log: EventLog,
        topic: str = "ab.exposures",
        *,
        partitions: int = 4,
        flush_interval_s: float = 0.5,
        flush_batch: int = 2000,
        max_pending: int = 200_000,
        clock=time.time,
    ) -> None:
        self.log, self.topic, self.partitions = event_log, topic, partitions
        self.flush_interval_s, self.flush_batch, self.max_pending = flush_interval_s, flush_batch, max_pending
        self.clock = clock
        self._pending: list[tuple] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self.written = 0
        self.dropped = 0
        self.failures = 0
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="ab-exposures", daemon=True)
        self._thread.start()

    @classmethod
    def from_settings(cls, settings, event_log: EventLog) -> "ExposureBuffer":
        ab = settings.ab
        return cls(event_log, ab.exposure_topic, partitions=ab.topic_partitions, flush_interval_s=ab.flush_interval_s,
                   flush_batch=ab.flush_batch, max_pending=ab.max_pending)  # fmt: skip

    def record(self, user_id: str, widget: str, assignment: Assignment, ts_ms: int | None = None) -> None:
        """Note that ``user_id`` was served ``assignment`` on ``widget`` (no I/O here)."""
        if not assignment.arms:
            return
        if ts_ms is None:
            ts_ms = int(self.clock() * 1000)
        item = (user_id, ts_ms, widget, assignment.arms)
        with self._lock:
            if len(self._pending) >= self.max_pending:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 10_000 == 0:
                    log.warning("exposure buffer full (%d held): %d exposures dropped so far", self.max_pending, self.dropped)
                return
            self._pending.append(item)
            n = len(self._pending)
        if n == self.flush_batch:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        created = False
        unsent: list[EventIn] = []  # encoded once: a retry resends the same ids (dedupe downstream)
        try:
            while True:
                self._wake.wait(self.flush_interval_s)
                self._wake.clear()
                stopping = self._stop
                with self._lock:
                    batch, self._pending = self._pending, []
                    self._busy = bool(batch) or bool(unsent)
                ok = True
                if batch or unsent:
                    try:
                        unsent.extend(self._encode(batch))
                        if not created:
                            loop.run_until_complete(self.log.create_topic(self.topic, self.partitions))
                            created = True
                        while unsent:
                            chunk = unsent[:5000]
                            loop.run_until_complete(self.log.append(self.topic, chunk))
                            del unsent[: len(chunk)]
                            self.written += len(chunk)
                    except Exception as exc:  # a control loop logs a failing step and goes on
                        ok = False
                        self.failures += 1
                        log.warning("%d exposures not written yet (will retry): %s", len(unsent), exc)
                        over = len(unsent) - self.max_pending
                        if over > 0:
                            del unsent[self.max_pending :]
                            self.dropped += over
                    finally:
                        self._busy = bool(unsent)
                if stopping:
                    if unsent:
                        log.error("%d exposures could not be written before shutdown", len(unsent))
                        self.dropped += len(unsent)
                    return
                if not ok:
                    time.sleep(min(2.0, self.flush_interval_s))
        finally:
            loop.close()

    @staticmethod
    def _encode(batch: Sequence[tuple]) -> list[EventIn]:
        events = []
        for user_id, ts_ms, widget, arms in batch:
            key = user_id.encode()
            for a in arms:
                d = {"type": "exposure", "id": new_id(), "user_id": user_id, "ts_ms": ts_ms, "widget": widget,
                     "experiment": a.experiment, "variant": a.variant}  # fmt: skip
                events.append(EventIn(orjson.dumps(d), key=key, timestamp_ms=ts_ms))
        return events

    def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until everything recorded so far is written (tests, the simulator, shutdown)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending and not self._busy:
                    return
            self._wake.set()
            time.sleep(0.005)
        raise StreamError(f"{len(self._pending)} exposures still pending after {timeout_s}s", hint="is the event log up?")

    def close(self, timeout_s: float = 10.0) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(timeout_s)
