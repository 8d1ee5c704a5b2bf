"""The speech-to-text gRPC client (``hotpath/proto/stt.proto``): one channel, one stream per utterance.

Errors arrive as :class:`~hotpath.voice.stt.SttFailed` (the server's ``Error`` message, or an
unreachable service); the server is :mod:`hotpath.deployments.stt`.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

import grpc

from hotpath.proto import stt_pb2, stt_pb2_grpc
from hotpath.voice.stt import SttFailed

__all__ = ["SttClient", "SttCall", "SttResult", "SttFailed"]


@dataclass
class SttResult:
    text: str
    confidence: float
    engine: str
    source: str
    finish_ms: float
    replica: int
    partials: list[str] = field(default_factory=list)
    alternatives: dict[str, str] = field(default_factory=dict)


class SttClient:
    """One channel to the STT service; ``open`` starts an utterance stream."""

    def __init__(self, target: str, *, timeout_s: float = 10.0) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self._channel = None
        self._stub = None

    @property
    def stub(self) -> stt_pb2_grpc.SpeechToTextStub:
        # grpc.aio binds a channel to the running event loop: create it there, on first use
        # (a Ray async actor's __init__ does not run on the loop its methods run on).
        if self._stub is None:
            self._channel = grpc.aio.insecure_channel(self.target)
            self._stub = stt_pb2_grpc.SpeechToTextStub(self._channel)
        return self._stub

    async def open(self, *, device_id: str, tenant_id: str, initial_prompt: str = "", sample_rate: int = 16000) -> SttCall:
        call = SttCall(self.stub.Transcribe(timeout=self.timeout_s))
        await call._write(stt_pb2.SttRequest(start=stt_pb2.Start(
            device_id=device_id, tenant_id=tenant_id, utterance_id=uuid.uuid4().hex[:12],
            sample_rate=sample_rate, initial_prompt=initial_prompt, language="en")))
        return call

    async def health(self) -> stt_pb2.HealthReply:
        try:
            return await self.stub.Health(stt_pb2.HealthRequest(), timeout=2.0)
        except grpc.aio.AioRpcError as exc:
            raise SttFailed("unreachable", exc.details() or str(exc.code())) from exc

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None


class SttCall:
    """One utterance: ``send`` audio as it comes, ``stop`` for the final transcript."""

    def __init__(self, call) -> None:
        self._call = call
        self.partials: list[str] = []
        self._reader = asyncio.get_running_loop().create_task(self._read())
        self._error: SttFailed | None = None

    async def _write(self, req) -> None:
        if self._reader.done():
            await self._outcome()  # raises the error the server sent
        try:
            await self._call.write(req)
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as exc:
            await self._outcome()
            raise SttFailed("unreachable", str(exc)) from exc

    async def _read(self) -> SttResult | None:
        try:
            async for resp in self._call:
                kind = resp.WhichOneof("body")
                if kind == "partial":
                    self.partials.append(resp.partial.text)
                elif kind == "final":
                    f = resp.final
                    return SttResult(f.text, f.confidence, f.engine, f.source, f.finish_ms, f.replica,
                                     list(self.partials), dict(f.alternatives))
                elif kind == "error":
                    raise SttFailed(resp.error.code, resp.error.text)
        except grpc.aio.AioRpcError as exc:
            raise SttFailed("unreachable", exc.details() or str(exc.code())) from exc
        raise SttFailed("no-final", "the stream ended without a transcript")

    async def _outcome(self) -> SttResult:
        return await self._reader

    async def send(self, pcm: bytes) -> None:
        await self._write(stt_pb2.SttRequest(chunk=stt_pb2.AudioChunk(pcm=pcm)))

    async def stop(self) -> SttResult:
        await self._write(stt_pb2.SttRequest(stop=stt_pb2.Stop()))
        try:
            await self._call.done_writing()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass
        return await self._outcome()

    def cancel(self) -> None:
        self._call.cancel()
        self._reader.cancel()
