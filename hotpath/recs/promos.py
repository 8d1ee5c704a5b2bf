"""The write path of volatile signals: promos, stock, ad bids and prices of a pid, as events.

Events arrive on the ``promos`` topic of the event log, keyed by pid (so one pid's events share a
partition, in order), valued by JSON matching :class:`PromoEvent` (``PromoEvent.model_json_schema()``
is the schema). :class:`PromoApplier` writes each valid event into Redis (``promo:{pid}``, and
``pid:attr:{pid}`` for a price) and announces it (change log + invalidation channel), so replicas
reload that master within milliseconds. A record that fails validation goes to the dead-letter topic
(``promos.dlq``) with the reason and its source position; nothing is dropped silently.

Ordering: every write stores the event's ``(partition, offset)`` in the promo hash, and an event is
applied only when its offset is past the stored one. A replay of the topic (a consumer restarted from
an older checkpoint, or from the start after Redis lost its data) therefore never brings back an old
price or stock state: only events newer than what Redis holds are applied. The admin endpoint
(``PUT /v1/recs/promos/{pid}``) appends to the same topic, so manual changes follow the same order.

Plain and synchronous: the caller reads the log and passes records in.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hotpath.errors import BadInput
from hotpath.recs.model import Keys
from hotpath.recs.settings import RecsSettings
from hotpath.stores.base import HotCache
from hotpath.streams.base import LogRecord

__all__ = ["PromoEvent", "PromoApplier", "ApplyReport", "parse_promo", "PROMO_FIELDS", "dlq_value"]

PROMO_FIELDS = ("boost", "out_of_stock", "ad_bid", "flash_sale")
_PID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")


class PromoEvent(BaseModel):
    """One change of a pid's volatile signals; fields left out keep their current value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pid: str = Field(min_length=1, max_length=64)
    boost: float | None = Field(None, ge=0.0, le=100.0)
    out_of_stock: bool | None = None
    ad_bid: float | None = Field(None, ge=0.0, le=1000.0)
    flash_sale: bool | None = None
    price: float | None = Field(None, ge=0.0)
    ts: float | None = None
    """When the change was made (epoch s; informational)."""

    @field_validator("pid")
    @classmethod
    def _pid_chars(cls, v: str) -> str:
        if not set(v) <= _PID_CHARS:
            raise ValueError("pid may hold letters, digits and - _ . : only")
        return v

    @field_validator("boost", "ad_bid", "price")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    def changes(self) -> dict[str, str]:
        """The promo-hash fields this event sets (text, as the serving path parses them)."""
        out = {}
        if self.boost is not None:
            out["boost"] = repr(float(self.boost))
        if self.out_of_stock is not None:
            out["out_of_stock"] = "1" if self.out_of_stock else "0"
        if self.ad_bid is not None:
            out["ad_bid"] = repr(float(self.ad_bid))
        if self.flash_sale is not None:
            out["flash_sale"] = "1" if self.flash_sale else "0"
        return out


def parse_promo(value: bytes | str, *, key: bytes | None = None) -> PromoEvent:
    """A record's value as a :class:`PromoEvent`, or :class:`BadInput` naming the first problem.
    A record's key, when there is one, must be its pid (the partitioning depends on it)."""
    try:
        ev = PromoEvent.model_validate_json(value)
    except ValidationError as exc:
        e = exc.errors()[0]
        where = ".".join(str(x) for x in e.get("loc", ())) or "value"
        raise BadInput(f"promo event: {where}: {e['msg']}", field=where) from None
    if key is not None and key.decode("utf-8", "replace") != ev.pid:
        raise BadInput(f"promo event: key {key!r} is not its pid {ev.pid!r}", field="key")
    if not ev.changes() and ev.price is None:
        raise BadInput("promo event: changes nothing (no boost, out_of_stock, ad_bid, flash_sale or price)", field="value")
    return ev


def dlq_value(rec: LogRecord, reason: str) -> bytes:
    """The dead-letter record of a bad one: its source position, the reason, the raw value."""
    return json.dumps({
        "topic": rec.topic, "partition": rec.partition, "offset": rec.offset, "reason": reason,
        "key": rec.key.decode("utf-8", "replace") if rec.key is not None else None,
        "value": rec.value.decode("utf-8", "replace"),
    }).encode()  # fmt: skip


@dataclass
class ApplyReport:
    applied: int = 0
    skipped_old: int = 0
    """Events at or before the offset the pid's hash already holds (a replay)."""
    bad: list[tuple[LogRecord, str]] = field(default_factory=list)
    """Records that failed validation, with the reason: the caller sends them to the DLQ."""


class PromoApplier:
    """Applies promo events (log records) to the hot cache, in per-pid offset order."""

    def __init__(self, settings: RecsSettings, cache: HotCache) -> None:
        from hotpath.recs.loader import announce

        self.settings, self.cache = settings, cache
        self.keys = Keys(settings.key_prefix)
        self._announce = announce

    def apply(self, records: Sequence[LogRecord]) -> ApplyReport:
        rep = ApplyReport()
        good: list[tuple[LogRecord, PromoEvent]] = []
        for rec in records:
            try:
                good.append((rec, parse_promo(rec.value, key=rec.key)))
            except BadInput as exc:
                rep.bad.append((rec, exc.message))
        if not good:
            return rep
        pids = list(dict.fromkeys(ev.pid for _, ev in good))
        k = self.keys
        held = self.cache.hgetall_many([k.promo(p) for p in pids])
        last = {p: _position(h) for p, h in zip(pids, held)}
        for rec, ev in good:
            pos = (rec.partition, rec.offset)
            prev = last.get(ev.pid)
            if prev is not None and prev[0] == rec.partition and rec.offset <= prev[1]:
                rep.skipped_old += 1
                continue
            fields = ev.changes()
            fields["partition"], fields["offset"] = str(rec.partition), str(rec.offset)
            self.cache.hset(k.promo(ev.pid), fields)
            if ev.price is not None:
                self.cache.hset(k.attr(ev.pid), {"price": repr(float(ev.price))})
            last[ev.pid] = pos
            self._announce(self.cache, self.settings, f"pid:{ev.pid}")
            rep.applied += 1
        return rep


def _position(h: dict[str, str]) -> tuple[int, int] | None:
    try:
        return int(h["partition"]), int(h["offset"])
    except (KeyError, ValueError):
        return None
