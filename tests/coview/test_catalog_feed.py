"""The demo feed views the catalog's own leaves, pairs each trending leaf with a partner that
changes every period, and the co-view operator turns that into the partner ranked first."""

from __future__ import annotations

from collections import Counter

from hotpath.coview.catalog_feed import CatalogFeed, FeedSettings
from hotpath.coview.topk import CoviewState
from hotpath.coview.windows import PartitionWindower, WindowSpec
from hotpath.recs.catalog import generate, master_uuid
from hotpath.recs.settings import CatalogSettings

CAT = generate(CatalogSettings(masters=3000, users=200, departments=4, subcats_per_department=3, leaves_per_subcat=5))


def test_events_use_catalog_ids_and_the_example_leaf_trends() -> None:
    feed = CatalogFeed(CAT, FeedSettings(sessions_per_tick=50))
    events = feed.tick(0, 1_767_225_600_000, 60_000)
    leaf_ids = set(CAT.cat_ids)
    assert events and all(e.cat in leaf_ids for e in events)
    assert all(e.user.startswith("u") and int(e.user[1:]) < 200 for e in events)
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    example_leaf = CAT.cat_ids[int(CAT.master_leaf[3])]
    assert feed.leaves[0] == int(CAT.master_leaf[3])
    assert example_leaf in {e.cat for e in events}
    # Masters viewed belong to the leaf the event names.
    by_id = {master_uuid(i): CAT.cat_ids[int(CAT.master_leaf[i])] for i in range(CAT.n_masters)}
    assert all(by_id[e.master] == e.cat for e in events)
    assert feed.tick(0, 1_767_225_600_000, 60_000) == events  # deterministic


def test_partner_is_never_self_nor_a_planted_coview_and_changes_each_period() -> None:
    feed = CatalogFeed(CAT)
    for leaf in feed.leaves:
        partners = [feed.partner(leaf, p) for p in range(4)]
        planted = {leaf, CAT.partner(leaf), *(dst for dst, _ in CAT.coview_of(leaf))}
        assert all(p not in planted for p in partners)
        assert all(a != b for a, b in zip(partners, partners[1:]))


def test_the_operator_ranks_the_current_partner_first() -> None:
    settings = FeedSettings(sessions_per_tick=80, period_s=10)
    feed = CatalogFeed(CAT, settings)
    windower = PartitionWindower(WindowSpec(delay_ms=0, lateness_ms=0))
    state = CoviewState()
    t0 = 1_767_225_600_000
    for tick in range(30):  # three periods, a minute of event time each
        for e in feed.tick(tick, t0 + tick * 60_000, 60_000):
            windower.on_event(e.session, e.cat, e.ts)
    windower.punctuate(t0 + 10**9)
    for epoch, pairs in sorted(windower.drain_pairs().items()):
        state.apply_epoch(epoch, pairs)
    last = feed.trends(feed.period_of(29))
    earlier = feed.trends(0)
    example = CAT.cat_ids[feed.leaves[0]]
    ranked = [k for k, _ in state.top(example)]
    assert ranked[0] == last[example]
    assert earlier[example] in ranked and earlier[example] != last[example]
    # The feed's structure dominates: every trending leaf's first related key is its current partner.
    hits = Counter(state.top(leaf)[0][0] == partner for leaf, partner in last.items() if state.top(leaf))
    assert hits[True] >= len(last) - 1


def test_tiny_catalog_still_gets_a_partner() -> None:
    tiny = generate(CatalogSettings(masters=12, users=3, departments=1, subcats_per_department=1, leaves_per_subcat=3))
    feed = CatalogFeed(tiny, FeedSettings(sessions_per_tick=5))
    assert all(feed.partner(leaf, 0) != leaf for leaf in feed.leaves)
    assert feed.tick(0, 1_767_225_600_000, 60_000)
