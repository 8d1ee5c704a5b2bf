"""The speech-to-text gRPC service (``hotpath/proto/stt.proto``) and its client.

:class:`ReplicaPool` holds N engine replicas (:class:`~hotpath.voice.stt.SttEngine`); each stream
leases one for the length of an utterance. Decoding never runs on the event loop: every ``accept``
and ``finish`` goes to a thread pool with one worker per replica. A replica that raises is retired,
counted and rebuilt in the background; its stream gets an ``Error(replica-failed)`` message and the
other streams go on.

:class:`SttServiceActor` is the Ray actor that runs the server (with a GPU when the engine is
faster-whisper and the cluster has one). Fault-tolerance contract: the actor holds no durable
state; if it dies, streams in flight get an error and the graph restarts it (max_restarts); calls to
``start`` are idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import grpc

from hotpath.errors import ServiceUnavailable
from hotpath.proto import stt_pb2, stt_pb2_grpc
from hotpath.voice.stt import SttEngine, SttHints

__all__ = ["ReplicaPool", "SttServicer", "serve", "SttClient", "SttCall", "SttResult", "SttFailed", "SttServiceActor"]

log = logging.getLogger(__name__)


class SttFailed(ServiceUnavailable):
    """The STT service answered with an error (``code``) or could not be reached."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(f"speech-to-text failed ({code}): {text}")
        self.code = code


class ReplicaPool:
    def __init__(self, factory: Callable[[], SttEngine], replicas: int) -> None:
        self.factory = factory
        self.size = replicas
        self.executor = ThreadPoolExecutor(max_workers=replicas + 1, thread_name_prefix="stt")
        self._free: asyncio.Queue[tuple[int, SttEngine]] = asyncio.Queue()
        self.failed = 0
        self.name = "?"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        engines = await asyncio.gather(*(loop.run_in_executor(self.executor, self.factory) for _ in range(self.size)))
        for i, e in enumerate(engines):
            self._free.put_nowait((i, e))
        self.name = getattr(engines[0], "name", "?")

    @property
    def free(self) -> int:
        return self._free.qsize()

    async def lease(self, timeout: float) -> tuple[int, SttEngine]:
        try:
            return await asyncio.wait_for(self._free.get(), timeout)
        except asyncio.TimeoutError:
            raise SttFailed("busy", f"no free replica within {timeout:.1f} s") from None

    def release(self, idx: int, engine: SttEngine, *, failed: bool = False) -> None:
        if not failed:
            self._free.put_nowait((idx, engine))
            return
        self.failed += 1
        log.warning("stt replica %d failed; rebuilding it", idx)
        asyncio.get_running_loop().create_task(self._rebuild(idx))

    async def _rebuild(self, idx: int) -> None:
        loop = asyncio.get_running_loop()
        for attempt in range(5):
            try:
                engine = await loop.run_in_executor(self.executor, self.factory)
            except Exception:  # a broken model file: keep serving with fewer replicas, retry later
                log.exception("stt replica %d rebuild failed (attempt %d)", idx, attempt + 1)
                await asyncio.sleep(2**attempt)
                continue
            self._free.put_nowait((idx, engine))
            return


class SttServicer(stt_pb2_grpc.SpeechToTextServicer):
    def __init__(self, pool: ReplicaPool, *, lease_timeout_s: float, sample_rate: int = 16000) -> None:
        self.pool = pool
        self.lease_timeout_s = lease_timeout_s
        self.sample_rate = sample_rate
        self.streams = 0

    async def Health(self, request, context):
        return stt_pb2.HealthReply(engine=self.pool.name, replicas=self.pool.size, free=self.pool.free, failed=self.pool.failed)

    async def Transcribe(self, request_iterator, context):
        loop = asyncio.get_running_loop()
        it = request_iterator.__aiter__()
        try:
            first = await it.__anext__()
        except StopAsyncIteration:
            return
        if first.WhichOneof("body") != "start":
            yield _error("bad-request", "the first message must be Start")
            return
        start = first.start
        if start.sample_rate and start.sample_rate != self.sample_rate:
            yield _error("bad-request", f"sample rate {start.sample_rate} refused; send {self.sample_rate}")
            return
        try:
            idx, engine = await self.pool.lease(self.lease_timeout_s)
        except SttFailed as exc:
            yield _error(exc.code, exc.message)
            return
        self.streams += 1
        failed, stream, finished = False, None, False
        try:
            hints = SttHints(start.initial_prompt, start.tenant_id, start.language or "en", start.device_id)
            stream = await loop.run_in_executor(self.pool.executor, engine.open, hints)
            async for req in it:
                kind = req.WhichOneof("body")
                if kind == "chunk":
                    partial = await loop.run_in_executor(self.pool.executor, stream.accept, req.chunk.pcm)
                    if partial:
                        yield stt_pb2.SttResponse(partial=stt_pb2.Partial(text=partial))
                elif kind == "stop":
                    t = await loop.run_in_executor(self.pool.executor, stream.finish)
                    finished = True
                    yield stt_pb2.SttResponse(
                        final=stt_pb2.Final(
                            text=t.text, confidence=t.confidence, engine=t.engine, source=t.source,
                            audio_s=t.audio_s, finish_ms=t.finish_ms, replica=idx, alternatives=t.alternatives,
                        )
                    )
                    break
                else:
                    yield _error("bad-request", f"unexpected {kind} inside a stream")
                    break
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:  # the engine broke: retire this replica, tell this stream only
            failed = True
            log.warning("stt replica %d raised %r", idx, exc)
            yield _error("replica-failed", f"{type(exc).__name__}: {exc}")
        finally:
            if stream is not None and not finished and not failed:
                try:
                    await loop.run_in_executor(self.pool.executor, stream.cancel)
                except Exception:
                    failed = True
            self.pool.release(idx, engine, failed=failed)


def _error(code: str, text: str) -> stt_pb2.SttResponse:
    return stt_pb2.SttResponse(error=stt_pb2.Error(code=code, text=text))


async def serve(
    factory: Callable[[], SttEngine], *, host: str, port: int, replicas: int, lease_timeout_s: float = 2.0
) -> tuple[grpc.aio.Server, SttServicer]:
    """Start the gRPC server (engines built first). Returns the server and its servicer."""
    pool = ReplicaPool(factory, replicas)
    await pool.start()
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    servicer = SttServicer(pool, lease_timeout_s=lease_timeout_s)
    stt_pb2_grpc.add_SpeechToTextServicer_to_server(servicer, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise ServiceUnavailable(f"cannot bind the STT gRPC port {host}:{port}", hint="is another service on it?")
    await server.start()
    return server, servicer


# ----------------------------------------------------------------------------------------- client


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


# ----------------------------------------------------------------------------------------- actor


class SttServiceActor:
    """Ray actor shell: builds the engine replicas and serves gRPC on ``voice.stt.grpc_port``."""

    def __init__(self, voice) -> None:
        self.voice = voice
        self.server = None
        self.servicer = None

    async def start(self) -> str:
        if self.server is None:
            from hotpath.voice.stt import create_engine

            st = self.voice.stt
            self.server, self.servicer = await serve(
                lambda: create_engine(self.voice), host=st.host, port=st.grpc_port,
                replicas=st.replicas, lease_timeout_s=st.lease_timeout_s,
            )
        return f"{self.voice.stt.host}:{self.voice.stt.grpc_port}"

    async def health(self) -> dict:
        p = self.servicer.pool
        return {"engine": p.name, "replicas": p.size, "free": p.free, "failed": p.failed, "streams": self.servicer.streams}

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(grace=1.0)
            self.server = None
