"""The ingress actor of the voice edge: one MQTT subscription feeding :class:`~hotpath.voice.ingress.VoiceIngress`,
which hands each device's chunks to its session host (:mod:`hotpath.actors.voice_host`).

The ingress owns ``voice.limits.session_hosts`` host actors (created on first use, ``num_cpus=0``);
a device goes to host :func:`~hotpath.voice.ingress.host_for` of its id. They die with the ingress.
"""

from __future__ import annotations

import asyncio
import logging

import aiomqtt

from hotpath.streams.mqtt import MqttPublisher
from hotpath.voice.ingress import VoiceIngress, host_for
from hotpath.streams.mqtt_login import client_login
from hotpath.voice.settings import VoiceSettings

__all__ = ["VoiceIngressActor"]

log = logging.getLogger(__name__)


async def _consume(client: aiomqtt.Client, ingress: VoiceIngress) -> None:
    """Feed every message of a subscribed client into the ingress; one bad message never stops the loop."""
    async for msg in client.messages:
        try:
            ingress.on_message(msg.topic.value, bytes(msg.payload) if isinstance(msg.payload, (bytes, bytearray)) else b"")
        except Exception:
            log.exception("ingress failed on a message")
            ingress.counters["ingress_step_failed"] += 1


class _HostSink:
    """A device's stream, as the ingress sees it: its chunks go to that device's session host,
    tagged with the stream's generation (see :mod:`hotpath.actors.voice_host`)."""

    def __init__(self, handle, generation: int) -> None:
        self.handle, self.generation = handle, generation

    def push(self, chunk):
        return self.handle.push.remote(chunk, self.generation)  # fire and forget; the session bounds its queue


class VoiceIngressActor:
    """Ray actor shell: one MQTT subscription, a few session-host actors (``num_cpus=0`` each)."""

    def __init__(self, voice: VoiceSettings, mqtt_host: str, mqtt_port: int, namespace: str | None = None) -> None:
        self.voice = voice
        self.host, self.port = mqtt_host, mqtt_port
        self.namespace = namespace
        self.pub = MqttPublisher(mqtt_host, mqtt_port, name="ingress")
        # The hosts retire idle sessions themselves; the ingress forgets a device on its own clock.
        self.ingress = VoiceIngress(voice, publisher=self.pub, spawn=self._sink)
        self.hosts: dict[int, object] = {}
        self._generation = 0
        self._task: asyncio.Task | None = None
        self._reaper: asyncio.Task | None = None
        self._subscribed = asyncio.Event()

    def _host(self, index: int):
        handle = self.hosts.get(index)
        if handle is None:
            import ray

            from hotpath.actors.voice_host import VoiceSessionHost

            handle = self.hosts[index] = ray.remote(VoiceSessionHost).options(
                num_cpus=0, max_concurrency=1000).remote(self.voice, self.host, self.port, index)
        return handle

    def _sink(self, device: str) -> _HostSink:
        self._generation += 1
        return _HostSink(self._host(host_for(device, self.voice.limits.session_hosts)), self._generation)

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
                    await _consume(client, self.ingress)
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

    async def host_stats(self) -> list[dict]:
        """Each session host's devices, RSS (bytes) and pid."""
        hosts = list(self.hosts.values())
        return list(await asyncio.gather(*(h.stats.remote() for h in hosts)))

    async def device_stats(self) -> dict:
        out: dict = {}
        for res in await asyncio.gather(*(asyncio.wait_for(h.device_stats.remote(), 5) for h in self.hosts.values()),
                                        return_exceptions=True):
            if isinstance(res, dict):
                out.update(res)
        return out

    async def stream_tasks(self) -> dict:
        return {i: await h.tasks.remote() for i, h in list(self.hosts.items())}

    async def drain(self, timeout: float = 10.0) -> dict:
        """Wait for every session to finish what it has (tests, the CLI, the benchmark)."""
        out: dict = {}
        res = await asyncio.gather(*(h.drain.remote(timeout) for h in self.hosts.values()), return_exceptions=True)
        for r in res:
            if isinstance(r, dict):
                out.update(r)
        return out

    async def stop(self) -> None:
        import ray

        for t in (self._task, self._reaper):
            if t is not None:
                t.cancel()
        for handle in list(self.hosts.values()):
            try:
                await asyncio.wait_for(handle.close.remote(), 10)
            except Exception:
                pass
            ray.kill(handle)
        self.hosts.clear()
        self.ingress.streams.clear()
        await self.pub.close()
