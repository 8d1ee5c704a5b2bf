"""Session-host actors of the voice edge: each hosts the sessions of many devices (sharded by id).

A host holds one Silero VAD session, one intent classifier, one TTS engine, one MQTT publisher, one
STT gRPC channel and one pipeline, shared by every device it hosts; a device costs only its
:class:`~hotpath.voice.device.VoiceStream` (the VAD's recurrent state, the segmenter, a bounded
chunk queue). So memory grows with the number of hosts, not of watches.

Fault-tolerance contract: live state only (see :mod:`hotpath.voice.device`); the ingress owns the
hosts, and a host that dies takes its devices' open utterances with it (their next chunks open new
sessions on the restarted host). ``push`` never blocks and never raises.

Sessions and the ingress: every time the ingress (re)opens a device's stream it numbers it (the
*generation*) and its chunks carry that number. A chunk of a newer generation replaces the device's
session (the old one is closed); a chunk of an older one is stale and dropped. The host retires a
session itself once no chunk came for ``idle_retire_s`` — so calls that arrive out of order, or while
the host is still loading its models, never cut an utterance short.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

from hotpath.clients.cloud import CloudClient, Webhook
from hotpath.clients.sip import SipDialer
from hotpath.clients.stt import SttClient
from hotpath.streams.mqtt import MqttPublisher
from hotpath.voice.audio import AudioChunk
from hotpath.voice.device import VoiceStream
from hotpath.voice.pipeline import Pipeline
from hotpath.voice.routing import load_classifier
from hotpath.voice.settings import VoiceSettings
from hotpath.voice.tts import create_tts

__all__ = ["VoiceSessionHost", "build_pipeline"]

log = logging.getLogger(__name__)


def build_pipeline(voice: VoiceSettings, publisher) -> Pipeline:
    """The pipeline with its adapters (intent model, TTS, cloud client, dialer, webhook)."""
    a = voice.actions
    return Pipeline(
        voice,
        classifier=load_classifier(voice.classifier),
        tts=create_tts(voice.tts),
        publisher=publisher,
        cloud=CloudClient(voice.cloud.endpoint, voice.cloud.api_key.get_secret_value(), timeout_s=voice.cloud.timeout_s),
        dialer=SipDialer(a.sip_pbx, from_user=a.sip_from_user, local_port=a.sip_local_port,
                         timeout_s=a.sip_timeout_s, hold_s=a.sip_hold_s, auth_user=a.sip_auth_user,
                         password=a.sip_password.get_secret_value()) if a.sip_pbx else None,
        webhook=Webhook() if a.dial_webhook else None,
    )


class VoiceSessionHost:
    """Ray actor (async) hosting the :class:`VoiceStream` of every device whose id hashes to it."""

    def __init__(self, voice: VoiceSettings, mqtt_host: str, mqtt_port: int, index: int = 0) -> None:
        self.voice, self.index = voice, index
        self.pub = MqttPublisher(mqtt_host, mqtt_port, name=f"voice-host-{index}")
        self.pipeline = build_pipeline(voice, self.pub)
        self.stt = SttClient(f"{voice.stt.host}:{voice.stt.grpc_port}",
                             timeout_s=voice.stt.request_timeout_s + voice.max_utterance_s)
        self.sessions: dict[str, VoiceStream] = {}
        self.generations: dict[str, int] = {}
        self.stale = 0
        self._retry: asyncio.Task | None = None
        self._reaper: asyncio.Task | None = None
        self._closing: set[asyncio.Task] = set()

    def _session(self, device_id: str, generation: int) -> VoiceStream | None:
        session = self.sessions.get(device_id)
        current = self.generations.get(device_id, generation)
        if generation < current:
            return None  # a chunk of a stream the ingress has since reopened
        if session is not None and generation > current:
            self._close_later(self.sessions.pop(device_id))
            session = None
        if session is None:
            session = self.sessions[device_id] = VoiceStream(
                device_id, self.voice, publisher=self.pub, stt=self.stt, pipeline=self.pipeline)
            self.generations[device_id] = generation
        return session

    async def push(self, chunk: AudioChunk, generation: int = 0) -> bool:
        if self._retry is None:
            loop = asyncio.get_running_loop()
            self._retry = loop.create_task(self._retry_loop())
            self._reaper = loop.create_task(self._reap_loop())
        session = self._session(chunk.device_id, generation)
        if session is None:
            self.stale += 1
            return False
        return session.push(chunk)

    def _close_later(self, session: VoiceStream) -> None:
        task = asyncio.get_running_loop().create_task(session.close(5.0))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _reap_loop(self) -> None:
        idle_s = self.voice.limits.idle_retire_s
        while True:
            await asyncio.sleep(min(5.0, idle_s / 2))
            cutoff = time.monotonic() - idle_s
            for device, session in list(self.sessions.items()):
                if session.last_activity < cutoff and session.queue.empty() and not session.stream.in_speech:
                    await self.retire(device)

    async def _retry_loop(self) -> None:
        while True:
            await asyncio.sleep(self.voice.cloud.retry_interval_s)
            try:
                await self.pipeline.retry_cloud()
            except Exception:
                log.exception("cloud retry pass failed")

    async def retire(self, device_id: str) -> None:
        """Drop a device's session (after what it has queued is processed)."""
        session = self.sessions.pop(device_id, None)
        if session is not None:
            await session.close(5.0)
            self.pipeline.close_dialogs(device_id)  # its pending question's timer goes with it

    async def drain(self, timeout: float = 10.0) -> dict:
        sessions = list(self.sessions.values())
        await asyncio.gather(*(s.drain(timeout) for s in sessions))
        return {s.device_id: s.stats() for s in sessions}

    async def stats(self) -> dict:
        """Host-wide figures: devices hosted, the process's RSS (bytes), pid, pipeline counters."""
        import psutil

        return {"host": self.index, "pid": os.getpid(), "rss": psutil.Process().memory_info().rss,
                "devices": len(self.sessions), "stale_chunks": self.stale,
                "counters": self.pipeline.counters.snapshot()}

    async def device_stats(self) -> dict:
        return {d: s.stats() for d, s in self.sessions.items()}

    async def tasks(self) -> list[str]:
        """Stacks of this host's asyncio tasks (for diagnosing a stuck stream)."""
        return _task_dump()

    async def close(self) -> None:
        await asyncio.gather(*(s.drain(5.0) for s in self.sessions.values()))
        self.pipeline.close_dialogs()
        await self.stt.close()
        await self.pub.close()


def _task_dump() -> list[str]:
    out = []
    for t in asyncio.all_tasks():
        coro, chain = t.get_coro(), []
        while coro is not None:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
            if frame is not None:
                chain.append(f"{frame.f_code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno} {frame.f_code.co_name}")
            coro = getattr(coro, "cr_await", None)
        out.append(" <- ".join(reversed(chain)) or repr(t))
    return out
