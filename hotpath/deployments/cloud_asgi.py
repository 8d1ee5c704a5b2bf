"""The gateway as a bare ASGI app (no Ray): ``hotpath cloud serve`` runs it under uvicorn (with TLS
when ``cloud.tls_certfile``/``tls_keyfile`` are set), and tests drive it through httpx's ASGI
transport with the edge's real client."""

from __future__ import annotations

from typing import Any

__all__ = ["asgi_app"]


def asgi_app(gateway: Any, *, max_body_bytes: int | None = None):  # noqa: ANN201
    import anyio

    limit = max_body_bytes or gateway.settings.max_body_bytes

    async def app(scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        body = bytearray()
        more = True
        while more:
            msg = await receive()
            body.extend(msg.get("body", b""))
            more = msg.get("more_body", False)
            if len(body) > limit:  # stop reading: the gateway answers 413
                break
        resp = await anyio.to_thread.run_sync(gateway.handle, scope["method"], scope["path"], headers, bytes(body))
        payload = resp.json_bytes()
        out = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        out += [(k.lower().encode(), v.encode()) for k, v in resp.headers.items()]
        await send({"type": "http.response.start", "status": resp.status, "headers": out})
        await send({"type": "http.response.body", "body": payload})

    return app
