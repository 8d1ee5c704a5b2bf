"""Event-time windows of one event-log partition: sliding or session, a watermark, lateness.

A :class:`PartitionWindower` is the keyed state of one partition for the co-view operator. It
groups the *keys* (categories) each *session key* (user) viewed into windows, and when the
watermark passes a window's end plus the allowed lateness, the window *fires*: its *basket* (its
distinct keys) is emitted for the window's *epoch* (``end // slide``), where every ordered pair of
distinct keys in it adds 1 to that pair's count (:func:`pairs_of`, :mod:`hotpath.coview.pairs`).

Semantics (what the tests and the brute-force reference rely on):

- **Sliding** (size ``S``, slide ``D``, ``S`` a multiple of ``D``): an event at ``t`` belongs to the
  windows ``[kD, kD+S)`` that contain it. **Session** (gap ``G``): events of one session key less
  than ``G`` apart share a window ``[first, last+G)``; overlapping sessions merge.
- **Watermark** of the partition: ``max(newest event time - delay, newest punctuation)``; with
  ``idle_advance_ms`` it also advances with the injectable wall clock while the partition is idle.
- A window fires once ``watermark >= end + lateness``. An event none of whose windows is still
  open is **late**: policy ``drop`` counts it and returns it to the caller (the late stream);
  ``apply`` counts it and re-times it to the watermark.
- :meth:`complete_epoch`: every window of this partition that will ever fire from now on has an
  epoch greater than it, so a consumer may apply epochs up to it (the minimum over partitions).

Everything depends only on the sequence of events of the partition (and the clock, only when idle
advance is on), so replaying the same offsets rebuilds the same state: the basis of exactly-once.
"""

from __future__ import annotations

import heapq
import pickle
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["WindowSpec", "PartitionWindower", "NO_EPOCH", "Pairs", "pairs_of"]

NO_EPOCH = -(1 << 62)
"""Complete epoch of a partition that has seen nothing yet (blocks everything downstream)."""

Pairs = Counter
"""``Counter[(key, related_key)] -> count`` for one epoch."""

ACCEPTED: Literal["ok"] = "ok"
LATE_DROPPED: Literal["late_dropped"] = "late_dropped"
LATE_APPLIED: Literal["late_applied"] = "late_applied"


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """Window parameters in ms (see :meth:`StreamingSettings.window_spec`)."""

    kind: Literal["sliding", "session"] = "sliding"
    size_ms: int = 900_000
    slide_ms: int = 300_000
    gap_ms: int = 1_800_000
    delay_ms: int = 5_000
    lateness_ms: int = 60_000
    late_policy: Literal["drop", "apply"] = "drop"
    max_keys: int = 50
    idle_advance_ms: int | None = None

    def __post_init__(self) -> None:
        if self.kind == "sliding" and (self.size_ms % self.slide_ms or self.size_ms < self.slide_ms):
            raise ValueError("sliding window size must be a whole multiple of the slide")

    def epoch_of_end(self, end_ms: int) -> int:
        """The decay epoch a window ending at ``end_ms`` belongs to."""
        return end_ms // self.slide_ms

    def sliding_starts(self, t: int) -> range:
        """Starts of the sliding windows that contain ``t`` (ascending)."""
        d = self.slide_ms
        last = (t // d) * d
        return range(last - self.size_ms + d, last + d, d)


def pairs_of(keys: list[str], into: Counter, weight: int = 1) -> None:
    """Add every ordered pair of distinct keys (``keys`` holds no duplicates)."""
    for a in keys:
        for b in keys:
            if a is not b and a != b:
                into[(a, b)] += weight


class _Session:
    __slots__ = ("sid", "start", "last", "keys")

    def __init__(self, sid: int, start: int, last: int, keys: dict[str, None]) -> None:
        self.sid, self.start, self.last, self.keys = sid, start, last, keys


class PartitionWindower:
    """Windows, watermark and fired pair counts of one partition. Plain data; see the module doc."""

    def __init__(self, spec: WindowSpec, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self.clock = clock
        self.max_ts: int | None = None
        self.punct: int | None = None
        self.idle_wm: int | None = None
        self.last_event_wall: float | None = None
        self._fire: list[tuple[int, int, str, int]] = []  # (end, seq, session key, start | sid)
        self._seq = 0
        self._sliding: dict[str, dict[int, dict[str, None]]] = {}
        self._sessions: dict[str, list[_Session]] = {}
        self.out: dict[int, list[tuple[str, ...]]] = {}
        self.counts: Counter = Counter()

    # ---------------------------------------------------------------- watermark
    @property
    def watermark(self) -> int | None:
        wm = None if self.max_ts is None else self.max_ts - self.spec.delay_ms
        for other in (self.punct, self.idle_wm):
            if other is not None and (wm is None or other > wm):
                wm = other
        return wm

    def complete_epoch(self) -> int:
        """Epochs up to this one will get no more pair counts from this partition."""
        wm = self.watermark
        if wm is None:
            return NO_EPOCH
        limit = wm - self.spec.lateness_ms
        if self.spec.kind == "sliding":
            # Sliding windows end on multiples of the slide, and every window ending at or before
            # ``limit`` has fired and can never open again (events skip such windows): the epoch
            # ``limit // slide`` itself is complete.
            return limit // self.spec.slide_ms
        return limit // self.spec.slide_ms - 1  # session windows end anywhere inside an epoch

    def punctuate(self, ts: int) -> None:
        """A watermark record: the partition promises no more events before ``ts`` (on time)."""
        if self.punct is None or ts > self.punct:
            self.punct = ts
        self._fire_ready()

    def tick(self) -> None:
        """Idle advance (only when ``spec.idle_advance_ms`` is set): call now and then."""
        adv = self.spec.idle_advance_ms
        if adv is None or self.last_event_wall is None or self.max_ts is None:
            return
        idle_ms = int((self.clock() - self.last_event_wall) * 1000)
        if idle_ms >= adv:
            cand = self.max_ts - self.spec.delay_ms + idle_ms
            if self.idle_wm is None or cand > self.idle_wm:
                self.idle_wm = cand
                self._fire_ready()

    # ---------------------------------------------------------------- events
    def on_event(self, session: str, key: str, ts: int) -> str:
        """Add one view; returns ``ok``, ``late_dropped`` or ``late_applied``."""
        spec = self.spec
        if spec.idle_advance_ms is not None:
            self.last_event_wall = self.clock()
            self.idle_wm = None  # fresh events: the event-time watermark rules again
        wm = self.watermark
        status = ACCEPTED
        if spec.kind == "sliding":
            if wm is not None and (ts // spec.slide_ms) * spec.slide_ms + spec.size_ms + spec.lateness_ms <= wm:
                status = self._late()
                if status == LATE_DROPPED:
                    return status
                ts = wm
            self._add_sliding(session, key, ts, wm)
        else:
            if wm is not None and ts + spec.gap_ms + spec.lateness_ms <= wm:
                status = self._late()
                if status == LATE_DROPPED:
                    return status
                ts = wm
            self._add_session(session, key, ts)
        if self.max_ts is None or ts > self.max_ts:
            self.max_ts = ts
            self._fire_ready()
        return status

    def batch_ok(self) -> bool:
        """Whether :meth:`on_events` may be used (sliding windows, no idle advance)."""
        return self.spec.kind == "sliding" and self.spec.idle_advance_ms is None

    def on_events(self, events: list[tuple[str, str, int]]) -> list[int]:
        """:meth:`on_event` for many views (only when :meth:`batch_ok`); returns the indices of the
        late-dropped ones. The same state results: windows ready to fire are skipped by the
        per-event checks either way, and fire once at the end instead of after each event."""
        spec = self.spec
        d, size, lat, maxk = spec.slide_ms, spec.size_ms, spec.lateness_ms, spec.max_keys
        delay = spec.delay_ms
        drop = spec.late_policy == "drop"
        sliding, fire, push = self._sliding, self._fire, heapq.heappush
        max_ts, floor = self.max_ts, self.punct
        if self.idle_wm is not None and (floor is None or self.idle_wm > floor):
            floor = self.idle_wm
        seq = self._seq
        dropped: list[int] = []
        applied = 0

        def limit_at(max_ts: int | None) -> int | None:
            """``watermark - lateness`` (None without a watermark); changes only with ``max_ts``."""
            if max_ts is None:
                wm = floor
            else:
                wm = max_ts - delay
                if floor is not None and floor > wm:
                    wm = floor
            return None if wm is None else wm - lat

        limit = limit_at(max_ts)
        back = size - d  # a view at ``last`` (its slide's start) is in the windows starting at last-back .. last
        for i, (session, key, ts) in enumerate(events):
            last = ts - ts % d  # == (ts // d) * d
            if limit is not None and last + d <= limit:  # its earliest-ending window already fired
                if last + size <= limit:  # ... and its latest too: late
                    if drop:
                        dropped.append(i)
                        continue
                    applied += 1
                    ts = limit + lat  # the watermark
                    last = ts - ts % d
                wins = sliding.get(session)
                if wins is None:
                    wins = sliding[session] = {}
                for start in range(last - back, last + d, d):
                    end = start + size
                    if end <= limit:
                        continue  # that window already fired (or is about to)
                    keys = wins.get(start)
                    if keys is None:
                        keys = wins[start] = {}
                        seq += 1
                        push(fire, (end, seq, session, start))
                    if key not in keys and len(keys) < maxk:
                        keys[key] = None
            else:  # the usual case: every window of the view is still open
                wins = sliding.get(session)
                if wins is None:
                    wins = sliding[session] = {}
                for start in range(last - back, last + d, d):
                    keys = wins.get(start)
                    if keys is None:
                        keys = wins[start] = {}
                        seq += 1
                        push(fire, (start + size, seq, session, start))
                    if key not in keys and len(keys) < maxk:
                        keys[key] = None
            if max_ts is None or ts > max_ts:
                max_ts = ts
                limit = limit_at(max_ts)
        self._seq, self.max_ts = seq, max_ts
        if dropped:
            self.counts["late_dropped"] += len(dropped)
        if applied:
            self.counts["late_applied"] += applied
        self._fire_ready()
        return dropped

    def _late(self) -> str:
        if self.spec.late_policy == "drop":
            self.counts["late_dropped"] += 1
            return LATE_DROPPED
        self.counts["late_applied"] += 1
        return LATE_APPLIED

    def _add_sliding(self, session: str, key: str, ts: int, wm: int | None) -> None:
        spec = self.spec
        wins = self._sliding.get(session)
        if wins is None:
            wins = self._sliding[session] = {}
        limit = wm - spec.lateness_ms if wm is not None else None
        for start in spec.sliding_starts(ts):
            end = start + spec.size_ms
            if limit is not None and end <= limit:
                continue  # that window already fired
            keys = wins.get(start)
            if keys is None:
                keys = wins[start] = {}
                self._seq += 1
                heapq.heappush(self._fire, (end, self._seq, session, start))
            if key not in keys and len(keys) < spec.max_keys:
                keys[key] = None

    def _add_session(self, session: str, key: str, ts: int) -> None:
        spec = self.spec
        gap = spec.gap_ms
        open_ = self._sessions.get(session)
        if open_ is None:
            open_ = self._sessions[session] = []
        merged: _Session | None = None
        keep: list[_Session] = []
        for s in open_:
            if ts < s.last + gap and s.start < ts + gap:  # [start, last+gap) overlaps [ts, ts+gap)
                if merged is None:
                    merged = s
                else:
                    merged.start = min(merged.start, s.start)
                    merged.last = max(merged.last, s.last)
                    for k in s.keys:
                        if k not in merged.keys and len(merged.keys) < spec.max_keys:
                            merged.keys[k] = None
            else:
                keep.append(s)
        if merged is None:
            self._seq += 1
            merged = _Session(self._seq, ts, ts, {})
        else:
            merged.start = min(merged.start, ts)
            merged.last = max(merged.last, ts)
        if key not in merged.keys and len(merged.keys) < spec.max_keys:
            merged.keys[key] = None
        keep.append(merged)
        keep.sort(key=lambda s: s.start)
        self._sessions[session] = keep
        self._seq += 1
        heapq.heappush(self._fire, (merged.last + gap, self._seq, session, merged.sid))

    # ---------------------------------------------------------------- firing
    def _fire_ready(self) -> None:
        wm = self.watermark
        if wm is None:
            return
        spec = self.spec
        limit = wm - spec.lateness_ms
        fire = self._fire
        while fire and fire[0][0] <= limit:
            end, _, session, ident = heapq.heappop(fire)
            if spec.kind == "sliding":
                wins = self._sliding.get(session)
                keys = wins.pop(ident, None) if wins else None
                if wins is not None and not wins:
                    del self._sliding[session]
            else:
                keys = None
                open_ = self._sessions.get(session)
                if open_:
                    for i, s in enumerate(open_):
                        if s.sid == ident and s.last + spec.gap_ms == end:
                            keys = s.keys
                            del open_[i]
                            break
                    if not open_:
                        del self._sessions[session]
            if keys is None:
                continue  # superseded heap entry (a session grew or merged)
            self.counts["windows_fired"] += 1
            if len(keys) > 1:
                epoch = spec.epoch_of_end(end)
                bucket = self.out.get(epoch)
                if bucket is None:
                    bucket = self.out[epoch] = []
                bucket.append(tuple(keys))

    def drain(self) -> dict[int, list[tuple[str, ...]]]:
        """Baskets (distinct keys, view order) of the windows fired since the last drain, by epoch.
        Windows with a single key make no pairs and are left out."""
        out, self.out = self.out, {}
        return out

    def drain_pairs(self) -> dict[int, Counter]:
        """:meth:`drain` with every basket expanded into ordered pair counts."""
        out: dict[int, Counter] = {}
        for epoch, baskets in self.drain().items():
            c = out[epoch] = Counter()
            for basket in baskets:
                pairs_of(list(basket), c)
        return out

    def open_windows(self) -> int:
        if self.spec.kind == "sliding":
            return sum(len(w) for w in self._sliding.values())
        return sum(len(s) for s in self._sessions.values())

    # ---------------------------------------------------------------- snapshots
    def snapshot(self) -> bytes:
        """An immutable copy of the whole state (everything but the clock)."""
        sessions = {k: [(s.sid, s.start, s.last, list(s.keys)) for s in v] for k, v in self._sessions.items()}
        return pickle.dumps(
            (self.spec, self.max_ts, self.punct, self.idle_wm, self.last_event_wall, self._fire, self._seq,
             self._sliding, sessions, self.out, self.counts),
            protocol=pickle.HIGHEST_PROTOCOL,
        )

    @classmethod
    def restore(cls, blob: bytes, *, clock: Callable[[], float] = time.monotonic) -> PartitionWindower:
        (spec, max_ts, punct, idle_wm, last_wall, fire, seq, sliding, sessions, out, counts) = pickle.loads(blob)
        w = cls(spec, clock=clock)
        w.max_ts, w.punct, w.idle_wm, w.last_event_wall = max_ts, punct, idle_wm, last_wall
        w._fire, w._seq, w._sliding, w.out, w.counts = fire, seq, sliding, out, counts
        w._sessions = {k: [_Session(sid, a, b, dict.fromkeys(ks)) for sid, a, b, ks in v] for k, v in sessions.items()}
        return w
