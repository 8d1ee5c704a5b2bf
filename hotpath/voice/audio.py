"""Audio on the wire: PCM16 mono 16 kHz payloads, raw or framed, validated and put back in order.

Two payload forms arrive on ``wearable/{id}/audio``:

* raw: the payload *is* PCM16 little-endian mono at 16 kHz (200-500 ms per chunk);
* framed: ``MAGIC`` + a 2-byte big-endian header length + a small JSON header + the PCM beside it
  (never base64). The header carries ``seq`` and optional ``start``/``stop`` flags, ``rate``,
  ``width``, ``channels``, so devices on QoS 1 can be de-duplicated and re-ordered.

The same framing carries reply audio back on ``wearable/{id}/tts`` (``start`` on the first chunk,
``stop`` on an empty last one), so a watch decodes both directions with one parser.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

import numpy as np

from hotpath.errors import BadInput

__all__ = [
    "SAMPLE_RATE",
    "SAMPLE_WIDTH",
    "MAGIC",
    "AudioChunk",
    "parse_payload",
    "encode_framed",
    "Sequencer",
    "pcm_to_float",
    "duration_s",
    "read_wav",
]

SAMPLE_RATE = 16000
SAMPLE_WIDTH = 2
MAGIC = b"HPA1"
_HEADER_MAX = 1024


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """One validated audio payload of one device."""

    device_id: str
    pcm: bytes
    """PCM16 little-endian mono at 16 kHz; may be empty on a framed stop."""
    seq: int | None = None
    """Sequence number of a framed payload; None for raw payloads (taken in arrival order)."""
    start: bool = False
    """The device says an utterance (push-to-talk) starts here."""
    stop: bool = False
    """The device says the utterance ends here."""
    received_at: float = 0.0
    meta: dict[str, object] = field(default_factory=dict)
    """Extra header fields passed through (e.g. ``sent_at`` from the benchmark)."""
    arrival: int = 0
    """Arrival number given by the ingress (1, 2, ...; 0: none): restores the broker's order after
    a hop that may reorder (Ray async actor calls)."""


def parse_payload(
    device_id: str,
    payload: bytes,
    *,
    max_bytes: int,
    sample_rate: int = SAMPLE_RATE,
    received_at: float = 0.0,
) -> AudioChunk:
    """Validate one MQTT payload. Raises :class:`BadInput` (with ``field``) when it is refused."""
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise BadInput("audio payload is not bytes", field="payload")
    payload = bytes(payload)
    if len(payload) > max_bytes:
        raise BadInput(f"audio payload of {len(payload)} bytes exceeds {max_bytes}", field="size")
    if payload.startswith(MAGIC):
        return _parse_framed(device_id, payload, sample_rate=sample_rate, received_at=received_at)
    if not payload:
        raise BadInput("empty audio payload", field="size")
    if len(payload) % SAMPLE_WIDTH:
        raise BadInput("raw PCM16 payload has an odd number of bytes", field="size")
    return AudioChunk(device_id, payload, received_at=received_at)


def _parse_framed(device_id: str, payload: bytes, *, sample_rate: int, received_at: float) -> AudioChunk:
    if len(payload) < len(MAGIC) + 2:
        raise BadInput("framed payload is truncated", field="header")
    (hlen,) = struct.unpack(">H", payload[len(MAGIC) : len(MAGIC) + 2])
    body = len(MAGIC) + 2
    if hlen == 0 or hlen > _HEADER_MAX or body + hlen > len(payload):
        raise BadInput("framed payload has a bad header length", field="header")
    try:
        header = json.loads(payload[body : body + hlen])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput("framed payload header is not JSON", field="header") from exc
    if not isinstance(header, dict):
        raise BadInput("framed payload header is not an object", field="header")
    seq = header.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise BadInput("framed payload needs a non-negative integer seq", field="seq")
    rate = header.get("rate", SAMPLE_RATE)
    if rate != sample_rate:
        raise BadInput(f"sample rate {rate} Hz refused; send {sample_rate} Hz", field="rate")
    if header.get("width", SAMPLE_WIDTH) != SAMPLE_WIDTH or header.get("channels", 1) != 1:
        raise BadInput("only 16-bit mono PCM is accepted", field="format")
    pcm = payload[body + hlen :]
    if len(pcm) % SAMPLE_WIDTH:
        raise BadInput("framed PCM has an odd number of bytes", field="size")
    start, stop = bool(header.get("start", False)), bool(header.get("stop", False))
    if not pcm and not (start or stop):
        raise BadInput("framed payload carries no audio and no flag", field="size")
    meta = {k: v for k, v in header.items() if k not in {"seq", "start", "stop", "rate", "width", "channels"}}
    return AudioChunk(device_id, pcm, seq=seq, start=start, stop=stop, received_at=received_at, meta=meta)


def encode_framed(
    pcm: bytes,
    *,
    seq: int,
    start: bool = False,
    stop: bool = False,
    rate: int = SAMPLE_RATE,
    **extra: object,
) -> bytes:
    """The framed form: ``MAGIC`` + header length + JSON header + PCM."""
    header: dict[str, object] = {"seq": seq, "rate": rate}
    if start:
        header["start"] = True
    if stop:
        header["stop"] = True
    header.update(extra)
    raw = json.dumps(header, separators=(",", ":")).encode()
    return MAGIC + struct.pack(">H", len(raw)) + raw + pcm


class Sequencer:
    """De-duplicates and re-orders framed chunks of one device (QoS 1 delivers at least once).

    Raw chunks pass straight through. A chunk ahead of the next expected ``seq`` is held in a window
    of ``window`` chunks; when the window overflows the gap is given up on (counted in ``skipped``)
    and delivery resumes at the oldest held chunk. A ``start`` flag resets the expected number.
    """

    def __init__(self, window: int = 16) -> None:
        self.window = window
        self._next: int | None = None
        self._held: dict[int, AudioChunk] = {}
        self.duplicates = 0
        self.skipped = 0

    def push(self, chunk: AudioChunk) -> list[AudioChunk]:
        if chunk.seq is None:
            return [chunk]
        if chunk.start and (self._next is None or abs(chunk.seq - self._next) > self.window):
            self._next, self._held = chunk.seq, {}
        if self._next is None:
            self._next = chunk.seq
        if chunk.seq < self._next or chunk.seq in self._held:
            self.duplicates += 1
            return []
        self._held[chunk.seq] = chunk
        out = self._drain()
        if len(self._held) > self.window:
            oldest = min(self._held)
            self.skipped += oldest - self._next
            self._next = oldest
            out.extend(self._drain())
        return out

    def _drain(self) -> list[AudioChunk]:
        out = []
        while self._next in self._held:
            out.append(self._held.pop(self._next))
            self._next += 1
        return out


def pcm_to_float(pcm: bytes) -> np.ndarray:
    """PCM16 bytes -> float32 samples in [-1, 1)."""
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def duration_s(pcm: bytes, sample_rate: int = SAMPLE_RATE) -> float:
    return len(pcm) / (SAMPLE_WIDTH * sample_rate)


def read_wav(path) -> bytes:
    """A WAV file of any rate, width (8/16/24/32-bit PCM) and channel count -> PCM16 mono 16 kHz
    (channels averaged, resampled with soxr). Raises :class:`BadInput` for what is not such a file."""
    import wave

    from hotpath.voice.tts import resample, to_pcm16

    try:
        with wave.open(str(path)) as w:
            rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
            raw = w.readframes(w.getnframes())
    except FileNotFoundError:
        raise BadInput(f"no such WAV file: {path}", field="wav") from None
    except (wave.Error, EOFError, OSError) as exc:
        raise BadInput(f"{path} is not a PCM WAV file: {exc}", field="wav") from exc
    if width == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
    elif width == 2:
        x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v) / float(1 << 23)).astype(np.float32)
    elif width == 4:
        x = np.frombuffer(raw, "<i4").astype(np.float32) / 2**31
    else:
        raise BadInput(f"{path}: {width * 8}-bit samples are not supported", field="wav")
    if channels > 1:
        x = x[: len(x) // channels * channels].reshape(-1, channels).mean(axis=1)
    if not len(x):
        raise BadInput(f"{path} holds no audio", field="wav")
    return to_pcm16(resample(x, rate, SAMPLE_RATE))
