"""The factory picks each interface's implementation from the profile, and connects to nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotpath.config import Settings
from hotpath.stores.cassandra_dim import CassandraDimensionStore
from hotpath.stores.factory import open_dimension_store, open_hot_cache
from hotpath.streams.factory import open_event_log
from hotpath.stores.redis_cache import RedisHotCache
from hotpath.stores.sqlite_dim import SqliteDimensionStore
from hotpath.streams.embedded_log import EmbeddedEventLog
from hotpath.streams.kafka_log import KafkaEventLog


def _settings(profile: str, tmp_path: Path) -> Settings:
    # ports nobody listens on: opening must not connect
    return Settings(
        profile=profile,
        runtime_dir=tmp_path,
        redis={"port": 1},
        kafka={"port": 1},
        cassandra={"port": 1},
    )


@pytest.mark.parametrize(
    ("profile", "dim_cls", "log_cls"),
    [("embedded", SqliteDimensionStore, EmbeddedEventLog), ("full", CassandraDimensionStore, KafkaEventLog)],
)
async def test_factory_by_profile(profile: str, dim_cls: type, log_cls: type, tmp_path: Path) -> None:
    settings = _settings(profile, tmp_path)
    cache = open_hot_cache(settings)
    dims = open_dimension_store(settings)
    log = open_event_log(settings)
    try:
        assert isinstance(cache, RedisHotCache)
        assert isinstance(dims, dim_cls)
        assert isinstance(log, log_cls)
    finally:
        cache.close()
        dims.close()
        await log.close()


def test_embedded_paths_live_in_runtime_dir(tmp_path: Path) -> None:
    settings = _settings("embedded", tmp_path)
    dims = open_dimension_store(settings)
    log = open_event_log(settings)
    assert isinstance(dims, SqliteDimensionStore) and dims.path == tmp_path / "data/dimensions.sqlite"
    assert isinstance(log, EmbeddedEventLog) and log.root == tmp_path / "data/eventlog"
    dims.close()
