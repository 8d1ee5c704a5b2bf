"""The Ray actor that runs the speech-to-text gRPC server (:mod:`hotpath.deployments.stt`).

It takes a GPU when the engine is faster-whisper and the cluster has one. Fault-tolerance contract:
the actor holds no durable state; if it dies, streams in flight get an error and the graph restarts
it (max_restarts); calls to ``start`` are idempotent.
"""

from __future__ import annotations

from hotpath.deployments.stt import serve
from hotpath.voice.engines import create_engine

__all__ = ["SttServiceActor"]


class SttServiceActor:
    """Ray actor shell: builds the engine replicas and serves gRPC on ``voice.stt.grpc_port``."""

    def __init__(self, voice) -> None:
        self.voice = voice
        self.server = None
        self.servicer = None

    async def start(self) -> str:
        if self.server is None:
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
