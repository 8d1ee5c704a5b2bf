"""Speech-to-text behind one interface: an engine opens a stream per utterance.

An :class:`SttEngine` is one model replica. ``open(hints)`` starts an utterance; the stream takes
PCM16 16 kHz chunks with ``accept`` (which may return a partial transcript) and ``finish`` returns
the final :class:`Transcript`. Engines are built by :func:`hotpath.voice.engines.create_engine`
(the interface module imports no engine, so there is no cycle). Streams are used by one caller at a time and never block an event
loop themselves: the gRPC service runs them in a worker thread.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

from hotpath.errors import ServiceUnavailable

__all__ = ["SttHints", "Transcript", "SttStream", "SttEngine", "SttFailed"]


@dataclass(frozen=True, slots=True)
class SttHints:
    """What the site knows that helps recognition."""

    initial_prompt: str = ""
    """The tenant's hint words (Whisper ``initial_prompt``)."""
    tenant_id: str = ""
    language: str = "en"
    device_id: str = ""
    """Lets an engine keep per-device adaptation (pocketsphinx's cepstral mean)."""


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    confidence: float = 0.0
    engine: str = ""
    source: str = ""
    """Which decoder produced it (``grammar``, ``lm``, ``whisper``)."""
    audio_s: float = 0.0
    finish_ms: float = 0.0
    """Time spent in ``finish`` (after the last audio arrived)."""
    alternatives: dict[str, str] = field(default_factory=dict)


class SttStream(abc.ABC):
    @abc.abstractmethod
    def accept(self, pcm: bytes) -> str | None:
        """Take audio; may return a partial transcript."""

    @abc.abstractmethod
    def finish(self) -> Transcript: ...

    def cancel(self) -> None:  # noqa: B027 - optional
        """Drop the utterance (the caller went away)."""


class SttEngine(abc.ABC):
    name: str = "engine"

    @abc.abstractmethod
    def open(self, hints: SttHints) -> SttStream: ...


class SttFailed(ServiceUnavailable):
    """The STT service answered with an error (``code``) or could not be reached.

    Raised by the gRPC client (:mod:`hotpath.clients.stt`); a device stream catches it."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(f"speech-to-text failed ({code}): {text}")
        self.code = code
