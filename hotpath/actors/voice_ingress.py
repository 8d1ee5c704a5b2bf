"""MQTT ingress of the voice edge: subscribes ``wearable/+/audio``, validates every payload, and hands
each device's chunks to that device's stream (a Ray actor, created on first sight, retired when idle).

Fault-tolerance contract: no durable state. Bad payloads, wrong sample rates, floods and unknown
topics are refused here — counted, and answered with an error event on the device's events topic
(rate-limited to one per code per second) — so they never reach a stream. If the ingress restarts,
its streams are recreated on the devices' next chunks (their old actors are owned by it and die
with it). ``start`` is idempotent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Awaitable, Callable, Protocol

import aiomqtt

from hotpath.errors import BadInput, ServiceUnavailable
from hotpath.streams.mqtt import client_login
from hotpath.voice.audio import AudioChunk, duration_s, parse_payload
from hotpath.voice.limits import Counters, FloodGuard, device_from_topic
from hotpath.voice.messages import TraceEvent, events_topic
from hotpath.voice.settings import VoiceSettings

from hotpath.actors.voice_mqtt import MqttPublisher

__all__ = ["VoiceIngress", "VoiceIngressActor", "StreamSink"]

log = logging.getLogger(__name__)


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


async def consume(client: aiomqtt.Client, ingress: VoiceIngress) -> None:
    """Feed every message of a subscribed client into the ingress."""
    async for msg in client.messages:
        try:
            ingress.on_message(msg.topic.value, bytes(msg.payload) if isinstance(msg.payload, (bytes, bytearray)) else b"")
        except Exception:  # one bad message never stops the loop
            log.exception("ingress failed on a message")
            ingress.counters["ingress_step_failed"] += 1


class VoiceIngressActor:
    """Ray actor shell: one MQTT subscription, one stream actor per device (``num_cpus=0`` each)."""

    def __init__(self, voice: VoiceSettings, mqtt_host: str, mqtt_port: int, namespace: str | None = None) -> None:
        self.voice = voice
        self.host, self.port = mqtt_host, mqtt_port
        self.namespace = namespace
        self.pub = MqttPublisher(mqtt_host, mqtt_port, name="ingress")
        self.ingress = VoiceIngress(voice, publisher=self.pub, spawn=self._spawn_actor, retire=self._retire_actor)
        self._task: asyncio.Task | None = None
        self._reaper: asyncio.Task | None = None
        self._subscribed = asyncio.Event()

    def _spawn_actor(self, device: str):
        import ray

        from hotpath.actors.voice_stream import VoiceStreamActor

        handle = ray.remote(VoiceStreamActor).options(num_cpus=0, max_concurrency=100).remote(
            device, self.voice, self.host, self.port)

        class Sink:
            def push(self, chunk):
                return handle.push.remote(chunk)  # fire and forget; the actor bounds its queue

        sink = Sink()
        sink.handle = handle
        return sink

    async def _retire_actor(self, device: str, sink) -> None:
        import ray

        try:
            await asyncio.wait_for(sink.handle.close.remote(), 10)
        finally:
            ray.kill(sink.handle)

    async def start(self) -> str:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())
            self._reaper = asyncio.get_running_loop().create_task(self._reap_loop())
        await asyncio.wait_for(self._subscribed.wait(), 15)
        return self.ingress.audio_filter

    async def _loop(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(self.host, self.port, identifier=None, timeout=5, **client_login()) as client:
                    await client.subscribe(self.ingress.audio_filter, qos=1)
                    self._subscribed.set()
                    await consume(client, self.ingress)
            except aiomqtt.MqttError as exc:
                log.warning("ingress lost the broker (%s); reconnecting", exc)
                self.ingress.counters["mqtt_reconnects"] += 1
                await asyncio.sleep(1.0)

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(min(5.0, self.voice.limits.idle_retire_s / 2))
            try:
                await self.ingress.reap()
            except Exception:
                log.exception("reaper pass failed")

    async def stats(self) -> dict:
        return self.ingress.stats()

    async def device_stats(self) -> dict:
        out = {}
        for d, sink in list(self.ingress.streams.items()):
            try:
                out[d] = await asyncio.wait_for(sink.handle.stats.remote(), 5)
            except Exception as exc:
                out[d] = {"error": repr(exc)}
        return out

    async def stream_tasks(self) -> dict:
        return {d: await s.handle.tasks.remote() for d, s in list(self.ingress.streams.items())}

    async def drain(self, timeout: float = 10.0) -> dict:
        """Wait for every stream to finish what it has (tests, the CLI, the benchmark)."""
        handles = [s.handle for s in self.ingress.streams.values()]
        res = await asyncio.gather(*(h.drain.remote(timeout) for h in handles), return_exceptions=True)
        return {d: r if not isinstance(r, Exception) else {"error": repr(r)} for d, r in zip(self.ingress.streams, res)}

    async def stop(self) -> None:
        for t in (self._task, self._reaper):
            if t is not None:
                t.cancel()
        for d, sink in list(self.ingress.streams.items()):
            try:
                await self._retire_actor(d, sink)
            except Exception:
                pass
        self.ingress.streams.clear()
        await self.pub.close()
