"""Window boundaries, the watermark, lateness and idle advance, driven by hand and a fake clock."""

from __future__ import annotations

from collections import Counter

import pytest

from hotpath.coview.windows import NO_EPOCH, PartitionWindower, WindowSpec

MIN = 60_000
T0 = 1_767_225_600_000  # a multiple of 5 minutes


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def sliding(**kw) -> PartitionWindower:
    spec = WindowSpec(kind="sliding", size_ms=15 * MIN, slide_ms=5 * MIN, delay_ms=0, lateness_ms=0, **kw)
    return PartitionWindower(spec)


def fired(w: PartitionWindower) -> dict[int, Counter]:
    return {e: Counter(c) for e, c in w.drain_pairs().items()}


def test_sliding_window_membership_and_boundaries() -> None:
    spec = WindowSpec(size_ms=15 * MIN, slide_ms=5 * MIN)
    t = T0 + 7 * MIN
    starts = list(spec.sliding_starts(t))
    assert starts == [T0 - 5 * MIN, T0, T0 + 5 * MIN]
    assert all(s <= t < s + 15 * MIN for s in starts)
    # exactly on a boundary: the window starting there includes it, the one ending there does not
    assert list(spec.sliding_starts(T0))[-1] == T0
    assert T0 - 15 * MIN not in spec.sliding_starts(T0)


def test_sliding_fires_when_watermark_passes_end_and_counts_pairs_per_window() -> None:
    w = sliding()
    w.on_event("u1", "a", T0 + 1 * MIN)
    w.on_event("u1", "b", T0 + 2 * MIN)
    assert w.drain() == {}  # nothing fired yet
    # watermark reaches T0+5min: the window [T0-10, T0+5) ends -> fires with {a, b}
    w.on_event("u2", "x", T0 + 5 * MIN)
    out = fired(w)
    epoch = (T0 + 5 * MIN) // (5 * MIN)
    assert out == {epoch: Counter({("a", "b"): 1, ("b", "a"): 1})}
    # the two later windows containing a and b fire at T0+10 and T0+15
    w.punctuate(T0 + 15 * MIN)
    out = fired(w)
    assert out == {epoch + 1: Counter({("a", "b"): 1, ("b", "a"): 1}), epoch + 2: Counter({("a", "b"): 1, ("b", "a"): 1})}


def test_events_in_different_windows_do_not_pair() -> None:
    w = sliding()
    w.on_event("u1", "a", T0)
    w.on_event("u1", "b", T0 + 15 * MIN)  # 15 minutes apart: no window holds both
    w.punctuate(T0 + 60 * MIN)
    assert fired(w) == {}


def test_watermark_delay_and_allowed_lateness() -> None:
    spec = WindowSpec(size_ms=15 * MIN, slide_ms=5 * MIN, delay_ms=30_000, lateness_ms=MIN)
    w = PartitionWindower(spec)
    assert w.watermark is None and w.complete_epoch() == NO_EPOCH
    w.on_event("u", "a", T0 + 9 * MIN)
    assert w.watermark == T0 + 9 * MIN - 30_000
    w.on_event("u", "b", T0 + 8 * MIN)  # out of order but within the delay: on time
    # window [T0-5, T0+10) ends at T0+10; it fires at watermark >= T0+11
    w.on_event("v", "z", T0 + 11 * MIN + 29_000)
    assert w.drain() == {}
    w.on_event("v", "z", T0 + 11 * MIN + 30_000)
    out = fired(w)
    assert out == {(T0 + 10 * MIN) // (5 * MIN): Counter({("a", "b"): 1, ("b", "a"): 1})}
    # complete epoch: the fired window's own epoch (sliding windows end on slide boundaries), and
    # every later firing has a larger epoch, even for an event inside the fired window
    done = w.complete_epoch()
    assert done == (T0 + 10 * MIN) // (5 * MIN) == (w.watermark - MIN) // (5 * MIN)
    assert w.on_event("u", "c", T0 + 9 * MIN) == "ok"  # its window ending at T0+10 is skipped
    w.punctuate(T0 + 120 * MIN)
    assert min(fired(w)) > done


@pytest.mark.parametrize("policy", ["drop", "apply"])
def test_late_event_is_counted_and_dropped_or_applied(policy: str) -> None:
    w = sliding(late_policy=policy)
    w.on_event("u", "a", T0 + 60 * MIN)
    w.on_event("u", "b", T0 + 61 * MIN)
    status = w.on_event("u", "late", T0)  # every window holding T0 has fired already
    if policy == "drop":
        assert status == "late_dropped" and w.counts["late_dropped"] == 1
        w.punctuate(T0 + 120 * MIN)
        assert all(("late" not in pair) for c in fired(w).values() for pair in c)
    else:
        assert status == "late_applied" and w.counts["late_applied"] == 1
        w.punctuate(T0 + 120 * MIN)
        out = fired(w)
        # re-timed to the watermark (T0+61min): it pairs with a and b there
        assert any(("late", "a") in c for c in out.values())


def test_partly_late_event_joins_only_open_windows() -> None:
    w = sliding()
    w.on_event("u", "a", T0 + 12 * MIN)
    w.on_event("v", "x", T0 + 15 * MIN)  # watermark T0+15: window [T0, T0+15) fired
    w.drain()
    assert w.on_event("u", "b", T0 + 11 * MIN) == "ok"  # its windows ending T0+20, T0+25 are open
    w.punctuate(T0 + 60 * MIN)
    out = fired(w)
    assert sum(c[("a", "b")] for c in out.values()) == 2


def test_session_windows_gap_merge_and_fire() -> None:
    spec = WindowSpec(kind="session", gap_ms=30 * MIN, slide_ms=5 * MIN, delay_ms=0, lateness_ms=0)
    w = PartitionWindower(spec)
    w.on_event("u", "a", T0)
    w.on_event("u", "b", T0 + 29 * MIN)  # < gap: same session
    w.on_event("u", "c", T0 + 58 * MIN + 59_999)  # < gap after b: same session
    w.on_event("u", "d", T0 + 100 * MIN)  # >= gap: a new session; the first one fires at T0+88:59.999
    out = fired(w)
    end = T0 + 88 * MIN + 59_999
    assert list(out) == [end // (5 * MIN)]
    assert set(out[end // (5 * MIN)]) == {(x, y) for x in "abc" for y in "abc" if x != y}
    # a gap of exactly 30 minutes splits
    w2 = PartitionWindower(spec)
    w2.on_event("u", "a", T0)
    w2.on_event("u", "b", T0 + 30 * MIN)
    w2.punctuate(T0 + 200 * MIN)
    assert fired(w2) == {}


def test_session_out_of_order_event_merges_two_sessions() -> None:
    spec = WindowSpec(kind="session", gap_ms=10 * MIN, slide_ms=5 * MIN, delay_ms=60 * MIN, lateness_ms=0)
    w = PartitionWindower(spec)
    w.on_event("u", "a", T0)
    w.on_event("u", "c", T0 + 16 * MIN)  # two sessions so far
    w.on_event("u", "b", T0 + 8 * MIN)  # bridges them
    assert w.open_windows() == 1
    w.punctuate(T0 + 200 * MIN)
    out = fired(w)
    assert set().union(*out.values()) == {(x, y) for x in "abc" for y in "abc" if x != y}


def test_idle_advance_uses_the_injected_clock_only_when_enabled() -> None:
    clock = FakeClock()
    spec = WindowSpec(size_ms=15 * MIN, slide_ms=5 * MIN, delay_ms=0, lateness_ms=0, idle_advance_ms=10_000)
    w = PartitionWindower(spec, clock=clock)
    w.on_event("u", "a", T0 + 1 * MIN)
    w.on_event("u", "b", T0 + 2 * MIN)
    clock.now += 5
    w.tick()
    assert w.watermark == T0 + 2 * MIN  # idle for 5 s < 10 s: no advance
    clock.now += 3 * 60  # idle 3 min 5 s of wall time
    w.tick()
    assert w.watermark == T0 + 2 * MIN + 185_000
    assert fired(w)  # [T0-10, T0+5) fired
    # without idle advance, the clock never moves the watermark
    w2 = PartitionWindower(WindowSpec(delay_ms=0), clock=clock)
    w2.on_event("u", "a", T0)
    clock.now += 10_000
    w2.tick()
    assert w2.watermark == T0


def test_snapshot_restore_round_trip_continues_identically() -> None:
    def feed(w, events):
        for s, k, t in events:
            w.on_event(s, k, t)

    evs = [(f"u{i % 7}", f"k{i % 11}", T0 + i * 37_000) for i in range(400)]
    a = sliding()
    feed(a, evs[:200])
    b = PartitionWindower.restore(a.snapshot())
    feed(a, evs[200:])
    feed(b, evs[200:])
    a.punctuate(T0 + 10**9)
    b.punctuate(T0 + 10**9)
    assert a.drain() == b.drain()
    assert a.counts == b.counts
