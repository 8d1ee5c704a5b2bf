"""Demo view events over the recommendation catalog, so that ``make run``'s related endpoint
visibly changes as co-views stream in.

The co-view job keys its state by category; for the serving app to notice, the events must use the
catalog's own leaf ids (``dDD.sSS.lLL``) and users (``u{n}``). Every ``period_s`` of wall time a
new *trend* starts: each trending leaf gets a trend partner, a leaf of another department that
is not its planted partner. Sessions of catalog users view masters of a trending leaf and of its
current partner, a few seconds (event time) apart. Once their windows fire, ``cat:co_view:{leaf}``
ranks the partner first, and ``/v1/recs/related`` for a master of that leaf starts showing the
partner's best sellers with the ``co_view`` signal; a period later the next partner takes over.

The leaf of the example master the app prints (``master_uuid(3)``) always trends, so the printed
example call is the one that changes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from hotpath.coview.events import ViewEvent
from hotpath.recs.catalog import Catalog, master_uuid, pid_uuid

__all__ = ["CatalogFeed", "FeedSettings"]


@dataclass(frozen=True, slots=True)
class FeedSettings:
    sessions_per_tick: int = 100
    """Sessions generated per call of :meth:`CatalogFeed.tick` (the feeder calls it every second)."""
    period_s: int = 60
    """Wall seconds a trend lasts before every trending leaf moves on to its next partner."""
    trending_leaves: int = 8
    """How many leaves trend at once (the example master's leaf and the most popular ones)."""
    views_per_leaf: tuple[int, int] = (2, 4)
    gap_ms: tuple[int, int] = (2_000, 20_000)
    """Event-time gap between two views of a session."""
    example_master: int = 3


class CatalogFeed:
    """Deterministic per tick: ``tick(n, start_ms, span_ms)`` gives the same events for the same
    arguments (and catalog)."""

    def __init__(self, catalog: Catalog, settings: FeedSettings | None = None) -> None:
        self.catalog = catalog
        self.settings = settings or FeedSettings()
        first = int(catalog.master_leaf[self.settings.example_master % catalog.n_masters])
        # Leaves by how much they sell (the catalog's popularity), the example leaf first.
        sales = [(-int(catalog.sales[catalog.leaf_start[c]:catalog.leaf_start[c + 1]].sum()), c)
                 for c in range(catalog.n_leaves) if catalog.leaf_start[c + 1] > catalog.leaf_start[c]]
        ranked = [c for _, c in sorted(sales) if c != first]
        self.leaves: list[int] = [first, *ranked[: max(0, self.settings.trending_leaves - 1)]]

    def partner(self, leaf: int, period: int) -> int:
        """The trend partner of ``leaf`` during ``period``: never itself nor a category the catalog
        already planted as co-viewed with it (so what the demo shows can only come from the
        stream), and it changes from one period to the next."""
        cat = self.catalog
        n = cat.n_leaves
        if n < 3:
            return (leaf + 1) % n
        per_dept = max(1, n // max(1, cat.settings.departments))
        step = (per_dept + 1 + 7 * period) % n or 1
        cand = (leaf + step) % n
        planted = {leaf, cat.partner(leaf), *(dst for dst, _ in cat.coview_of(leaf))}
        for _ in range(n):
            if cand not in planted and self._has_masters(cand):
                return cand
            cand = (cand + 1) % n
        return (leaf + 1) % n  # a catalog too small to have a leaf that is not planted

    def _has_masters(self, leaf: int) -> bool:
        return bool(self.catalog.leaf_start[leaf + 1] > self.catalog.leaf_start[leaf])

    def period_of(self, tick: int, tick_s: float = 1.0) -> int:
        return int(tick * tick_s) // self.settings.period_s

    def trends(self, period: int) -> dict[str, str]:
        """Trending leaf id -> its partner's id during ``period`` (what the demo should show)."""
        ids = self.catalog.cat_ids
        return {ids[leaf]: ids[self.partner(leaf, period)] for leaf in self.leaves}

    def tick(self, tick: int, start_ms: int, span_ms: int) -> list[ViewEvent]:
        """The sessions of one tick, their views spread over ``[start_ms, start_ms + span_ms)`` and
        sorted by event time."""
        s, cat = self.settings, self.catalog
        rng = random.Random(tick * 1_000_003 + 17)
        period = self.period_of(tick)
        users = max(1, len(cat.user_views))
        events: list[ViewEvent] = []
        for k in range(s.sessions_per_tick):
            user = f"u{rng.randrange(users)}"
            session = f"{user}-t{tick}-{k}"
            leaf = self.leaves[rng.randrange(len(self.leaves))]
            pair = (leaf, self.partner(leaf, period))
            ts = start_ms + rng.randrange(max(1, span_ms))
            for which in pair:
                for _ in range(rng.randint(*s.views_per_leaf)):
                    events.append(self._view(user, session, which, ts, rng))
                    ts += rng.randint(*s.gap_ms)
        events.sort(key=lambda e: e.ts)
        return events

    def _view(self, user: str, session: str, leaf: int, ts: int, rng: random.Random) -> ViewEvent:
        cat = self.catalog
        lo, hi = int(cat.leaf_start[leaf]), int(cat.leaf_start[leaf + 1])
        # Popular masters of the leaf are viewed more (rank 0 sells best): a geometric pick.
        i = lo + min(hi - lo - 1, int(rng.expovariate(0.3)))
        pids = cat.pids_of(i)
        pid = pid_uuid(pids.start) if len(pids) else ""
        return ViewEvent("view", user, session, cat.cat_ids[leaf], ts, pid=pid, master=master_uuid(i))
