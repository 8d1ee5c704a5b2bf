"""The speech-to-text gRPC server (``hotpath/proto/stt.proto``); the client is :mod:`hotpath.clients.stt`,
the Ray actor that runs this server :mod:`hotpath.deployments.stt_actor`.

:class:`ReplicaPool` holds N engine replicas (:class:`~hotpath.voice.stt.SttEngine`); each stream
leases one for the length of an utterance. Decoding never runs on the event loop: every ``accept``
and ``finish`` goes to a thread pool with one worker per replica. A replica that raises is retired,
counted and rebuilt in the background; its stream gets an ``Error(replica-failed)`` message and the
other streams go on.

"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import grpc

from hotpath.errors import ServiceUnavailable
from hotpath.proto import stt_pb2, stt_pb2_grpc
from hotpath.voice.stt import SttEngine, SttFailed, SttHints

__all__ = ["ReplicaPool", "SttServicer", "serve"]

log = logging.getLogger(__name__)


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
