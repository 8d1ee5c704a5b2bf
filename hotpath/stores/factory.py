"""Pick the implementation behind each storage interface from the settings' profile.

=================  ==========================  ==========================
opener             profile ``embedded``        profile ``full``
=================  ==========================  ==========================
open_hot_cache     Redis                       Redis
open_dimension     SQLite                      Cassandra
open_event_log     embedded file log           Kafka
=================  ==========================  ==========================

Client libraries are imported only for the backend chosen. Nothing connects here: each adapter
connects on first use, so opening is cheap and never fails for a server that is down.
"""

from __future__ import annotations

from hotpath.config import Settings
from hotpath.stores.base import DimensionStore, EventLog, HotCache

__all__ = ["open_hot_cache", "open_dimension_store", "open_event_log"]


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


def open_event_log(settings: Settings) -> EventLog:
    """The embedded file log for ``embedded``, Kafka for ``full``."""
    if settings.profile == "full":
        from hotpath.streams.kafka_log import KafkaEventLog

        return KafkaEventLog(settings)
    from hotpath.streams.embedded_log import EmbeddedEventLog

    return EmbeddedEventLog(settings)
