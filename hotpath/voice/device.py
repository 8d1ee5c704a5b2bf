"""One device's voice session: VAD-segments one watch's audio and runs each utterance through STT,
intent, action and reply (plain asyncio; a session-host actor holds many of them).

Fault-tolerance contract: holds only live state (the open utterance, a bounded chunk queue); nothing
is checkpointed — a restarted host starts at the next utterance, and the watch hears an error.
``push`` is never blocking and never raises: a full queue drops the chunk, counts it and tells the
device (at most one error event per second). Created on a device's first chunk and retired when the
device is idle.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from typing import TYPE_CHECKING

from hotpath.voice.audio import AudioChunk
from hotpath.voice.pipeline import Pipeline
from hotpath.voice.settings import VoiceSettings
from hotpath.voice.stt import SttFailed
from hotpath.voice.vad import DeviceStream, SpeechAudio, SpeechEnd, SpeechStart

if TYPE_CHECKING:
    from hotpath.clients.stt import SttClient

__all__ = ["VoiceStream"]

log = logging.getLogger(__name__)


class VoiceStream:
    """One device's session, usable without Ray (the session host, the CLI and tests hold it directly)."""

    def __init__(self, device_id: str, voice: VoiceSettings, *, publisher, stt: SttClient, pipeline: Pipeline) -> None:
        self.device_id = device_id
        self.voice = voice
        self.stream = DeviceStream(device_id, voice)
        self.stt = stt
        self.pipeline = pipeline
        self.counters = pipeline.counters
        self.queue: asyncio.Queue[AudioChunk] = asyncio.Queue(maxsize=voice.limits.max_inflight_chunks)
        self._worker: asyncio.Task | None = None
        self._expect = 1  # the ingress numbers each device's chunks 1, 2, ... (it owns this actor)
        self._pending: dict[int, AudioChunk] = {}
        self._utt: str = ""
        self._call = None
        self._tasks: set[asyncio.Task] = set()
        self._last_error: dict[str, float] = {}
        self.last_activity = time.monotonic()
        self.outcomes = []

    def push(self, chunk: AudioChunk) -> bool:
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run())
        self.last_activity = time.monotonic()
        try:
            self.queue.put_nowait(chunk)
            return True
        except asyncio.QueueFull:
            self._rate_limited_error("flood_dropped", f"more than {self.queue.maxsize} chunks queued; chunk dropped")
            return False

    def _rate_limited_error(self, code: str, text: str) -> None:
        self.counters[code] += 1
        now = time.monotonic()
        if now - self._last_error.get(code, 0.0) >= 1.0:
            self._last_error[code] = now
            self._spawn(self.pipeline.event("error", self.device_id, self._utt, code=code, text=text))

    def _in_order(self, chunk: AudioChunk) -> list[AudioChunk]:
        """Restore the ingress's arrival order (calls into an async actor may start out of order)."""
        if not chunk.arrival:
            return [chunk]
        if chunk.arrival < self._expect:  # already given up on (see below): too late
            self.counters["late_dropped"] += 1
            return []
        self._pending[chunk.arrival] = chunk
        if len(self._pending) > self.queue.maxsize:  # a call lost in transit: give up on the gap
            self._expect = min(self._pending)
        out = []
        while self._expect in self._pending:
            out.append(self._pending.pop(self._expect))
            self._expect += 1
        return out

    async def _run(self) -> None:
        while True:
            for chunk in self._in_order(await self.queue.get()):
                try:
                    await self._process(chunk)
                except Exception:  # a failing step is logged; the stream goes on
                    log.exception("device %s: chunk processing failed", self.device_id)
                    self.counters["stream_step_failed"] += 1

    async def _process(self, chunk: AudioChunk) -> None:
        audio = bytearray()
        for ev in self.stream.push(chunk):
            if isinstance(ev, SpeechAudio):
                audio += ev.pcm
                continue
            if audio:
                await self._send(bytes(audio))
                audio.clear()
            if isinstance(ev, SpeechStart):
                await self._open()
            elif isinstance(ev, SpeechEnd):
                await self._close(ev, chunk)
        if audio:
            await self._send(bytes(audio))

    async def _open(self) -> None:
        self._utt = uuid.uuid4().hex[:12]
        self._spawn(self.pipeline.event("vad-start", self.device_id, self._utt))
        try:
            self._call = await self.stt.open(device_id=self.device_id, tenant_id=self.voice.tenant_id,
                                             initial_prompt=self.voice.initial_prompt)
        except SttFailed as exc:
            self._call = None
            await self._stt_failed(self._utt, exc)

    async def _send(self, pcm: bytes) -> None:
        if self._call is None:
            return
        try:
            await self._call.send(pcm)
        except SttFailed as exc:
            self._call = None
            await self._stt_failed(self._utt, exc)

    async def _close(self, ev: SpeechEnd, chunk: AudioChunk) -> None:
        call, self._call = self._call, None
        ended_at = chunk.received_at or time.time()
        utt = self._utt
        self._spawn(self.pipeline.event("vad-end", self.device_id, utt, ended_at, reason=ev.reason,
                                        speech_s=round(ev.speech_samples / 16000, 3)))
        if ev.reason == "max-length":
            self.counters["max_length_cut"] += 1
        if call is None:
            return
        if ev.reason == "too-short":
            call.cancel()
            return
        self._spawn(self._finish(call, utt, ended_at))

    async def _finish(self, call, utt: str, ended_at: float) -> None:
        try:
            result = await call.stop()
        except SttFailed as exc:
            await self._stt_failed(utt, exc)
            return
        stt = {"source": result.source, "engine": result.engine, "decode_ms": round(result.finish_ms, 2),
               "replica": result.replica, "features": dict(result.alternatives)}
        out = await self.pipeline.handle(self.device_id, utt, result.text, ended_at, stt=stt)
        self.outcomes = (self.outcomes + [out])[-20:]

    async def _stt_failed(self, utt: str, exc: SttFailed) -> None:
        await self.pipeline.error(self.device_id, "stt_failed", exc.message, utt, speak=True)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until queued audio is processed and open utterances have replied."""
        deadline = time.monotonic() + timeout
        while (not self.queue.empty() or self._tasks) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await self.pipeline.drain()

    async def close(self, timeout: float = 5.0) -> None:
        """Process what is queued, then stop the worker (the device went idle)."""
        await self.drain(timeout)
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None

    def stats(self) -> dict:
        return {"device": self.device_id, "counters": self.counters.snapshot(), "queued": self.queue.qsize(),
                "in_speech": self.stream.in_speech, "idle_s": round(time.monotonic() - self.last_activity, 2),
                "retry_queue": len(self.pipeline.retry), "samples_in": self.stream.samples_in,
                "duplicates": self.stream.sequencer.duplicates, "skipped": self.stream.sequencer.skipped,
                "held": len(self.stream.sequencer._held)}
