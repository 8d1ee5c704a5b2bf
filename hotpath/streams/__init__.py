"""Event-log adapters behind :class:`hotpath.streams.base.EventLog` (the interface lives here), and MQTT
(:mod:`hotpath.streams.mqtt`).

- :class:`~hotpath.streams.embedded_log.EmbeddedEventLog`: SQLite files per topic (embedded profile)
- :class:`~hotpath.streams.kafka_log.KafkaEventLog`: Kafka via aiokafka (full profile)

Both partition keyed events with :func:`hotpath.streams.base.partition_for` (keyless events go to
partition 0), so a key lands on the same partition whichever log carries it. Pick one with
:func:`hotpath.streams.factory.open_event_log`. Imported lazily: aiokafka loads only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["EmbeddedEventLog", "KafkaEventLog"]

if TYPE_CHECKING:
    from hotpath.streams.embedded_log import EmbeddedEventLog
    from hotpath.streams.kafka_log import KafkaEventLog


def __getattr__(name: str) -> Any:
    if name == "EmbeddedEventLog":
        from hotpath.streams.embedded_log import EmbeddedEventLog

        return EmbeddedEventLog
    if name == "KafkaEventLog":
        from hotpath.streams.kafka_log import KafkaEventLog

        return KafkaEventLog
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
