"""The co-view operator against brute force: windows, decay x0.95 per epoch, top-20 pruning;
recent interests; event parsing and dead-letter reasons."""

from __future__ import annotations

import random

import pytest

from hotpath.coview.events import PoisonedEvent, ViewEvent, encode_event, parse_event
from hotpath.coview.generator import POISON_SAMPLES, encode_fast
from hotpath.coview.interests import RecentInterests
from hotpath.coview.replay import replay_arrays
from hotpath.coview.topk import CoviewState, rank
from hotpath.coview.windows import PartitionWindower, WindowSpec

from .reference import assert_same_ranking, session_windows, sliding_windows, topk_reference

MIN = 60_000
T0 = 1_767_225_600_000


def random_events(seed: int, n: int = 3000, keys: int = 40, sessions: int = 60, span_min: int = 240):
    rng = random.Random(seed)
    evs = [(f"s{rng.randrange(sessions)}", f"k{int(rng.paretovariate(1.2)) % keys:02d}",
            T0 + rng.randrange(span_min * MIN)) for _ in range(n)]
    evs.sort(key=lambda e: e[2])
    return evs


def stream(events, spec: WindowSpec, *, decay=0.95, top_k=20):
    """The streaming classes, fed in order, with a final watermark past everything."""
    w = PartitionWindower(spec)
    state = CoviewState(decay=decay, top_k=top_k)
    for s, k, t in events:
        w.on_event(s, k, t)
        for e, pairs in w.drain_pairs().items():
            state.add(e, pairs)
        state.apply_until(w.complete_epoch())
    w.punctuate(10**15)
    for e, pairs in w.drain_pairs().items():
        state.add(e, pairs)
    state.apply_until(10**15)
    return dict(state.items())


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("top_k", [20, 3])
def test_sliding_decay_and_topk_match_brute_force(seed: int, top_k: int) -> None:
    evs = random_events(seed)
    spec = WindowSpec(size_ms=15 * MIN, slide_ms=5 * MIN, delay_ms=0, lateness_ms=0)
    want = topk_reference(sliding_windows(evs, 15 * MIN, 5 * MIN), decay=0.95, top_k=top_k)
    got = stream(evs, spec, top_k=top_k)
    assert_same_ranking(got, want)
    assert all(len(v) <= top_k for v in got.values())
    assert any(len(v) == top_k for v in got.values())  # pruning did happen
    # the offline (vectorised) form computes exactly the same
    off = replay_arrays([e[0] for e in evs], [e[1] for e in evs], [e[2] for e in evs], spec=spec, top_k=top_k)
    assert off.related == got


@pytest.mark.parametrize("seed", [4, 5])
def test_session_windows_match_brute_force(seed: int) -> None:
    evs = random_events(seed, sessions=30)
    spec = WindowSpec(kind="session", gap_ms=10 * MIN, slide_ms=5 * MIN, delay_ms=0, lateness_ms=0)
    want = topk_reference(session_windows(evs, 10 * MIN, 5 * MIN), decay=0.95, top_k=20)
    got = stream(evs, spec)
    assert_same_ranking(got, want)
    off = replay_arrays([e[0] for e in evs], [e[1] for e in evs], [e[2] for e in evs], spec=spec)
    assert off.related == got


def test_decay_is_095_per_epoch_exactly() -> None:
    st = CoviewState(decay=0.95, top_k=20)
    st.apply_epoch(10, {("a", "b"): 2})
    st.apply_epoch(13, {("a", "c"): 1})
    assert st.top("a") == [("b", 2 * 0.95**3), ("c", 1.0)]


def test_rank_is_score_desc_then_key_asc_and_keeps_k() -> None:
    scores = {"b": 1.0, "a": 1.0, "c": 3.0, "d": 0.5}
    assert rank(scores, 3) == [("c", 3.0), ("a", 1.0), ("b", 1.0)]
    big = {f"k{i}": float(i % 7) for i in range(100)}
    assert rank(big, 20) == sorted(big.items(), key=lambda kv: (-kv[1], kv[0]))[:20]


def test_state_snapshot_restore() -> None:
    st = CoviewState()
    st.add(5, {("a", "b"): 1})
    st.apply_until(5)
    st.add(6, {("a", "c"): 2})
    st2 = CoviewState.restore(st.snapshot())
    assert st2.apply_until(6) == st.apply_until(6)
    assert dict(st2.items()) == dict(st.items())


def test_recent_interests_decay_prune_ttl() -> None:
    hour = 3_600_000
    r = RecentInterests(decay=0.95, period_ms=hour, min_score=0.5, max_cats=2, ttl_ms=24 * hour)
    r.on_view("u", "a", T0)
    r.on_view("u", "b", T0 + 2 * hour)
    assert r.weights("u") == [("b", pytest.approx(1.0)), ("a", pytest.approx(0.95**2))]
    r.on_view("u", "a", T0 + hour)  # older than the newest: weighs 0.95 at the reference time
    assert dict(r.weights("u"))["a"] == pytest.approx(0.95**2 + 0.95)
    r.on_view("u", "c", T0 + 2 * hour)  # max 2 categories: the weakest goes
    assert [c for c, _ in r.weights("u")] == ["a", "b"] or [c for c, _ in r.weights("u")] == ["a", "c"]
    r.on_view("u", "z", T0 + 42 * hour)  # 40 h later: ~1.9 * 0.95**40 ~ 0.25 < 0.5 -> pruned
    assert [c for c, _ in r.weights("u")] == ["z"]
    # compacted: the whole set, re-anchored (weights as of the anchor, in millionths)
    assert r.drain_changes() == {"u": (True, {"z": 1_000_000})}
    r.on_view("v", "a", T0 + 70 * hour)
    r.expire(T0 + 70 * hour)  # u last seen 28 h before: gone
    assert r.weights("u") == [] and r.weights("v") == [("a", 1.0)]
    assert r.drain_changes() == {"v": (True, {"a": 1_000_000})}  # a new user: whole set


def test_parse_valid_and_round_trip() -> None:
    ev = ViewEvent("view", "u1", "s1", "electronics", T0, "p1", "m1", 5)
    assert parse_event(encode_event(ev)) == ev
    assert parse_event(encode_fast(ev)) == ev
    ev2 = parse_event(b'{"user":"u2","cat":"c","ts":%d}' % T0)
    assert ev2.type == "view" and ev2.session == "u2"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (POISON_SAMPLES[0], "bad JSON"),
        (POISON_SAMPLES[1], "missing field 'user'"),
        (POISON_SAMPLES[2], "absurd timestamp"),
        (POISON_SAMPLES[3], "not a JSON object"),
        (POISON_SAMPLES[4], "unknown type"),
        (b'{"user":"u","cat":"c"}', "missing field 'ts'"),
        (b'{"user":"u","cat":"c","ts":"yesterday"}', "must be a number"),
        (b'{"user":"u","cat":"","ts":1767225600000}', "field 'cat' is empty"),
        (b'{"user":{"a":1},"cat":"c","ts":1767225600000}', "must be a string"),
        (b"\xff\xfe", "bad JSON"),
    ],
)
def test_poisoned_events_have_reasons(raw: bytes, reason: str) -> None:
    with pytest.raises(PoisonedEvent) as info:
        parse_event(raw)
    assert reason in info.value.reason


def test_batch_decoding_never_misaligns_records() -> None:
    from hotpath.coview.events import decode_batch

    good = [b'{"user":"u","cat":"c","ts":1767225600000}', b'{"user":"v","cat":"d","ts":1767225600001}']
    assert decode_batch(good) == [{"user": "u", "cat": "c", "ts": 1767225600000},
                                  {"user": "v", "cat": "d", "ts": 1767225600001}]  # fmt: skip
    # records that are not one object each: never decoded as a batch (each is checked on its own)
    assert decode_batch([b'{"a":1},{"b":2}', b'{"c":3}']) is None
    assert decode_batch([b'{"x":[1', b'2]}']) is None
    assert decode_batch([b"{not json", good[0]]) is None
    assert decode_batch([b"[1,2]", good[0]]) is None
    assert decode_batch([b'{"a":"\xff"}']) is None
