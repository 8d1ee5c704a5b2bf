"""Messages the voice edge publishes: trace events, actions, cloud queries, errors.

Each is a small frozen dataclass with ``to_dict`` / ``from_dict`` and ``to_json``; the wire ``type``
names are private constants. A test walks this module and round-trips every message class.

Topics: ``wearable/{id}/events`` (:class:`TraceEvent`), ``team/summon`` (:class:`SummonTeam`),
``wearable/{id}/tts`` (framed PCM, see :func:`hotpath.voice.audio.encode_framed`).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

__all__ = [
    "EVENT_TYPES", "TraceEvent", "Counters", "SummonTeam", "DialRequest", "CloudQuery", "CloudAnswer",
    "events_topic", "tts_topic", "audio_topic", "MESSAGES",
]

EVENT_TYPES = frozenset(
    {"vad-start", "vad-end", "stt-end", "intent", "action", "cloud", "tts-start", "tts-end", "error"}
)


def events_topic(device_id: str, prefix: str = "") -> str:
    return f"{prefix}wearable/{device_id}/events"


def tts_topic(device_id: str, prefix: str = "") -> str:
    return f"{prefix}wearable/{device_id}/tts"


def audio_topic(device_id: str, prefix: str = "") -> str:
    return f"{prefix}wearable/{device_id}/audio"


class _Message:
    _TYPE: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self._TYPE, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        if data.get("type") != cls._TYPE:
            raise ValueError(f"not a {cls._TYPE} message: {data.get('type')!r}")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":"), default=str).encode()

    @classmethod
    def is_type(cls, data: dict[str, Any]) -> bool:
        return data.get("type") == cls._TYPE


@dataclass(frozen=True, slots=True)
class TraceEvent(_Message):
    """One step of an utterance's pipeline, like Home Assistant's Assist pipeline events."""

    _TYPE: ClassVar[str] = "trace"
    event: str
    """One of :data:`EVENT_TYPES`."""
    device_id: str
    utterance_id: str = ""
    time: float = 0.0
    """Wall clock (epoch seconds) when it happened."""
    since_end_ms: float | None = None
    """Milliseconds since the utterance ended (the VAD's silence window excluded)."""
    data: dict[str, Any] = field(default_factory=dict)
    """Step details: transcript, intent and slots, action, timings, error code and text."""


@dataclass(frozen=True, slots=True)
class SummonTeam(_Message):
    """Published on ``team/summon``."""

    _TYPE: ClassVar[str] = "summon"
    tenant: str
    device: str
    location: str | None
    text: str
    time: float
    team: str | None = None
    utterance_id: str = ""


@dataclass(frozen=True, slots=True)
class DialRequest(_Message):
    """A DIAL_PERSON action (POSTed to a webhook; also the SIP dialer's input)."""

    _TYPE: ClassVar[str] = "dial"
    tenant: str
    device: str
    person: str
    extension: str | None
    location: str | None
    text: str
    time: float


@dataclass(frozen=True, slots=True)
class CloudQuery(_Message):
    """What the cloud assistant is sent: text, tenant and device context (never audio)."""

    _TYPE: ClassVar[str] = "query"
    tenant_id: str
    device_id: str
    text: str
    location: str | None = None
    intent: str | None = None
    confidence: float | None = None
    utterance_id: str = ""
    time: float = 0.0


@dataclass(frozen=True, slots=True)
class CloudAnswer(_Message):
    _TYPE: ClassVar[str] = "answer"
    text: str
    utterance_id: str = ""


MESSAGES = (TraceEvent, SummonTeam, DialRequest, CloudQuery, CloudAnswer)


class Counters(Counter):
    """Named event counters every voice component reports in its stats (``bad_payload``,
    ``flood_dropped``, ``stt_failed``...)."""

    def snapshot(self) -> dict[str, int]:
        return dict(self)
