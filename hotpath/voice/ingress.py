"""MQTT ingress of the voice edge: validates every ``wearable/+/audio`` payload and hands each device's
chunks to that device's session (on a session host chosen by :func:`host_for`; created on first sight,
retired when idle). The MQTT subscription and the Ray wiring are :mod:`hotpath.actors.voice_ingress`.

Fault-tolerance contract: no durable state. Bad payloads, wrong sample rates, floods and unknown
topics are refused here — counted, and answered with an error event on the device's events topic
(rate-limited to one per code per second) — so they never reach a stream. If the ingress restarts,
its sessions are recreated on the devices' next chunks (the session hosts are owned by it and die
with it). ``start`` is idempotent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
import zlib
from typing import Awaitable, Callable, Protocol

from hotpath.errors import BadInput, ServiceUnavailable
from hotpath.voice.audio import AudioChunk, duration_s, parse_payload
from hotpath.voice.messages import Counters, TraceEvent, events_topic
from hotpath.voice.settings import VoiceSettings

__all__ = ["VoiceIngress", "StreamSink", "host_for", "FloodGuard", "valid_device_id", "device_from_topic"]

log = logging.getLogger(__name__)

_DEVICE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def valid_device_id(device_id: str) -> bool:
    return bool(_DEVICE.match(device_id))


def device_from_topic(topic: str, prefix: str = "") -> str | None:
    """``{prefix}wearable/{id}/audio`` -> id, or None when the topic or the id is malformed."""
    if not topic.startswith(prefix):
        return None
    parts = topic[len(prefix):].split("/")
    if len(parts) != 3 or parts[0] != "wearable" or parts[2] != "audio" or not valid_device_id(parts[1]):
        return None
    return parts[1]


class FloodGuard:
    """A token bucket in seconds of audio: a device may send ``rate`` x real time, ``burst_s`` ahead.

    A watch streams 1 s of audio per second; a flood (a stuck retry loop, a replay) is cut off here
    before it reaches the VAD, and only for that device.
    """

    def __init__(self, rate: float = 1.5, burst_s: float = 3.0, clock=time.monotonic) -> None:
        self.rate, self.burst = rate, burst_s
        self.clock = clock
        self.tokens = burst_s
        self.last = clock()

    def allow(self, audio_s: float) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if audio_s > self.tokens + 1e-9:
            return False
        self.tokens -= audio_s
        return True


def host_for(device_id: str, hosts: int) -> int:
    """The session host of a device: a stable hash of its id (the same in every process)."""
    return zlib.crc32(device_id.encode()) % hosts


class StreamSink(Protocol):
    def push(self, chunk: AudioChunk) -> object: ...


class VoiceIngress:
    """The ingress logic over any stream factory (Ray actors in production, local objects in tests)."""

    def __init__(
        self,
        voice: VoiceSettings,
        *,
        publisher,
        spawn: Callable[[str], StreamSink],
        retire: Callable[[str, StreamSink], Awaitable[None]] | None = None,
    ) -> None:
        self.voice = voice
        self.pub = publisher
        self.spawn = spawn
        self.retire = retire
        self.streams: dict[str, StreamSink] = {}
        self.last_seen: dict[str, float] = {}
        self.guards: dict[str, FloodGuard] = {}
        self.arrivals: dict[str, int] = {}
        self.counters = Counters()
        self._last_error: dict[tuple[str, str], float] = {}
        self._tasks: set[asyncio.Task] = set()

    @property
    def audio_filter(self) -> str:
        return f"{self.voice.topic_prefix}wearable/+/audio"

    def on_message(self, topic: str, payload: bytes) -> bool:
        """One MQTT message; True when it was handed to a stream."""
        now = time.time()
        self.counters["messages"] += 1
        device = device_from_topic(topic, self.voice.topic_prefix)
        if device is None:
            self.counters["bad_topic"] += 1
            return False
        lim = self.voice.limits
        try:
            chunk = parse_payload(device, payload, max_bytes=lim.max_payload_bytes, sample_rate=lim.sample_rate, received_at=now)
        except BadInput as exc:
            code = "bad_sample_rate" if exc.field == "rate" else "bad_payload"
            self._error(device, code, exc.message)
            return False
        guard = self.guards.get(device)
        if guard is None:
            guard = self.guards[device] = FloodGuard()
        if not guard.allow(duration_s(chunk.pcm)):
            self._error(device, "flood_dropped", "audio arrives faster than real time; chunk dropped")
            return False
        sink = self.streams.get(device)
        if sink is None:
            if len(self.streams) >= lim.max_devices:
                self._error(device, "too_many_devices", f"this edge serves at most {lim.max_devices} devices")
                return False
            sink = self.streams[device] = self.spawn(device)
            self.counters["streams_created"] += 1
        self.last_seen[device] = time.monotonic()
        n = self.arrivals[device] = self.arrivals.get(device, 0) + 1
        sink.push(dataclasses.replace(chunk, arrival=n))
        self.counters["chunks"] += 1
        return True

    def _error(self, device: str, code: str, text: str) -> None:
        self.counters[code] += 1
        now = time.monotonic()
        if now - self._last_error.get((device, code), 0.0) < 1.0:
            return
        self._last_error[(device, code)] = now
        ev = TraceEvent("error", device, "", time.time(), None, {"code": code, "text": text})
        self._spawn(self._publish(events_topic(device, self.voice.topic_prefix), ev.to_json()))

    async def _publish(self, topic: str, payload: bytes) -> None:
        try:
            await self.pub.publish(topic, payload)
        except ServiceUnavailable as exc:
            self.counters["event_publish_failed"] += 1
            log.warning("%s", exc)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reap(self) -> list[str]:
        """Retire the streams of devices idle for ``idle_retire_s``."""
        cutoff = time.monotonic() - self.voice.limits.idle_retire_s
        gone = [d for d, t in self.last_seen.items() if t < cutoff]
        for d in gone:
            sink = self.streams.pop(d, None)
            self.last_seen.pop(d, None)
            self.guards.pop(d, None)
            self.arrivals.pop(d, None)
            if sink is not None and self.retire is not None:
                try:
                    await self.retire(d, sink)
                except Exception:
                    log.exception("retiring the stream of %s failed", d)
            self.counters["streams_retired"] += 1
        return gone

    def stats(self) -> dict:
        return {"devices": sorted(self.streams), "counters": self.counters.snapshot()}
