"""The cloud assistant's HTTP face: one Serve deployment around :class:`hotpath.cloud.gateway.Gateway`.

The request is read (a declared ``Content-Length`` over the limit is refused before the body is
read), then the gateway runs in a worker thread (embedding and the LLM call are CPU/IO-bound and must
not block the replica's event loop). Status codes and the one-line ``{"error"}`` bodies are the
gateway's.
"""

from __future__ import annotations

import asyncio

from ray import serve
from starlette.requests import Request
from starlette.responses import Response

from hotpath.config import Settings

__all__ = ["CloudIngress"]


@serve.deployment
class CloudIngress:
    def __init__(self, settings: Settings, profile: str | None) -> None:
        from hotpath.deployments.cloud_wiring import build_gateway

        self.settings = settings
        self.gateway = build_gateway(settings, profile)

    async def __call__(self, request: Request) -> Response:
        limit = self.settings.cloud.max_body_bytes
        declared = request.headers.get("content-length", "")
        headers = {k.lower(): v for k, v in request.headers.items()}
        if declared.isdigit() and int(declared) > limit:
            body = b""
        else:
            body = await request.body()
        resp = await asyncio.to_thread(self.gateway.handle, request.method, request.url.path, headers, body)
        return Response(resp.json_bytes(), status_code=resp.status, headers=resp.headers,
                        media_type="application/json")
