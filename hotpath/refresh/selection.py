"""Which masters a run refreshes (the *hot* set), and which rows are stale.

Hot = recently viewed or ordered + queued by the serving path (``recs:refresh_queue``) + new or
changed products (their title is not the one last embedded) + the oldest stale rows, up to a cap.
A micro-batch leaves out the recent activity: it covers new/changed products and the queue (and
stale rows), between daily runs. Everything else is *cold* and is not written at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["HotSet", "select_hot", "stale_masters"]

REASONS = ("recent", "queued", "changed", "stale")


@dataclass
class HotSet:
    """The hot masters in a stable order (first reason first, then as given) with their reasons."""

    masters: list[str] = field(default_factory=list)
    reasons: dict[str, set[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.masters)

    def __contains__(self, mid: object) -> bool:
        return mid in self.reasons

    def counts(self) -> dict[str, int]:
        out = {r: 0 for r in REASONS}
        for rs in self.reasons.values():
            for r in rs:
                out[r] += 1
        return out

    def add(self, mids: Iterable[str], reason: str) -> None:
        for m in mids:
            rs = self.reasons.get(m)
            if rs is None:
                self.reasons[m] = {reason}
                self.masters.append(m)
            else:
                rs.add(reason)


def stale_masters(
    inference_ts: Mapping[str, float], now: float, stale_after_days: float, *, limit: int | None = None
) -> list[str]:
    """Masters whose row is older than ``stale_after_days`` (epoch-second stamps), oldest first."""
    cutoff = now - stale_after_days * 86400.0
    old = sorted((ts, m) for m, ts in inference_ts.items() if ts < cutoff)
    if limit is not None:
        old = old[:limit]
    return [m for _, m in old]


def select_hot(
    *,
    known: Iterable[str],
    recent: Iterable[str] = (),
    queued: Iterable[str] = (),
    changed: Iterable[str] = (),
    stale: Iterable[str] = (),
    micro_batch: bool = False,
) -> tuple[HotSet, list[str]]:
    """The hot set among ``known`` masters, and the ids that were asked for but are not in the catalog.

    ``micro_batch`` drops the recent-activity source (new/changed products, the queue and stale rows stay).
    """
    catalog = known if isinstance(known, (set, frozenset, dict)) else set(known)
    hot = HotSet()
    unknown: list[str] = []
    sources = [("queued", queued), ("changed", changed), ("stale", stale)]
    if not micro_batch:
        sources.insert(0, ("recent", recent))
    for reason, mids in sources:
        ok = []
        for m in mids:
            (ok if m in catalog else unknown).append(m)
        hot.add(ok, reason)
    return hot, list(dict.fromkeys(unknown))
