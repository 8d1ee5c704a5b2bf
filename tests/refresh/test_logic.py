"""The refresh's plain logic: hot selection, staleness, neighbours and maps, stored embeddings, schedule."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from hotpath.errors import BadInput, StoreError
from hotpath.refresh.embedding_store import (
    StoredEmbeddings, load_embeddings, merge, save_embeddings, title_hash,
)  # fmt: skip
from hotpath.refresh.neighbours import NeighbourIndex, recall_at_k, related_maps
from hotpath.refresh.progress import PROGRESS_TAG, Progress
from hotpath.refresh.schedule import cron_lines, next_run
from hotpath.refresh.selection import select_hot, stale_masters

DAY = 86400.0


def test_hot_set_merges_sources_and_ignores_unknown_ids() -> None:
    known = {f"m{i}" for i in range(10)}
    hot, unknown = select_hot(known=known, recent=["m1", "m2"], queued=["m2", "zz"], changed=["m3"], stale=["m4"])
    assert hot.masters == ["m1", "m2", "m3", "m4"]
    assert hot.reasons["m2"] == {"recent", "queued"}
    assert hot.counts() == {"recent": 2, "queued": 1, "changed": 1, "stale": 1}
    assert unknown == ["zz"]
    assert "m5" not in hot


def test_micro_batch_leaves_out_recent_activity() -> None:
    hot, _ = select_hot(known={"a", "b", "c"}, recent=["a"], queued=["b"], changed=["c"], micro_batch=True)
    assert hot.masters == ["b", "c"]


def test_stale_masters_oldest_first_and_capped() -> None:
    now = 1000 * DAY
    ts = {"fresh": now - 10 * DAY, "old": now - 200 * DAY, "older": now - 300 * DAY, "edge": now - 90 * DAY + 1}
    assert stale_masters(ts, now, 90) == ["older", "old"]
    assert stale_masters(ts, now, 90, limit=1) == ["older"]


def _clustered(n_clusters: int, per: int, dim: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim))
    labels = np.repeat(np.arange(n_clusters), per)
    x = centres[labels] + 0.3 * rng.normal(size=(len(labels), dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), labels


def test_exact_search_finds_the_cluster_and_maps_drop_self() -> None:
    x, labels = _clustered(20, 8)
    idx = NeighbourIndex.build(x, exact_below=10_000)
    assert idx.exact
    rows = np.arange(len(x))
    scores, hits = idx.search(x, 8)
    ids = [f"m{i}" for i in range(len(x))]
    maps = related_maps(rows, scores, hits, ids, k=7)
    for i, m in enumerate(maps):
        assert f"m{i}" not in m and len(m) == 7
        assert all(labels[int(k[1:])] == labels[i] for k in m)
        assert list(m.values()) == sorted(m.values(), reverse=True)
        assert all(v * 1024 == int(v * 1024) for v in m.values())  # multiples of 1/1024
    assert related_maps(rows[:1], scores[:1], hits[:1], ids, k=7, min_score=2.0) == [{}]


def test_hnsw_recall_against_exact() -> None:
    x, _ = _clustered(200, 20, dim=48, seed=1)
    exact = NeighbourIndex.build(x, exact=True)
    ann = NeighbourIndex.build(x, exact=False, m=16, ef_search=64)
    assert not ann.exact
    _, e = exact.search(x[:500], 10)
    _, a = ann.search(x[:500], 10)
    assert recall_at_k(a, e, 10) >= 0.95
    assert recall_at_k(e, e, 10) == 1.0


def test_index_refuses_empty_input() -> None:
    with pytest.raises(BadInput):
        NeighbourIndex.build(np.zeros((0, 4), np.float32))


def test_stored_embeddings_round_trip_and_change_detection(tmp_path) -> None:
    path = tmp_path / "emb.parquet"
    assert len(load_embeddings(path, 4)) == 0
    ids = ["a", "b", "c"]
    hashes = np.array([title_hash(t) for t in ("x", "y", "z")])
    vecs = np.eye(3, 4, dtype=np.float32)
    save_embeddings(path, StoredEmbeddings(ids, hashes, vecs))
    got = load_embeddings(path, 4)
    assert got.ids == ids and np.array_equal(got.hashes, hashes) and np.array_equal(got.vectors, vecs)
    new_ids = ["a", "b", "c", "d"]
    new_hashes = np.array([title_hash(t) for t in ("x", "y2", "z", "w")])
    todo = got.stale_of(new_ids, new_hashes)
    assert todo == [1, 3]  # b's title changed, d is new
    m = merge(got, new_ids, new_hashes, todo, np.full((2, 4), 0.5, np.float32))
    assert np.array_equal(m.vectors[0], vecs[0]) and np.array_equal(m.vectors[2], vecs[2])
    assert np.all(m.vectors[[1, 3]] == 0.5)
    with pytest.raises(StoreError, match="4-d"):
        load_embeddings(path, 8)


def test_failed_save_keeps_the_old_file(tmp_path) -> None:
    path = tmp_path / "emb.parquet"
    save_embeddings(path, StoredEmbeddings(["a"], np.array([1]), np.ones((1, 2), np.float32)))
    blocker = tmp_path / "dir.parquet"
    blocker.mkdir()
    with pytest.raises(StoreError, match="cannot write"):
        save_embeddings(blocker, StoredEmbeddings(["b"], np.array([2]), np.ones((1, 2), np.float32)))
    assert load_embeddings(path, 2).ids == ["a"]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_progress_lines() -> None:
    t = [0.0]
    lines: list[str] = []
    p = Progress("embed", 100, lines.append, every_s=1.0, clock=lambda: t[0])
    t[0] = 2.0
    p.advance(50)
    t[0] = 2.5
    p.advance(10)  # within every_s: no line
    t[0] = 4.0
    p.advance(40)
    assert len(lines) == 2
    assert lines[0].startswith(PROGRESS_TAG) and "50/100 (50.0%) 25.0 rows/s" in lines[0]
    assert "100/100 (100.0%)" in lines[1]


def _ts(s: str) -> float:
    return datetime.fromisoformat(s).replace(tzinfo=UTC).timestamp()


def test_next_run_daily_and_micro_batches() -> None:
    assert next_run(_ts("2026-12-01T02:30:00"), "03:00", 7200) == (_ts("2026-12-01T03:00:00"), "daily")
    assert next_run(_ts("2026-12-01T03:00:00"), "03:00", 7200) == (_ts("2026-12-01T05:00:00"), "micro")
    assert next_run(_ts("2026-12-01T23:59:00"), "03:00", 7200) == (_ts("2026-12-02T01:00:00"), "micro")
    assert next_run(_ts("2026-12-02T01:00:00"), "03:00", 7200) == (_ts("2026-12-02T03:00:00"), "daily")
    with pytest.raises(BadInput):
        next_run(0, "25:00", 3600)


def test_cron_lines() -> None:
    lines = cron_lines("03:15", 4 * 3600, ["hotpath", "jobs", "submit", "semantic-refresh"])
    assert lines[1] == "15 3 * * * hotpath jobs submit semantic-refresh --wait"
    assert lines[2] == "15 7,11,15,19,23 * * * hotpath jobs submit semantic-refresh --micro-batch --wait"
    with pytest.raises(BadInput, match="whole-hour"):
        cron_lines("03:00", 5400, ["x"])
