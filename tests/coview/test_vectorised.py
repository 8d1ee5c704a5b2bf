"""The vectorised and batched code paths of the shards against brute force and their per-event twins:
pair counting with an owned-first-key mask, the array top-K state (pre-filtered merge, partial
ranking), batched windowing and recent interests, and a whole shard fed in batches."""

from __future__ import annotations

import json
import random
from collections import Counter

import numpy as np
import pytest

from hotpath.coview.interests import RecentInterests
from hotpath.coview.pairs import KeyIds, count_pairs
from hotpath.coview.settings import StreamingSettings
from hotpath.coview.shard import ShardCore, partitions_of, shard_of
from hotpath.coview.topk import ArrayCoviewState, CoviewState
from hotpath.coview.windows import PartitionWindower, WindowSpec, pairs_of
from hotpath.streams.base import LogRecord, partition_for

from .reference import assert_same_ranking, sliding_windows, topk_reference

MIN = 60_000
T0 = 1_767_225_600_000


def random_baskets(rng: random.Random, n: int, keys: int, max_size: int = 8) -> list[tuple[str, ...]]:
    out = []
    for _ in range(n):
        size = rng.randrange(1, max_size + 1)
        out.append(tuple(dict.fromkeys(f"k{int(rng.paretovariate(1.1)) % keys:03d}" for _ in range(size))))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("histogram", [True, False])
def test_count_pairs_with_first_key_mask_matches_brute_force(seed: int, histogram: bool, monkeypatch) -> None:
    """Both ways of counting: a histogram over the (dense) pair space, and sorting the pair codes
    (taken when the space is large against the pairs: forced here with a tiny bin limit); sorted by
    first key then second either way."""
    import hotpath.coview.pairs as pairs_mod

    if not histogram:
        monkeypatch.setattr(pairs_mod, "_MIN_BINS", 0)
        monkeypatch.setattr(pairs_mod, "_MAX_BINS", 0)
    rng = random.Random(seed)
    baskets = random_baskets(rng, 300, 60)
    ids = KeyIds()
    g, k = ids.arrays(baskets)
    assert ids.names == list(dict.fromkeys(x for b in baskets for x in b))  # ids in order of first sight
    owned = np.array([shard_of(x, 3) == 1 for x in ids.names])
    want: Counter = Counter()
    for b in baskets:
        pairs_of(list(b), want)
    for mask in (None, owned):
        a, bb, n = count_pairs(g, k, len(ids.names), mask)
        got = {(ids.names[x], ids.names[y]): int(c) for x, y, c in zip(a, bb, n)}
        expect = {p: c for p, c in want.items() if mask is None or shard_of(p[0], 3) == 1}
        assert got == expect
        assert list(zip(a.tolist(), bb.tolist())) == sorted(zip(a.tolist(), bb.tolist()))


@pytest.mark.parametrize("seed", [4, 5, 6, 7])
@pytest.mark.parametrize("top_k,min_score", [(20, 0.0), (3, 0.0), (5, 1.5)])
@pytest.mark.parametrize("decay", [0.95, 1.0])
def test_array_state_equals_readable_state_exactly(seed: int, top_k: int, min_score: float, decay: float) -> None:
    """Epochs with gaps (decay), integer counts (many ties; all of them without decay), keys
    dropping out and coming back."""
    rng = random.Random(seed)
    arr = ArrayCoviewState(decay=decay, top_k=top_k, min_score=min_score)
    ref = CoviewState(decay=decay, top_k=top_k, min_score=min_score)
    epoch = 100
    for _ in range(40):
        epoch += rng.choice([1, 1, 1, 2, 5])
        c: Counter = Counter()
        for b in random_baskets(rng, rng.randrange(1, 80), 50):
            pairs_of(list(b), c)
        if not c:
            continue
        ref.apply_epoch(epoch, c)
        ids = KeyIds()
        pairs = sorted(c.items())
        a = arr.ids_of([p[0][0] for p in pairs])
        b = arr.ids_of([p[0][1] for p in pairs])
        if rng.random() < 0.5:  # any order of the pairs
            perm = np.array(rng.sample(range(len(pairs)), len(pairs)), dtype=np.int64)
        else:
            perm = np.arange(len(pairs))
        n = np.array([p[1] for p in pairs], dtype=np.int64)
        arr.apply(epoch, a[perm], b[perm], n[perm])
        del ids
        assert dict(arr.items()) == dict(ref.items())


def test_array_state_matches_brute_force_reference() -> None:
    rng = random.Random(11)
    windows = []
    for epoch in range(50, 90):
        for b in random_baskets(rng, 40, 40):
            windows.append((epoch, list(b)))
    want = topk_reference(windows, decay=0.95, top_k=20)
    st = ArrayCoviewState(top_k=20)
    by_epoch: dict[int, list] = {}
    for e, keys in windows:
        by_epoch.setdefault(e, []).append(tuple(keys))
    for e in sorted(by_epoch):
        ids = KeyIds()
        g, k = ids.arrays(by_epoch[e])
        a, b, n = count_pairs(g, k, len(ids.names))
        sid = st.ids_of(ids.names)
        st.apply(e, sid[a], sid[b], n)
    assert_same_ranking({k: v for k, v in st.items() if v}, want)


def _events(seed: int, n: int, *, shuffle: float, grid: int = 1) -> list[tuple[str, str, int]]:
    """Random views; times on a ``grid`` (ms) so that some fall on window and lateness boundaries."""
    rng = random.Random(seed)
    evs = [(f"s{rng.randrange(40)}", f"k{int(rng.paretovariate(1.2)) % 30:02d}",
            T0 + rng.randrange(240 * MIN) // grid * grid) for _ in range(n)]
    evs.sort(key=lambda e: e[2])
    for i in range(len(evs)):  # some disorder: late events
        if rng.random() < shuffle:
            j = min(len(evs) - 1, i + rng.randrange(1, 200))
            evs[i], evs[j] = evs[j], evs[i]
    return evs


@pytest.mark.parametrize("policy", ["drop", "apply"])
@pytest.mark.parametrize("seed,grid", [(1, 1), (2, 1), (3, MIN), (4, MIN)])
def test_batched_windowing_equals_per_event(policy: str, seed: int, grid: int) -> None:
    spec = WindowSpec(size_ms=15 * MIN, slide_ms=5 * MIN, delay_ms=2 * MIN, lateness_ms=MIN, late_policy=policy,
                      max_keys=6)
    evs = _events(seed, 3000, shuffle=0.05, grid=grid)
    one, many = PartitionWindower(spec), PartitionWindower(spec)
    rng = random.Random(seed)
    late_one, late_many = [], []
    i = 0
    while i < len(evs):
        chunk = evs[i : i + rng.randrange(1, 400)]
        for j, (s, k, t) in enumerate(chunk):
            if one.on_event(s, k, t) == "late_dropped":
                late_one.append(i + j)
        late_many.extend(i + j for j in many.on_events(chunk))
        if rng.random() < 0.1:
            wm = chunk[-1][2] - 3 * MIN
            one.punctuate(wm)
            many.punctuate(wm)
        assert one.complete_epoch() == many.complete_epoch()
        assert {e: sorted(b) for e, b in one.drain().items()} == {e: sorted(b) for e, b in many.drain().items()}
        i += len(chunk)
    assert late_one == late_many
    assert one.counts == many.counts
    assert one._sliding == many._sliding and sorted(one._fire) == sorted(many._fire)


def test_batched_recent_interests_equal_per_view() -> None:
    rng = random.Random(3)
    views = [(f"u{rng.randrange(30)}", f"c{rng.randrange(80)}", T0 + rng.randrange(400 * 3_600_000))
             for _ in range(5000)]
    a, b = RecentInterests(max_cats=10), RecentInterests(max_cats=10)
    for v in views:
        a.on_view(*v)
    b.on_views(views)
    assert a.users == b.users and a.dirty == b.dirty and a.drain_changes() == b.drain_changes()


def _records(evs, partitions: int, *, poison_every: int = 0, seed: int = 0):
    rng = random.Random(seed)
    parts: dict[int, list[LogRecord]] = {p: [] for p in range(partitions)}

    def put(key: bytes | None, value: bytes, p: int | None = None) -> None:
        p = partition_for(key, partitions) if p is None else p
        parts[p].append(LogRecord("t", p, len(parts[p]), key, value, 0))

    for i, (s, k, t) in enumerate(evs):
        user = s.split("-")[0]
        obj = {"type": "view", "user": user, "session": s, "cat": k, "ts": t}
        if rng.random() < 0.3:
            obj["sent_ms"] = 1_700_000_000_000 + i
        if rng.random() < 0.02:
            obj["ts"] = float(t)  # off the fast path, same meaning
        put(user.encode(), json.dumps(obj).encode())
        if poison_every and i % poison_every == 0:
            put(user.encode(), b'{"type":"view","user":"x"}')  # missing cat: dead letter
            put(user.encode(), b'{"type":"order","user":"x","cat":"c","master":"m","ts":%d}' % t)
    last = max(t for _, _, t in evs)
    for p in parts:
        put(None, b'{"type":"watermark","ts":%d}' % (last + 10**8), p)
    return parts


def _run_shards(parts, settings: StreamingSettings, shards: int, rng: random.Random, *, batch: bool = True):
    cores = [ShardCore(i, shards, partitions_of(i, shards, len(parts)), settings) for i in range(shards)]
    if not batch:
        for c in cores:
            for st in c.parts.values():
                st.windower.batch_ok = lambda: False  # the per-event path
    offs = {p: 0 for p in parts}
    inbox: dict[int, list] = {i: [] for i in range(shards)}
    dead, late = [], []
    while True:
        moved = 0
        complete = min(min(c.complete_epochs().values()) for c in cores)
        for c in cores:
            c.receive(inbox[c.index])
            inbox[c.index] = []
            c.apply_until(complete)
            for p in sorted(c.parts):
                recs = parts[p][offs[p] : offs[p] + rng.randrange(1, 700)]
                if recs:
                    ing = c.ingest(p, recs)
                    dead += [(r.partition, r.offset, why) for r, why in ing.dead]
                    late += [(r.partition, r.offset) for r in ing.late]
                    offs[p] += len(recs)
                    moved += len(recs)
        for c in cores:
            for d, contribs in c.drain_outbox().items():
                inbox[d].extend(contribs)
        if not moved and not any(inbox.values()):
            complete = min(min(c.complete_epochs().values()) for c in cores)
            for c in cores:
                c.apply_until(complete)
            break
    related = {}
    for c in cores:
        related.update({k: v for k, v in c.state.items() if v})
    return related, sorted(dead), sorted(late), cores


@pytest.mark.parametrize("shards", [1, 2, 3])
def test_shards_fed_in_batches_match_brute_force(shards: int) -> None:
    evs = [(f"u{s[1:]}", k, t) for s, k, t in _events(shards, 4000, shuffle=0.0)]
    settings = StreamingSettings(watermark_delay_s=0, allowed_lateness_s=0)
    got, dead, late, cores = _run_shards(_records(evs, 4, poison_every=97, seed=shards), settings, shards,
                                         random.Random(shards))
    want = topk_reference(sliding_windows(evs, 15 * MIN, 5 * MIN), decay=0.95, top_k=20)
    assert_same_ranking(got, want)
    assert len(dead) == len(range(0, len(evs), 97)) and not late
    assert sum(c.counts["orders"] for c in cores) == len(dead)
    assert sum(c.counts["views"] for c in cores) == len(evs)


@pytest.mark.parametrize("policy", ["drop", "apply"])
def test_shard_batch_path_equals_per_event_path_with_late_events(policy: str) -> None:
    evs = [(f"u{s[1:]}", k, t) for s, k, t in _events(9, 4000, shuffle=0.08, grid=MIN)]
    settings = StreamingSettings(watermark_delay_s=60, allowed_lateness_s=30, late_policy=policy)
    parts = _records(evs, 4, poison_every=131, seed=9)
    a = _run_shards(parts, settings, 2, random.Random(5), batch=True)
    b = _run_shards(parts, settings, 2, random.Random(5), batch=False)
    assert a[0] == b[0] and a[1] == b[1] and a[2] == b[2]
    assert (len(a[2]) > 0) == (policy == "drop")
    for x, y in zip(a[3], b[3]):
        assert x.counters() == y.counters()
        assert x.offsets() == y.offsets() and x.newest_sent() == y.newest_sent()


@pytest.mark.parametrize(("seed", "max_cats"), [(0, 6), (1, 6), (2, 6), (3, 20), (4, 20)])
def test_recent_interests_pruning_keeps_exactly_the_ranked_best(seed: int, max_cats: int) -> None:
    """Over ``max_cats``: the best by score, ties by category ascending (as ``rank`` keeps them),
    checked against a reference that re-ranks every user whole at each overflow (stored weights,
    anchor kept) and re-anchors after 24 periods; many ties."""
    from hotpath.coview.topk import rank

    rng = random.Random(seed)
    hour, min_score = 3_600_000, 0.3  # trims keep max_cats less a fifth
    r = RecentInterests(decay=0.9, period_ms=hour, min_score=min_score, max_cats=max_cats)
    ref: dict[str, tuple[int, int, dict[str, float]]] = {}
    views = []
    t = 0
    for _ in range(3000):
        t += rng.choice([0, 0, 0, hour // 4, hour])  # equal times: equal weights, ties to break
        views.append((f"u{rng.randrange(5)}", f"c{rng.randrange(2 * max_cats)}", t))
    trims = 0
    for user, cat, ts in views:
        r.on_view(user, cat, ts)
        newest, anchor, w = ref.get(user, (ts, ts, {}))
        w = dict(w)
        w[cat] = w.get(cat, 0.0) + 0.9 ** ((anchor - ts) / hour)
        newest = max(newest, ts)
        f = 0.9 ** ((newest - anchor) / hour)
        if newest - anchor > 24 * hour:  # compaction: re-anchored at the newest time
            w = {c: v * f for c, v in w.items()}
            w = {c: v for c, v in w.items() if v >= min_score}
            w = dict(rank(w, max_cats))
            anchor = newest
        elif len(w) > max_cats:  # trim: the anchor stays; stored weights ranked as they are
            trims += 1
            w = {c: v for c, v in w.items() if v * f >= min_score}
            w = dict(rank(w, max_cats - max_cats // 5))
        ref[user] = (newest, anchor, w)
        assert r.users[user][2] == w  # the weights as of the anchor
    assert trims > 50 and r.counts["recent_trims"] == trims
    for user, (newest, anchor, w) in ref.items():
        f = 0.9 ** ((newest - anchor) / hour)
        want = rank({c: v * f for c, v in w.items() if v * f >= min_score}, max_cats)
        assert r.weights(user) == want


@pytest.mark.parametrize("seed", [0, 1])
def test_recent_interest_writes_replayed_in_order_give_the_stored_weights_in_current_proportions(seed: int) -> None:
    """What the sink writes (:meth:`RecentInterests.drain_changes`, drained at random moments):
    applied in order — whole sets replaced, other writes setting their members — Redis holds each
    user's stored weights; those are the current weights times one factor per user (same order,
    same ratios), and most writes are a few members, not the whole set."""
    rng = random.Random(seed)
    hour = 3_600_000
    r = RecentInterests(decay=0.9, period_ms=hour, min_score=0.05, max_cats=8, compact_periods=6)
    redis: dict[str, dict[str, float]] = {"u0": {"planted-by-someone-else": 5.0}}
    t, whole, some, removed = T0, 0, 0, 0
    for _ in range(60):
        views = []
        for _ in range(rng.randrange(1, 80)):
            t += rng.choice([0, 60_000, hour // 3])
            cat = f"c{rng.randrange(6)}" if rng.random() < 0.8 else f"c{rng.randrange(30)}"
            views.append((f"u{rng.randrange(12)}", cat, t - rng.randrange(0, 2 * hour)))
        r.on_views(views)
        for user, (is_whole, members) in r.drain_changes().items():
            if is_whole:
                redis[user] = dict(members)
                whole += 1
            else:
                for c, v in members.items():
                    if v is None:
                        removed += 1
                        redis[user].pop(c)  # a trimmed category: it was in the set
                    else:
                        redis[user][c] = v
                some += 1
    assert some > 0 and whole > 0 and removed > 0
    for user in r.users:
        assert redis[user] == r.stored(user) and all(type(v) is int for v in redis[user].values())
        cur = dict(r.weights(user))
        f = max(cur.values()) / max(redis[user].values())
        assert {c: v * f for c, v in redis[user].items() if c in cur} == pytest.approx(cur, rel=2e-5)
        assert [c for c, _ in sorted(redis[user].items(), key=lambda x: (-x[1], x[0]))][: len(cur)] == list(cur)


def test_a_deferred_snapshot_is_the_state_as_of_its_call_while_views_go_on_in_another_thread(monkeypatch) -> None:
    """``snapshot_later``: pickled in chunks on another thread while views (to frozen users, new
    users, compactions, evictions) keep coming; restored, it equals the state when it was called."""
    import copy
    import threading

    import hotpath.coview.interests as interests

    monkeypatch.setattr(interests, "_CHUNK", 7)  # many chunks: the threads interleave between them
    rng = random.Random(5)

    def views(n: int, t0: int) -> list[tuple[str, str, int]]:
        return [(f"u{rng.randrange(400)}", f"c{rng.randrange(40)}", t0 + rng.randrange(3_600_000)) for _ in range(n)]

    r = RecentInterests(max_cats=10, max_users=350)
    r.on_views(views(5000, T0))
    r.drain_changes()
    # first without a thread: views between the call and the pickling change frozen users' weights
    want_users = copy.deepcopy(r.users)
    finish = r.snapshot_later()
    r.on_views(views(3000, T0 + 3_600_000))
    assert r.users != want_users
    assert RecentInterests.restore(finish()).users == want_users
    r.drain_changes()
    want_users, want_counts = copy.deepcopy(r.users), dict(r.counts)
    finish = r.snapshot_later()
    out: list[bytes] = []
    th = threading.Thread(target=lambda: out.append(finish()))
    th.start()
    t = T0 + 7_200_000
    while th.is_alive():
        t += 60_000
        r.on_views(views(50, t))
    th.join()
    r.on_views(views(500, t))  # after it finished: no copies needed any more
    back = RecentInterests.restore(out[0])
    assert back.users == want_users and list(back.users) == list(want_users)  # contents and LRU order
    assert dict(back.counts) == want_counts and back.dirty == {} and back.compact_periods == 24
    assert r.users != want_users  # the live state did move on
    assert RecentInterests.restore(r.snapshot()).users == r.users
