"""Open the event log the settings' profile names: the embedded file log (``embedded``) or Kafka
(``full``). The client library is imported only for the backend chosen; nothing connects here."""

from __future__ import annotations

from hotpath.config import Settings
from hotpath.streams.base import EventLog

__all__ = ["open_event_log"]


def open_event_log(settings: Settings) -> EventLog:
    """The embedded file log for ``embedded``, Kafka for ``full``."""
    if settings.profile == "full":
        from hotpath.streams.kafka_log import KafkaEventLog

        return KafkaEventLog(settings)
    from hotpath.streams.embedded_log import EmbeddedEventLog

    return EmbeddedEventLog(settings)
