"""Amplitude HTTP V2 client (``POST /2/httpapi``) with a bounded disk queue.

Events are first written to the queue (JSON-lines segment files, each written to a temporary name
and renamed, so a crash never leaves half a segment), then sent in batches; a segment is deleted
only once Amplitude accepted or rejected every event in it. While Amplitude is unreachable the
events wait in the queue, up to ``queue_max_bytes`` (past that :meth:`enqueue` raises
:class:`AmplitudeQueueFull`: the caller keeps its own position and tries again later).

Responses, as Amplitude documents them:

- ``200``: ``{"code": 200, "events_ingested": n, "payload_size_bytes": b, "server_upload_time": t}``.
- ``400``: ``{"code": 400, "error": "...", "missing_field": ..., "events_with_invalid_fields":
  {field: [index, ...]}, "events_with_missing_fields": {...}, "silenced_events": [...]}``: the named
  events are moved to ``rejected.jsonl`` beside the queue with the error, the rest are resent. A 400
  that names no event (a bad API key, a malformed body) stops the drain with an error; nothing is
  dropped.
- ``413`` (more than 2,000 events or 1 MB): the batch is split in two and each half sent.
- ``429`` (throttled) and ``5xx`` / connection errors: retried with exponential backoff and jitter,
  ``max_attempts`` times; then the drain stops and the events stay queued. Every event carries an
  ``insert_id``, so a retry of a batch Amplitude had in fact ingested creates no duplicate.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from hotpath.ab.settings import AmplitudeSettings
from hotpath.errors import BadInput, ConfigError, StreamError

__all__ = ["AmplitudeClient", "AmplitudeError", "AmplitudeQueueFull", "DrainReport"]

log = logging.getLogger(__name__)


class AmplitudeError(StreamError):
    """Amplitude refused a request in a way a retry cannot fix (e.g. a bad API key)."""


class AmplitudeQueueFull(StreamError):
    """The disk queue is at its size limit; nothing was added."""


@dataclass
class DrainReport:
    sent: int = 0
    """Events Amplitude accepted."""
    rejected: int = 0
    """Events Amplitude refused (400 naming them), kept in ``rejected.jsonl``."""
    requests: int = 0
    retries: int = 0
    splits: int = 0
    left_in_queue: int = 0
    stopped: str | None = None
    """Why the drain stopped before the queue was empty (unreachable, throttled, refused)."""
    statuses: dict[int, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in ("sent", "rejected", "requests", "retries", "splits", "left_in_queue", "stopped", "statuses")}


class _GiveUp(StreamError):
    """Internal: the drain stops here for now (unreachable / throttled); the events stay queued."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AmplitudeClient:
    def __init__(
        self,
        settings: AmplitudeSettings,
        api_key: str,
        queue_dir: Path | str,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not api_key:
            raise ConfigError("no Amplitude API key", hint=f"set {settings.api_key_env}")
        self.s = settings
        self.api_key = api_key
        self.dir = Path(queue_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._http = httpx.Client(timeout=settings.timeout_s, transport=transport)
        self._seq = self._last_seq()

    @classmethod
    def from_settings(cls, settings, **kw) -> "AmplitudeClient":
        a = settings.ab.amplitude
        return cls(a, os.environ.get(a.api_key_env, ""), settings.in_runtime(a.queue_dir), **kw)

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ queue
    def _segments(self) -> list[Path]:
        return sorted(self.dir.glob("seg-*.jsonl"))

    def _last_seq(self) -> int:
        segs = self._segments()
        return int(segs[-1].stem.split("-")[1]) if segs else 0

    def queued_bytes(self) -> int:
        return sum(p.stat().st_size for p in self._segments())

    def queued_events(self) -> int:
        n = 0
        for p in self._segments():
            with p.open("rb") as f:
                n += sum(1 for line in f if line.strip())
        return n

    def _write(self, path: Path, events: Sequence[dict]) -> None:
        tmp = path.with_suffix(".tmp")
        with tmp.open("w") as f:
            for e in events:
                f.write(json.dumps(e, separators=(",", ":")) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def enqueue(self, events: Sequence[dict]) -> int:
        """Add events (Amplitude's event shape, each with an ``insert_id``) to the disk queue."""
        if not events:
            return 0
        for i, e in enumerate(events):
            if not e.get("insert_id") or not e.get("event_type") or not (e.get("user_id") or e.get("device_id")):
                raise BadInput(f"event {i} needs event_type, user_id (or device_id) and insert_id", field="events")
        size = sum(len(json.dumps(e, separators=(",", ":"))) + 1 for e in events)
        used = self.queued_bytes()
        if used + size > self.s.queue_max_bytes:
            raise AmplitudeQueueFull(
                f"Amplitude queue {self.dir} holds {used:,} bytes; {size:,} more would pass the {self.s.queue_max_bytes:,} limit",
                hint="Amplitude is unreachable or slow: run `hotpath ab export` again once it answers",
            )
        n = self.s.batch_events
        for i in range(0, len(events), n):
            self._seq += 1
            self._write(self.dir / f"seg-{self._seq:012d}.jsonl", events[i : i + n])
        return len(events)

    def _reject(self, events: Sequence[dict], error: str) -> None:
        with (self.dir / "rejected.jsonl").open("a") as f:
            for e in events:
                f.write(json.dumps({"error": error, "event": e}, separators=(",", ":")) + "\n")

    # ------------------------------------------------------------------ sending
    def drain(self) -> DrainReport:
        """Send every queued segment in order; stop at the first that cannot be delivered now."""
        rep = DrainReport()
        for seg in self._segments():
            events = [json.loads(line) for line in seg.read_text().splitlines() if line.strip()]
            try:
                left = self._deliver(events, rep)
            except _GiveUp as exc:
                rep.stopped = exc.reason
                break
            except AmplitudeError:
                rep.left_in_queue = self.queued_events()
                raise
            if left:
                self._write(seg, left)
            else:
                seg.unlink()
        rep.left_in_queue = self.queued_events()
        return rep

    def _deliver(self, events: list[dict], rep: DrainReport) -> list[dict]:
        """Send ``events`` (splitting on 413); return [] or raise (the segment stays as it was)."""
        if not events:
            return []
        status, body = self._post(events, rep)
        if status == 200:
            rep.sent += len(events)
            return []
        if status == 413:
            if len(events) == 1:
                self._reject(events, "413: a single event is over Amplitude's request size limit")
                rep.rejected += 1
                return []
            rep.splits += 1
            half = len(events) // 2
            self._deliver(events[:half], rep)
            return self._deliver(events[half:], rep)
        # 400
        bad: set[int] = set()
        for key in ("events_with_invalid_fields", "events_with_missing_fields"):
            for idx in (body.get(key) or {}).values():
                bad.update(int(i) for i in idx)
        bad.update(int(i) for i in body.get("silenced_events") or [])
        bad = {i for i in bad if 0 <= i < len(events)}
        if not bad:
            raise AmplitudeError(f"Amplitude refused the request: {body.get('error') or body}" + (f" (missing {body['missing_field']})" if body.get("missing_field") else ""))
        self._reject([events[i] for i in sorted(bad)], f"400: {body.get('error', '')}")
        rep.rejected += len(bad)
        return self._deliver([e for i, e in enumerate(events) if i not in bad], rep)

    def _post(self, events: list[dict], rep: DrainReport) -> tuple[int, dict]:
        payload = {"api_key": self.api_key, "events": events, "options": {"min_id_length": 1}}
        delay = self.s.backoff_s
        last = ""
        for attempt in range(self.s.max_attempts):
            if attempt:
                rep.retries += 1
                self._sleep(min(self.s.max_backoff_s, delay) * (0.5 + self._rng.random()))
                delay *= 2
            rep.requests += 1
            try:
                r = self._http.post(self.s.url, json=payload)
            except httpx.HTTPError as exc:
                last = f"Amplitude unreachable: {type(exc).__name__}: {exc}"
                continue
            rep.statuses[r.status_code] = rep.statuses.get(r.status_code, 0) + 1
            try:
                body = r.json() if r.content else {}
            except ValueError:
                body = {"error": r.text[:200]}
            if r.status_code in (200, 400, 413):
                return r.status_code, body if isinstance(body, dict) else {}
            if r.status_code == 429:
                last = f"Amplitude throttled (429): {body.get('error', '') if isinstance(body, dict) else ''}"
                continue
            if r.status_code >= 500:
                last = f"Amplitude answered {r.status_code}"
                continue
            raise AmplitudeError(f"Amplitude answered {r.status_code}: {r.text[:200]}")
        raise _GiveUp(f"{last} after {self.s.max_attempts} attempts; the events stay queued")
