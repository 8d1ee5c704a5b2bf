"""``hotpath bench coview-quality``: co-view relations vs an item-kNN cosine baseline on next-item prediction.

Generated sessions over items in planted clusters: a session walks one cluster (the next item is
drawn near the current one in the cluster's order, sometimes anywhere in the cluster, sometimes
anywhere at all), one view a few seconds to minutes after the last. Sessions are split by user into
train (80 %) and test (20 %).

* co-view: the train views through :func:`hotpath.coview.replay.replay_arrays` with item keys and the
  streaming defaults (sliding window, decay), top 20 per item;
* item-kNN: cosine similarity of items' session-occurrence vectors over the same train sessions
  (``|S(a) ∩ S(b)| / sqrt(|S(a)| |S(b)|)``), top 20 per item, computed in the same run.

Each test session's every transition ``current -> next`` is one case: Recall@20 (``next`` in the
current item's list) and MRR@20 (1 / its rank). Reported with the ratio co-view / kNN.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Optional

import numpy as np

__all__ = ["generate_sessions", "knn_cosine", "evaluate", "run", "register"]


def generate_sessions(*, users: int = 6000, items: int = 3000, clusters: int = 60, mean_len: float = 8.0,
                      seed: int = 3) -> tuple[list[str], list[str], np.ndarray]:  # fmt: skip
    """(session ids, item ids, times in ms) of generated browsing sessions, in time order per session."""
    rng = np.random.default_rng(seed)
    per = items // clusters
    sess, keys, ts = [], [], []
    t0 = 1_700_000_000_000
    for u in range(users):
        c = int(rng.integers(clusters))
        n = max(2, int(rng.poisson(mean_len)))
        pos = int(rng.integers(per))
        t = t0 + int(rng.integers(0, 6 * 3600 * 1000))
        for _ in range(n):
            r = rng.random()
            if r < 0.7:
                pos = (pos + int(rng.choice([-2, -1, 1, 1, 2, 3]))) % per
                item = c * per + pos
            elif r < 0.9:
                pos = int(rng.integers(per))
                item = c * per + pos
            else:
                item = int(rng.integers(items))
            sess.append(f"u{u}")
            keys.append(f"i{item}")
            ts.append(t)
            t += int(rng.integers(5_000, 180_000))
    return sess, keys, np.array(ts, dtype=np.int64)


def knn_cosine(sessions: list[str], keys: list[str], k: int = 20) -> dict[str, list[tuple[str, float]]]:
    """Item-kNN: cosine of the items' binary session vectors, top ``k`` per item (score desc, id asc)."""
    by_sess: dict[str, set[str]] = defaultdict(set)
    for s, i in zip(sessions, keys):
        by_sess[s].add(i)
    occ: dict[str, int] = defaultdict(int)
    co: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for items in by_sess.values():
        its = sorted(items)
        for a in its:
            occ[a] += 1
        for x in range(len(its)):
            for y in range(x + 1, len(its)):
                co[its[x]][its[y]] += 1
                co[its[y]][its[x]] += 1
    out = {}
    for a, row in co.items():
        sims = [(b, n / np.sqrt(occ[a] * occ[b])) for b, n in row.items()]
        sims.sort(key=lambda kv: (-kv[1], kv[0]))
        out[a] = sims[:k]
    return out


def evaluate(related: dict[str, list[tuple[str, float]]], sessions: list[str], keys: list[str], k: int = 20) -> dict:
    """Recall@k and MRR@k of next-item prediction over every transition of the given sessions."""
    ranks = {a: {b: r for r, (b, _) in enumerate(lst[:k], 1)} for a, lst in related.items()}
    hits = cases = 0
    rr = 0.0
    for j in range(1, len(keys)):
        if sessions[j] != sessions[j - 1] or keys[j] == keys[j - 1]:
            continue
        cases += 1
        r = ranks.get(keys[j - 1], {}).get(keys[j])
        if r is not None:
            hits += 1
            rr += 1.0 / r
    return {"cases": cases, "recall": round(hits / cases, 4) if cases else None, "mrr": round(rr / cases, 4) if cases else None}


def run(*, users: int = 6000, items: int = 3000, decay: float | None = None, window_s: float | None = None,
        slide_s: float | None = None, seed: int = 3, say=print) -> dict:  # fmt: skip
    from hotpath.coview.replay import replay_arrays
    from hotpath.coview.settings import StreamingSettings

    st = StreamingSettings()
    upd = {k: v for k, v in {"window_s": window_s, "slide_s": slide_s}.items() if v is not None}
    if upd:
        st = st.model_copy(update=upd)
    spec = st.window_spec()
    d = decay if decay is not None else getattr(st, "decay", 0.95)
    sess, keys, ts = generate_sessions(users=users, items=items, seed=seed)
    test_users = {f"u{u}" for u in range(0, users, 5)}
    tr = [j for j, s in enumerate(sess) if s not in test_users]
    te = [j for j, s in enumerate(sess) if s in test_users]
    tr_s, tr_k, tr_t = [sess[j] for j in tr], [keys[j] for j in tr], ts[tr]
    te_s, te_k = [sess[j] for j in te], [keys[j] for j in te]
    say(f"coview-quality: {len(tr)} train / {len(te)} test views, {items} items")
    t = time.perf_counter()
    cov = replay_arrays(tr_s, tr_k, tr_t, spec=spec, decay=d, top_k=20).related
    cov_s = time.perf_counter() - t
    t = time.perf_counter()
    knn = knn_cosine(tr_s, tr_k)
    knn_s = time.perf_counter() - t
    a, b = evaluate(cov, te_s, te_k), evaluate(knn, te_s, te_k)
    return {
        "coview": {**a, "seconds": round(cov_s, 2)},
        "item_knn": {**b, "seconds": round(knn_s, 2)},
        "ratio": {m: round(a[m] / b[m], 3) if b[m] else None for m in ("recall", "mrr")},
        "config": {"users": users, "items": items, "decay": d, "window_s": st.window_s, "slide_s": st.slide_s,
                   "window_kind": st.window_kind, "seed": seed, "k": 20},  # fmt: skip
    }


def register(bench) -> None:
    import typer

    @bench.command("coview-quality")
    def coview_quality(
        users: int = typer.Option(6000, min=100, max=1_000_000),
        items: int = typer.Option(3000, min=60, max=1_000_000),
        decay: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="Default: the streaming job's"),
        window_s: Optional[float] = typer.Option(None, min=1.0),
        slide_s: Optional[float] = typer.Option(None, min=1.0),
        seed: int = typer.Option(3),
        as_json: bool = typer.Option(False, "--json"),
        config: Optional[Path] = typer.Option(None, "--config"),
    ) -> None:
        """Next-item Recall@20 / MRR@20: co-view relations (item keys) vs item-kNN cosine, same sessions."""
        res = run(users=users, items=items, decay=decay, window_s=window_s, slide_s=slide_s, seed=seed,
                  say=lambda m: typer.echo(m, err=True))  # fmt: skip
        if as_json:
            typer.echo(json.dumps(res))
        else:
            for name in ("coview", "item_knn"):
                r = res[name]
                typer.echo(f"{name:<9} Recall@20 {r['recall']}  MRR@20 {r['mrr']}  ({r['cases']} cases, {r['seconds']} s)")
            typer.echo(f"ratio     Recall {res['ratio']['recall']}  MRR {res['ratio']['mrr']}")
