"""Synthetic view events with co-view structure planted on purpose.

Categories ``c0000`` .. are split into *clusters* of ``cluster_size`` (the planted structure: each
category's planted related keys are the other members of its cluster) and a tail of noise
categories. Each user session picks one cluster and views several of its members a few seconds
to a minute apart, plus a few noise views drawn with Zipf-like popularity; with ``order_fraction``
some sessions end with an order of one of the categories viewed. Event times move
forward through ``span_ms``; with ``jitter_ms`` events arrive slightly out of order, with
``late_fraction`` some arrive far too late, with ``poison_fraction`` some are not valid events.
Deterministic for a given seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from hotpath.coview.events import ViewEvent

__all__ = ["GeneratedEvents", "generate", "encode_fast", "POISON_SAMPLES"]

POISON_SAMPLES: tuple[bytes, ...] = (
    b"{not json",
    b'{"type":"view","cat":"c1","ts":1767225600000}',  # missing user
    b'{"type":"view","user":"u1","cat":"c1","ts":12}',  # absurd timestamp
    b'["a","list"]',
    b'{"type":"teleport","user":"u1","cat":"c1","ts":1767225600000}',
)


@dataclass
class GeneratedEvents:
    events: list[ViewEvent]
    """In arrival order (event time order, give or take jitter and late events)."""
    planted: dict[str, set[str]]
    """Category -> the categories planted as co-viewed with it."""
    poison: list[tuple[int, bytes]] = field(default_factory=list)
    """``(position, raw bytes)``: invalid events to insert before ``events[position]``."""

    def raw(self) -> Iterator[tuple[bytes | None, bytes]]:
        """``(key, value)`` of every record in arrival order, poisoned ones included."""
        poison = sorted(self.poison)
        j = 0
        for i, ev in enumerate(self.events):
            while j < len(poison) and poison[j][0] <= i:
                yield b"poison", poison[j][1]
                j += 1
            yield ev.user.encode(), encode_fast(ev)
        for _, raw in poison[j:]:
            yield b"poison", raw


def encode_fast(ev: ViewEvent) -> bytes:
    """:func:`encode_event` for generated ids (no characters JSON would escape), several times faster."""
    if ev.type == "watermark":
        return b'{"type":"watermark","ts":%d}' % ev.ts
    extra = b',"master":"%s"' % ev.master.encode() if ev.master else b""
    if ev.sent_ms:
        extra += b',"sent_ms":%d' % ev.sent_ms
    if ev.type == "order" and ev.qty != 1:
        extra += b',"qty":%d' % ev.qty
    return b'{"type":"%s","user":"%s","session":"%s","cat":"%s","ts":%d,"pid":"%s"%s}' % (
        ev.type.encode(), ev.user.encode(), ev.session.encode(), ev.cat.encode(), ev.ts, ev.pid.encode(), extra,
    )


def generate(
    *,
    sessions: int = 2000,
    clusters: int = 10,
    cluster_size: int = 21,
    noise_cats: int = 500,
    views_per_session: tuple[int, int] = (4, 9),
    noise_per_session: tuple[int, int] = (0, 2),
    users: int | None = None,
    start_ms: int = 1_767_225_600_000,  # 2026-01-01T00:00:00Z
    span_ms: int = 2 * 3_600_000,
    gap_ms: tuple[int, int] = (5_000, 60_000),
    jitter_ms: int = 0,
    late_fraction: float = 0.0,
    late_by_ms: int = 3_600_000,
    poison_fraction: float = 0.0,
    order_fraction: float = 0.0,
    seed: int = 7,
) -> GeneratedEvents:
    rng = random.Random(seed)
    n_users = users or sessions
    planted: dict[str, set[str]] = {}
    cluster_members: list[list[str]] = []
    for c in range(clusters):
        members = [f"c{c * cluster_size + i:04d}" for i in range(cluster_size)]
        cluster_members.append(members)
        for m in members:
            planted[m] = set(members) - {m}
    noise = [f"n{i:04d}" for i in range(noise_cats)]
    weights = [1.0 / (i + 1) for i in range(noise_cats)]
    events: list[ViewEvent] = []
    for s in range(sessions):
        user = f"u{rng.randrange(n_users):06d}" if users else f"u{s:06d}"
        members = cluster_members[rng.randrange(clusters)] if clusters else []
        t = start_ms + rng.randrange(max(1, span_ms))
        cats = rng.sample(members, min(len(members), rng.randint(*views_per_session))) if members else []
        if noise:
            cats += rng.choices(noise, weights=weights, k=rng.randint(*noise_per_session))
        rng.shuffle(cats)
        for cat in cats:
            events.append(ViewEvent("view", user, user, cat, t, pid=f"p{cat}-{rng.randrange(50)}"))
            t += rng.randint(*gap_ms)
        if order_fraction and cats and rng.random() < order_fraction:  # the session ends with an order
            cat = rng.choice(cats)
            k = rng.randrange(5)
            events.append(ViewEvent("order", user, user, cat, t, pid=f"p{cat}-{k}", master=f"m{cat}-{k}",
                                    qty=rng.randint(1, 3)))
    arrival = [ev.ts + (rng.randrange(jitter_ms) if jitter_ms else 0) for ev in events]
    for i in range(len(events)):
        if late_fraction and rng.random() < late_fraction:
            arrival[i] = events[i].ts + late_by_ms
    order = sorted(range(len(events)), key=lambda i: (arrival[i], i))
    events = [events[i] for i in order]
    poison = []
    if poison_fraction:
        for i in range(len(events)):
            if rng.random() < poison_fraction:
                poison.append((i, POISON_SAMPLES[rng.randrange(len(POISON_SAMPLES))]))
    return GeneratedEvents(events, planted, poison)
