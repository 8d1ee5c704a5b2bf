"""Pick the implementation behind each storage interface from the settings' profile (the event log's
opener is :func:`hotpath.streams.factory.open_event_log`).

=================  ==========================  ==========================
opener             profile ``embedded``        profile ``full``
=================  ==========================  ==========================
open_hot_cache     Redis                       Redis
open_dimension     SQLite                      Cassandra
=================  ==========================  ==========================

Client libraries are imported only for the backend chosen. Nothing connects here: each adapter
connects on first use, so opening is cheap and never fails for a server that is down.
"""

from __future__ import annotations

from hotpath.config import Settings
from hotpath.stores.base import DimensionStore, HotCache

__all__ = ["open_hot_cache", "open_dimension_store"]


def open_hot_cache(settings: Settings) -> HotCache:
    """The Redis hot cache (both profiles use Redis)."""
    from hotpath.stores.redis_cache import RedisHotCache

    return RedisHotCache(settings)


def open_dimension_store(settings: Settings) -> DimensionStore:
    """SQLite for ``embedded``, Cassandra for ``full``."""
    if settings.profile == "full":
        from hotpath.stores.cassandra_dim import CassandraDimensionStore

        return CassandraDimensionStore(settings)
    from hotpath.stores.sqlite_dim import SqliteDimensionStore

    return SqliteDimensionStore(settings)
