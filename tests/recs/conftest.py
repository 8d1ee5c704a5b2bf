"""Recs fixtures: one small generated catalog, loaded into the stores of each profile under a unique
key prefix (Redis) / file (SQLite, DuckDB) / keyspace (Cassandra), removed afterwards."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import pytest

from hotpath.config import CassandraSettings, Settings
from hotpath.recs.catalog import Catalog, generate, master_uuid
from hotpath.recs.loader import load_catalog
from .reference import Reference
from hotpath.recs.settings import CatalogSettings
from hotpath.stores.redis_fast import bulk_writer
from hotpath.stores.rollups import DuckDbRollupStore

SMALL = CatalogSettings(masters=2500, users=150, departments=4, subcats_per_department=3, leaves_per_subcat=5, seed=11)


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return generate(SMALL)


def recs_settings_for(base: Settings, tmp: Path, prefix: str, **recs) -> Settings:
    return base.model_copy(
        update={
            "runtime_dir": tmp,
            "sqlite": base.sqlite.model_copy(update={"path": tmp / "dim.sqlite"}),
            "duckdb": base.duckdb.model_copy(update={"path": tmp / "rollups.duckdb"}),
            "recs": base.recs.model_copy(update={"key_prefix": prefix, **recs}),
        }
    )


def drop_prefix(cache, prefix: str) -> None:
    keys = list(cache.scan(prefix))
    for i in range(0, len(keys), 1000):
        cache.delete(*keys[i : i + 1000])


def load_into(s: Settings, cat: Catalog, cache, store) -> None:
    rollups = DuckDbRollupStore(s.in_runtime(s.duckdb.path))
    try:
        load_catalog(cat, s.recs, cache, bulk_writer(cache), store, rollups)
    finally:
        rollups.close()


def queries(cat: Catalog, rng: random.Random, n: int, widgets: list[str]):
    """Related queries mixing users, masters, unknown users/masters and every widget."""
    from hotpath.recs.model import RelatedQuery

    U = len(cat.user_views)
    out = []
    for _ in range(n):
        r = rng.random()
        user = f"u{rng.randrange(U + 20)}" if r < 0.8 else None
        master = master_uuid(rng.randrange(cat.n_masters + 50)) if rng.random() < 0.7 else None
        out.append(RelatedQuery(user, master, rng.choice(widgets), rng.choice([1, 5, 20, 50])))
    out.append(RelatedQuery(None, None, "pdp_related", 10))  # no signal at all: global best-sellers
    out.append(RelatedQuery("nobody", None, "homepage", 10))  # unknown user
    return out


def bs_queries(cat: Catalog, rng: random.Random, n: int):
    from hotpath.recs.model import BestsellersQuery

    U = len(cat.user_views)
    out = []
    for _ in range(n):
        c = rng.choice(cat.cat_ids) if rng.random() < 0.8 else None
        u = f"u{rng.randrange(U)}" if rng.random() < 0.6 else None
        out.append(BestsellersQuery(c, u, rng.choice([1, 10, 30])))
    out.append(BestsellersQuery("no.such.cat", None, 10))
    out.append(BestsellersQuery(None, None, 10))
    return out


@pytest.fixture(scope="session")
def redis_sqlite(settings: Settings, catalog: Catalog, tmp_path_factory):
    """(settings, cache, store): the catalog in real Redis (unique prefix) and SQLite."""
    from hotpath.stores.factory import open_dimension_store, open_hot_cache

    tmp = tmp_path_factory.mktemp("recs-sqlite")
    prefix = f"t-recs-{uuid.uuid4().hex[:8]}:"
    s = recs_settings_for(settings.model_copy(update={"profile": "embedded"}), tmp, prefix)
    cache = open_hot_cache(s)
    if not cache.ping():
        pytest.fail(f"Redis at {s.redis.host}:{s.redis.port} is not up: run `hotpath services up`")
    store = open_dimension_store(s)
    load_into(s, catalog, cache, store)
    yield s, cache, store
    drop_prefix(cache, prefix)
    store.close()
    cache.close()


@pytest.fixture(scope="session")
def redis_cassandra(settings: Settings, catalog: Catalog, tmp_path_factory):
    """(settings, cache, store): the catalog in real Redis (unique prefix) and Cassandra (own keyspace)."""
    from hotpath.stores.factory import open_dimension_store, open_hot_cache

    tmp = tmp_path_factory.mktemp("recs-cassandra")
    prefix = f"t-recs-{uuid.uuid4().hex[:8]}:"
    ks = f"t_recs_{uuid.uuid4().hex[:8]}"
    base = settings.model_copy(
        update={"profile": "full", "cassandra": CassandraSettings(**{**settings.cassandra.model_dump(), "keyspace": ks})}
    )
    s = recs_settings_for(base, tmp, prefix)
    cache = open_hot_cache(s)
    store = open_dimension_store(s)
    load_into(s, catalog, cache, store)
    yield s, cache, store
    drop_prefix(cache, prefix)
    try:
        store.drop_keyspace()
    finally:
        store.close()
        cache.close()


@pytest.fixture(scope="session")
def reference(catalog: Catalog, settings: Settings) -> Reference:
    return Reference(catalog, settings.recs)
