"""Brute-force references for the co-view operator: windows straight from their definition, and
decay applied to every key at every epoch, sorting whole lists (no heap, no laziness)."""

from __future__ import annotations

from collections import defaultdict


def sliding_windows(events, size_ms: int, slide_ms: int):
    """[(epoch, keys)] per (session, window) from (session, key, ts) events, by definition."""
    by_session = defaultdict(list)
    for s, k, t in events:
        by_session[s].append((t, k))
    out = []
    for s, evs in by_session.items():
        evs.sort()
        lo = min(t for t, _ in evs) - size_ms
        hi = max(t for t, _ in evs)
        start = (lo // slide_ms) * slide_ms
        while start <= hi:
            keys = []
            for t, k in evs:
                if start <= t < start + size_ms and k not in keys:
                    keys.append(k)
            if keys:
                out.append(((start + size_ms) // slide_ms, keys))
            start += slide_ms
    return out


def session_windows(events, gap_ms: int, slide_ms: int):
    by_session = defaultdict(list)
    for s, k, t in events:
        by_session[s].append((t, k))
    out = []
    for s, evs in by_session.items():
        evs.sort()
        cur = [evs[0]]
        for t, k in evs[1:]:
            if t - cur[-1][0] >= gap_ms:
                out.append(cur)
                cur = []
            cur.append((t, k))
        out.append(cur)
    res = []
    for sess in out:
        keys = []
        for _, k in sess:
            if k not in keys:
                keys.append(k)
        res.append(((sess[-1][0] + gap_ms) // slide_ms, keys))
    return res


def topk_reference(windows, *, decay: float, top_k: int):
    """Eager decay of every key each epoch, full sort and truncate; returns {key: [(b, score)]}."""
    by_epoch = defaultdict(lambda: defaultdict(int))
    for epoch, keys in windows:
        for a in keys:
            for b in keys:
                if a != b:
                    by_epoch[epoch][(a, b)] += 1
    scores: dict[str, dict[str, float]] = {}
    reported: dict[str, list[tuple[str, float]]] = {}
    last = None
    for epoch in sorted(by_epoch):
        if last is not None:
            for a in scores:
                for b in scores[a]:
                    scores[a][b] *= decay ** (epoch - last)
        last = epoch
        touched = set()
        for (a, b), n in by_epoch[epoch].items():
            scores.setdefault(a, {})
            scores[a][b] = scores[a].get(b, 0.0) + n
            touched.add(a)
        for a in touched:
            ranked = sorted(scores[a].items(), key=lambda kv: (-kv[1], kv[0]))[:top_k]
            scores[a] = dict(ranked)
            reported[a] = ranked  # a key's scores are published as of the last epoch that touched it
    return reported


def assert_same_ranking(got, want, *, rel=1e-9):
    """Same keys, same related keys in the same order, scores equal within ``rel``."""
    assert sorted(got) == sorted(want)
    for key in want:
        g, w = got[key], want[key]
        assert [b for b, _ in g] == [b for b, _ in w] or _tie_equivalent(g, w, rel), key
        for (_, x), (_, y) in zip(g, w):
            assert abs(x - y) <= rel * max(1.0, abs(y)), (key, g, w)


def _tie_equivalent(g, w, rel):
    # Rankings may differ only between scores equal within rounding.
    if len(g) != len(w):
        return False
    for (bg, sg), (bw, sw) in zip(g, w):
        if bg != bw and abs(sg - sw) > rel * max(1.0, abs(sw)):
            return False
    return True
