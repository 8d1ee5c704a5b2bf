"""A simulated watch: speaks PCM into MQTT as a wearable would and collects what comes back.

A client tool (it holds an MQTT connection), used by ``hotpath voice say``, the end-to-end test and
``hotpath bench voice``. It publishes framed 200 ms chunks paced in real time, and records when the
chunk that completes the VAD's silence window left the watch: that instant is "end of speech" with
the silence window excluded, the zero of every latency the benchmark reports.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt

from hotpath.errors import ConfigError, ServiceUnavailable
from hotpath.streams.mqtt_login import client_login
from hotpath.voice.audio import encode_framed, parse_payload
from hotpath.voice.messages import audio_topic, events_topic, tts_topic

__all__ = ["SimulatedWatch", "Spoken", "synthesize_speech"]


def synthesize_speech(text: str, *, speed: int = 150, voice: str = "en-us") -> bytes:
    """PCM16 mono 16 kHz of ``text`` (espeak-ng, resampled with sox)."""
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        raise ConfigError("espeak-ng and sox are needed to synthesize speech")
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = Path(tmp) / "raw.wav", Path(tmp) / "out.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text], check=True, timeout=30)
        subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out)], check=True, timeout=30)
        with wave.open(str(out)) as w:
            return w.readframes(w.getnframes())


def speech_end(pcm: bytes, level: int = 600) -> int:
    """Byte offset just past the last sample louder than ``level`` (synthesized speech ends in silence)."""
    import numpy as np

    loud = np.flatnonzero(np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32)) > level)
    return int(loud[-1] + 1) * 2 if len(loud) else len(pcm)


@dataclass
class Spoken:
    """One utterance a watch sent, and what came back for it."""

    text: str
    t_end: float = 0.0
    """Wall clock when the chunk completing the silence window was published."""
    tts: list = field(default_factory=list)
    """(receive time, AudioChunk) of reply frames."""
    events: list = field(default_factory=list)
    """(receive time, event dict)."""
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def reply_pcm(self) -> bytes:
        return b"".join(c.pcm for _, c in self.tts)

    @property
    def first_audio_at(self) -> float | None:
        return next((t for t, c in self.tts if c.pcm), None)

    def event(self, name: str) -> dict | None:
        return next((e for _, e in self.events if e["event"] == name), None)


class SimulatedWatch:
    def __init__(self, device_id: str, host: str, port: int, *, prefix: str = "", chunk_ms: int = 200,
                 silence_s: float = 0.7) -> None:
        self.device_id = device_id
        self.host, self.port, self.prefix = host, port, prefix
        self.chunk_bytes = 16000 * 2 * chunk_ms // 1000
        self.chunk_s = chunk_ms / 1000
        self.silence_s = silence_s
        self.seq = 0
        self.current: Spoken | None = None
        self.history: list[Spoken] = []
        self.errors: list[dict] = []
        self._client: aiomqtt.Client | None = None
        self._reader: asyncio.Task | None = None

    async def __aenter__(self) -> SimulatedWatch:
        self._client = aiomqtt.Client(self.host, self.port, timeout=5, **client_login("simulator"))
        try:
            await self._client.__aenter__()
        except aiomqtt.MqttError as exc:
            raise ServiceUnavailable(f"MQTT broker {self.host}:{self.port} unreachable: {exc}",
                                     hint="start it with hotpath services up") from exc
        await self._client.subscribe(tts_topic(self.device_id, self.prefix), qos=0)
        await self._client.subscribe(events_topic(self.device_id, self.prefix), qos=0)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def __aexit__(self, *exc) -> None:
        if self._reader:
            self._reader.cancel()
        if self._client:
            await self._client.__aexit__(None, None, None)

    async def _read(self) -> None:
        async for msg in self._client.messages:
            now = time.time()
            topic = msg.topic.value
            if topic.endswith("/tts"):
                chunk = parse_payload(self.device_id, bytes(msg.payload), max_bytes=10**7)
                if self.current is not None:
                    self.current.tts.append((now, chunk))
                    if chunk.stop:
                        self.current.done.set()
            else:
                ev = json.loads(msg.payload)
                if ev.get("event") == "error":
                    self.errors.append(ev)
                if self.current is not None:
                    self.current.events.append((now, ev))

    async def publish_raw(self, payload: bytes, topic: str | None = None) -> None:
        await self._client.publish(topic or audio_topic(self.device_id, self.prefix), payload, qos=1)

    async def speak(self, pcm: bytes, *, text: str = "", lead_s: float = 0.4, tail_s: float = 1.2,
                    realtime: bool = True, framed: bool = True) -> Spoken:
        """Stream silence + ``pcm`` + silence, one chunk per ``chunk_ms`` (paced like a microphone)."""
        spoken = Spoken(text)
        self.current = spoken
        self.history.append(spoken)
        lead = b"\x00\x00" * int(16000 * lead_s)
        audio = lead + pcm + b"\x00\x00" * int(16000 * tail_s)
        end_byte = len(lead) + speech_end(pcm) + int(16000 * self.silence_s) * 2
        start = time.monotonic()
        n = 0
        for off in range(0, len(audio), self.chunk_bytes):
            if realtime:
                # the chunk is complete (recorded) chunk_s after its first sample
                await asyncio.sleep(max(0.0, start + (n + 1) * self.chunk_s - time.monotonic()))
            part = audio[off : off + self.chunk_bytes]
            payload = encode_framed(part, seq=self.seq, start=(n == 0)) if framed else part
            self.seq += 1
            await self.publish_raw(payload)
            if off < end_byte <= off + len(part):
                spoken.t_end = time.time()
            n += 1
        if not spoken.t_end:
            spoken.t_end = time.time()
        return spoken

    async def wait_reply(self, spoken: Spoken, timeout: float = 15.0) -> Spoken:
        await asyncio.wait_for(spoken.done.wait(), timeout)
        return spoken
