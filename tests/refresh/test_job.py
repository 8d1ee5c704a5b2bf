"""The semantic refresh end to end, submitted through Ray Job Submission to the local head.

Needs `hotpath services up` (Redis and a Ray head with its dashboard; this runs on the settings'
ports). Each test builds its own world: a small generated catalog, a SQLite dimension store with
every master's old row, Redis keys under a unique prefix (recent views, the refresh queue, a mirror
of some masters), and stored embeddings for most masters, then submits the job and checks what it
wrote and what it left alone.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import numpy as np
import pytest

from hotpath.config import Settings
from hotpath.recs.catalog import Catalog, generate, master_uuid
from hotpath.recs.keys import Keys
from hotpath.recs.settings import CatalogSettings
from hotpath.stores.base import SemanticRelations

pytestmark = [pytest.mark.services, pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(900)]

SMALL = CatalogSettings(masters=120, users=5, departments=2, subcats_per_department=2, leaves_per_subcat=3, seed=3)
NOW = time.time()
DAY = 86400.0
M = master_uuid
RECENT, QUEUED, CHANGED, STALE = [M(5), M(6)], [M(10), M(11)], [M(20), M(21)], [M(30), M(31)]
STALE_COLD = M(32)  # stale too, but over the run's stale cap: stays cold (and still served)
MIRRORED_COLD = M(50)
UNKNOWN = "00000000-0000-4000-8000-0000ffffffff"


@dataclass
class World:
    settings: Settings
    cat: Catalog
    keys: Keys
    cache: object
    store: object
    tmp: Path

    @property
    def ids(self) -> list[str]:
        return [M(i) for i in range(self.cat.n_masters)]


@pytest.fixture(scope="module")
def encoder(settings: Settings):
    from hotpath.embeddings import MiniLMEncoder

    return MiniLMEncoder.load(cache_dir=settings.runtime_dir / "models", threads=2)


def _world(
    settings: Settings, tmp: Path, encoder, *, embed_all_but: list[int] | None, catalog: CatalogSettings = SMALL, **refresh
) -> World:
    from hotpath.refresh.embedding_store import StoredEmbeddings, save_embeddings, title_hash
    from hotpath.stores.redis_cache import RedisHotCache
    from hotpath.stores.sqlite_dim import SqliteDimensionStore

    prefix = f"t{uuid.uuid4().hex[:8]}:"
    cat = generate(catalog, now=NOW)
    cat.save(tmp / "catalog")
    s = settings.model_copy(update={
        "sqlite": settings.sqlite.model_copy(update={"path": tmp / "dim.sqlite"}),
        "duckdb": settings.duckdb.model_copy(update={"path": tmp / "no-rollups.duckdb"}),
        "recs": settings.recs.model_copy(update={"key_prefix": prefix}),
        "refresh": settings.refresh.model_copy(update={
            "catalog_path": tmp / "catalog", "embeddings_path": tmp / "emb" / "embeddings.parquet",
            "stale_per_run": 2, "neighbours": 8, "encoder_threads": 1, **refresh,
        }),
    })  # fmt: skip
    keys = Keys(prefix)
    store = SqliteDimensionStore(s)
    store.ensure_schema()
    ages = {M(30): 300, M(31): 250, M(32): 200}
    rows = []
    for i in range(cat.n_masters):
        age = ages.get(M(i), 1)
        rel = {UUID(M(d)): v for d, v in cat.semantic_of(i)}
        rows.append(SemanticRelations(UUID(M(i)), rel, datetime.fromtimestamp(int(NOW - age * DAY), UTC), "synthetic-v1"))
    store.put_semantic(rows)
    cache = RedisHotCache(s)
    cache.zadd(keys.recent_views("u0"), {RECENT[0]: NOW - 100, RECENT[1]: NOW - 200})
    cache.zadd(keys.recent_views("u1"), {M(7): NOW - 3 * DAY})  # outside the 24 h window
    cache.zadd(keys.refresh_queue, {QUEUED[0]: NOW - 50, QUEUED[1]: NOW - 40, UNKNOWN: NOW - 30})
    for mid in (RECENT[0], MIRRORED_COLD):
        cache.hset(keys.meta(mid), {"cat": "x", "title": "t", "inference_ts": str(int(NOW - DAY))})
        cache.zreplace(keys.sem(mid), {M(99): 0.5})
    if embed_all_but is not None:
        ids = [M(i) for i in range(cat.n_masters) if i not in embed_all_but]
        titles = [cat.title(i) for i in range(cat.n_masters) if i not in embed_all_but]
        save_embeddings(s.refresh.embeddings_path, StoredEmbeddings(
            ids, np.array([title_hash(t) for t in titles]), encoder.embed(titles)))  # fmt: skip
    return World(s, cat, keys, cache, store, tmp)


def _cleanup(w: World) -> None:
    keys = list(w.cache.scan(w.keys.prefix))
    if keys:
        w.cache.delete(*keys)
    w.cache.close()
    w.store.close()


@pytest.fixture
def world(settings, tmp_path, encoder):
    w = _world(settings, tmp_path, encoder, embed_all_but=[20, 21])
    yield w
    _cleanup(w)


def _run(w: World, timeout_s: float = 600, **kw):
    from hotpath.clients.ray_jobs import RayJobs

    client = RayJobs(w.settings)
    job_id = client.submit_semantic_refresh(**kw)
    info = client.wait(job_id, timeout_s=timeout_s, poll_s=2.0)
    return client, job_id, info


def _result(logs: str) -> dict:
    from hotpath.jobs.semantic_refresh import RESULT_TAG
    import json

    lines = [ln for ln in logs.splitlines() if ln.startswith(RESULT_TAG)]
    assert lines, logs[-3000:]
    return json.loads(lines[-1][len(RESULT_TAG):])


def test_refresh_writes_only_hot_rows_refreshes_redis_and_drains_the_queue(world: World, encoder) -> None:
    w = world
    uids = [UUID(m) for m in w.ids]
    marks_before = w.store.semantic_write_marks(uids)
    old = w.store.get_semantic(uids)
    heard: list[str] = []
    sub = w.cache.subscribe(w.keys.channel(w.settings.recs.invalidation_channel), heard.append)
    try:
        time.sleep(0.5)
        client, job_id, info = _run(w)
        logs = client.logs(job_id)
        assert info.status == "SUCCEEDED", logs[-4000:]
        time.sleep(1.0)
    finally:
        sub.close()
    res = _result(logs)
    hot = set(RECENT + QUEUED + CHANGED + STALE)
    assert res["hot"] == len(hot)
    assert res["hot_reasons"] == {"recent": 2, "queued": 2, "changed": 2, "stale": 2}
    assert res["embedded"] == 2 and res["reused_embeddings"] == w.cat.n_masters - 2
    assert res["written_rows"] == len(hot)
    assert "[progress] embed: 2/2" in logs and "[progress] write:" in logs

    # the dimension store: hot rows rewritten, every cold row untouched (row versions)
    marks_after = w.store.semantic_write_marks(uids)
    cold = [u for u in uids if str(u) not in hot]
    assert {u: marks_after[u] for u in cold} == {u: marks_before[u] for u in cold}
    assert all(marks_after[UUID(m)] == marks_before[UUID(m)] + 1 for m in hot)
    new = w.store.get_semantic(uids)
    for m in hot:
        row = new[UUID(m)]
        assert row.inference_source == w.settings.refresh.inference_source
        assert abs(row.inference_ts.timestamp() - res["inference_ts"]) < 1
        assert 0 < len(row.related_masters) <= 8 and UUID(m) not in row.related_masters
        assert all(-1.0 <= v <= 1.0 for v in row.related_masters.values())
    for u in cold:
        assert new[u] == old[u]
    # the stale master over the cap keeps serving its old (> 90 days) row
    assert new[UUID(STALE_COLD)].inference_source == "synthetic-v1"

    # neighbours come from the embeddings: the best one of a master is its most similar title
    i = 5
    vec = encoder.embed([w.cat.title(j) for j in range(w.cat.n_masters)])
    sims = vec @ vec[i]
    sims[i] = -9
    best = M(int(np.argmax(sims)))
    got = new[UUID(M(i))].related_masters
    assert max(got, key=got.get) == UUID(best) or got[UUID(best)] == max(got.values())

    # Redis: hot masters' mirrors replaced (with a TTL), cold mirror untouched, freshness stamp moved
    for m in hot:
        top = dict(w.cache.ztop(w.keys.sem(m), 100))
        assert top == pytest.approx({str(k): v for k, v in new[UUID(m)].related_masters.items()})
        assert w.cache.ttl(w.keys.sem(m)) is not None
    assert dict(w.cache.ztop(w.keys.sem(MIRRORED_COLD), 10)) == {M(99): 0.5}
    assert w.cache.hgetall(w.keys.meta(RECENT[0]))["inference_ts"] == str(res["inference_ts"])
    assert w.cache.hgetall(w.keys.meta(MIRRORED_COLD))["inference_ts"] == str(int(NOW - DAY))
    assert not w.cache.hgetall(w.keys.meta(RECENT[1]))  # not mirrored: no partial hash created
    assert {h.split("|")[0] for h in heard} == {f"master:{m}" for m in hot}

    # the refresh queue is drained (the unknown id too: nothing can refresh it)
    assert w.cache.ztop(w.keys.refresh_queue, 10) == []
    assert res["queue_drained"] == 3

    # every master now has a stored embedding; the new ones match the encoder
    from hotpath.embeddings import DIM
    from hotpath.refresh.embedding_store import load_embeddings

    stored = load_embeddings(w.settings.refresh.embeddings_path, DIM)
    assert sorted(stored.ids) == sorted(w.ids)
    pos = stored.position()
    for j in (20, 21):
        assert float(stored.vectors[pos[M(j)]] @ vec[j]) > 0.999

    # a second run finds nothing new to embed, and only the (now empty) queue and recent views are hot
    client, job_id, info = _run(w, micro_batch=True)
    assert info.status == "SUCCEEDED"
    res2 = _result(client.logs(job_id))
    assert res2["embedded"] == 0 and res2["hot_reasons"]["changed"] == 0 and res2["hot_reasons"]["recent"] == 0


def test_failed_job_leaves_the_old_maps(settings, tmp_path, encoder) -> None:
    w = _world(settings, tmp_path, encoder, embed_all_but=[20, 21])
    try:
        # the side table cannot be written (its folder is a file): the job fails after embedding
        blocker = tmp_path / "blocked"
        blocker.write_text("not a folder")
        from hotpath.refresh.embedding_store import load_embeddings  # noqa: F401

        w.settings = w.settings.model_copy(update={"refresh": w.settings.refresh.model_copy(
            update={"embeddings_path": blocker / "embeddings.parquet"})})  # fmt: skip
        uids = [UUID(m) for m in w.ids]
        before = w.store.semantic_write_marks(uids)
        old = w.store.get_semantic(uids)
        client, job_id, info = _run(w)
        logs = client.logs(job_id)
        assert info.status == "FAILED", logs[-3000:]
        assert "cannot write stored embeddings" in logs
        assert w.store.semantic_write_marks(uids) == before
        assert w.store.get_semantic(uids) == old
        assert dict(w.cache.ztop(w.keys.sem(RECENT[0]), 10)) == {M(99): 0.5}
        assert len(w.cache.ztop(w.keys.refresh_queue, 10)) == 3  # nothing drained
        from hotpath.clients.ray_jobs import RayJobs

        assert RayJobs(w.settings).info(job_id).status == "FAILED"
    finally:
        _cleanup(w)


def test_job_survives_a_killed_encoder_worker(settings, tmp_path, encoder) -> None:
    """Ray Data restarts the killed actor and retries its batches: every title still gets embedded."""
    from ray.util.state import list_actors

    # enough titles in small batches that the embed stage outlasts the kill (120 titles took under 1 s)
    bigger = SMALL.model_copy(update={"masters": 3000})
    w = _world(settings, tmp_path, encoder, embed_all_but=None, batch_size=4, catalog=bigger)
    killed: list[int] = []

    def killer() -> None:
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and not killed:
            try:
                actors = list_actors(address=w.settings.ray.address, filters=[("state", "=", "ALIVE")])
            except Exception:  # the state API is busy while the job starts
                actors = []
            for a in actors:
                if "EmbedTitles" in (a.class_name or "") and a.pid:
                    try:
                        os.kill(int(a.pid), signal.SIGKILL)
                    except ProcessLookupError:  # gone between the listing and the kill: look again
                        continue
                    killed.append(int(a.pid))
                    return
            time.sleep(0.2)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    try:
        client, job_id, info = _run(w)
        t.join(5)
        logs = client.logs(job_id)
        assert killed, "the encoder actor was never seen alive"
        assert info.status == "SUCCEEDED", logs[-4000:]
        res = _result(logs)
        assert res["embedded"] == w.cat.n_masters
        from hotpath.embeddings import DIM
        from hotpath.refresh.embedding_store import load_embeddings

        stored = load_embeddings(w.settings.refresh.embeddings_path, DIM)
        assert len(stored) == w.cat.n_masters
        norms = np.linalg.norm(stored.vectors, axis=1)
        assert np.allclose(norms, 1.0, atol=1e-4)  # no zero rows left by lost batches
    finally:
        _cleanup(w)
