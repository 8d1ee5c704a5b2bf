"""The HTTP contract of the cloud assistant, as plain logic: (method, path, headers, body) -> Response.

Routes (under the app's route prefix, ``/v1`` by default; both ``/query`` and ``/v1/query`` match):

=======  ==========================  ==============================================================
POST     /query                      the edge's CloudQuery -> ``{"text", "mode", "citations", ...}``
POST     /tenants/{id}/documents     ``{"doc_id", "title", "text" | "content_base64", "content_type"}``
GET      /tenants/{id}/documents     ``{"documents": {doc_id: chunks}}``
GET      /healthz                    ``{"ok": true}`` (no key needed)
=======  ==========================  ==============================================================

Every request but ``/healthz`` needs ``Authorization: Bearer <key>``. The order of checks: body size
(413), the key (401), ``X-Tenant-ID`` / the path's tenant / the body's ``tenant_id`` against the
key's tenant (403), the tenant's rate limit (429 + ``Retry-After``), JSON (400), fields (422). Every
error is ``{"error": "<one line>"}``; nothing else (no stack trace, no validation dump) leaves. An
LLM that is down is not an error (the answer is extractive); a vector store that is down is 503.
Each request writes one audit record (tenant, key id, route, status, duration, answer mode).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hotpath.cloud.documents import document_text
from hotpath.cloud.models import DocumentRequest, QueryRequest, parse_model
from hotpath.cloud.ratelimit import RateLimiter
from hotpath.cloud.service import CloudService, QuotaExceeded
from hotpath.cloud.settings import CloudAppSettings
from hotpath.cloud.tenancy import Forbidden, Tenancy, Unauthorized
from hotpath.errors import BadInput, HotpathError, NotFound, ServiceUnavailable

__all__ = ["Gateway", "Response", "RateLimited"]

log = logging.getLogger(__name__)
_DOCS = re.compile(r"^/tenants/([^/]+)/documents/?$")


class RateLimited(HotpathError):
    """The tenant sent more than its rate allows (HTTP 429 with Retry-After)."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class _TooLarge(HotpathError):
    pass


class _BadJson(HotpathError):
    pass


class _NoRoute(HotpathError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def json_bytes(self) -> bytes:
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")


class Gateway:
    def __init__(self, settings: CloudAppSettings, service: CloudService, tenancy: Tenancy, *,
                 audit: Callable[[dict[str, Any]], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.service = service
        self.tenancy = tenancy
        r = settings.rate
        self.query_limits = RateLimiter(r.queries_per_s, r.query_burst, clock)
        self.ingest_limits = RateLimiter(r.ingests_per_s, r.ingest_burst, clock)
        self.audit = audit or (lambda rec: log.info("audit %s", json.dumps(rec)))
        self.prefix = settings.route_prefix.rstrip("/")

    # ------------------------------------------------------------------ entry point
    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Never raises: every outcome is a Response. ``headers`` keys are lower-case."""
        t0 = time.perf_counter()
        ctx: dict[str, Any] = {"tenant": None, "key": None}
        route = self._route(path)
        try:
            resp = self._dispatch(method.upper(), route, headers, body, ctx)
        except _TooLarge as exc:
            resp = self._error(413, exc.message)
        except Unauthorized as exc:
            resp = self._error(401, exc.message, {"WWW-Authenticate": "Bearer"})
        except Forbidden as exc:
            resp = self._error(403, exc.message)
        except RateLimited as exc:
            resp = self._error(429, exc.message, {"Retry-After": RateLimiter.retry_after_header(exc.retry_after_s)})
        except QuotaExceeded as exc:
            resp = self._error(429, exc.one_line())
        except _BadJson as exc:
            resp = self._error(400, exc.message)
        except BadInput as exc:
            resp = self._error(422, exc.message)
        except NotFound as exc:
            resp = self._error(404, exc.message)
        except _NoRoute as exc:
            resp = self._error(exc.status, exc.message)
        except ServiceUnavailable as exc:
            log.warning("cloud gateway: %s", exc.one_line())
            resp = self._error(503, "the assistant's store is unavailable; try again shortly", {"Retry-After": "5"})
        except Exception:  # noqa: BLE001 - the last line: logged in full, one line out
            log.exception("cloud gateway: unexpected error on %s %s", method, route)
            resp = self._error(500, "internal error")
        self.audit({
            "ts": round(time.time(), 3), "tenant": ctx["tenant"], "key_id": ctx["key"], "method": method.upper(),
            "claimed_tenant": headers.get("x-tenant-id"),
            "route": route if route in ("/query", "/healthz") or _DOCS.match(route) else "other",
            "status": resp.status, "ms": round((time.perf_counter() - t0) * 1000, 2),
            "mode": resp.body.get("mode"), "device": ctx.get("device"),
        })
        return resp

    # ------------------------------------------------------------------ routing
    def _route(self, path: str) -> str:
        path = path.split("?", 1)[0] or "/"
        if self.prefix and (path == self.prefix or path.startswith(self.prefix + "/")):
            path = path[len(self.prefix):] or "/"
        return path

    def _dispatch(self, method: str, route: str, headers: Mapping[str, str], body: bytes,
                  ctx: dict[str, Any]) -> Response:
        if route == "/healthz":
            return Response(200, {"ok": True})
        m = _DOCS.match(route)
        if route != "/query" and not m:
            raise _NoRoute(f"no such endpoint: {route[:80]}", 404)
        allowed = ("POST",) if route == "/query" else ("POST", "GET")
        if method not in allowed:
            raise _NoRoute(f"{method} is not allowed here (use {' or '.join(allowed)})", 405)
        declared = headers.get("content-length")
        if (declared and declared.isdigit() and int(declared) > self.settings.max_body_bytes) \
                or len(body) > self.settings.max_body_bytes:
            raise _TooLarge(f"request body over {self.settings.max_body_bytes} bytes")
        tenant = self.tenancy.authenticate(headers.get("authorization"), headers.get("x-tenant-id"))
        ctx["tenant"] = tenant
        ctx["key"] = self._key_id(headers.get("authorization", ""))
        if route == "/query":
            return self._query(tenant, headers, body, ctx)
        path_tenant = m.group(1)
        if path_tenant != tenant:
            raise Forbidden("this API key does not belong to the tenant in the path")
        if method == "GET":
            return Response(200, {"tenant_id": tenant, "documents": self.service.store.documents(tenant)})
        return self._ingest(tenant, headers, body)

    @staticmethod
    def _key_id(authorization: str) -> str | None:
        from hotpath.cloud.tenancy import key_id_of

        return key_id_of(authorization.partition(" ")[2].strip())

    def _limit(self, limiter: RateLimiter, tenant: str, what: str) -> None:
        ok, wait = limiter.take(tenant)
        if not ok:
            raise RateLimited(f"rate limit of tenant {tenant!r} reached for {what}; retry in {wait:.1f}s", wait)

    @staticmethod
    def _json(body: bytes) -> Any:
        if not body:
            raise _BadJson("the request body is empty: send a JSON object")
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _BadJson(f"the request body is not valid JSON ({str(exc)[:80]})") from None

    # ------------------------------------------------------------------ handlers
    def _query(self, tenant: str, headers: Mapping[str, str], body: bytes, ctx: dict[str, Any]) -> Response:
        self._limit(self.query_limits, tenant, "queries")
        req: QueryRequest = parse_model(QueryRequest, self._json(body))
        ctx["device"] = req.device_id or None
        if req.tenant_id != tenant:
            raise Forbidden("the query's tenant_id is not the API key's tenant")
        answer = self.service.answer(tenant, req)
        return Response(200, answer.to_dict())

    def _ingest(self, tenant: str, headers: Mapping[str, str], body: bytes) -> Response:
        self._limit(self.ingest_limits, tenant, "document uploads")
        doc: DocumentRequest = parse_model(DocumentRequest, self._json(body))
        if (doc.text is None) == (doc.content_base64 is None):
            raise BadInput("send exactly one of text or content_base64", field="text")
        if doc.content_base64 is not None:
            try:
                raw = base64.b64decode(doc.content_base64, validate=True)
            except (binascii.Error, ValueError):
                raise BadInput("content_base64 is not valid base64", field="content_base64") from None
            text = document_text(raw, doc.content_type)
        else:
            text = document_text(doc.text or "", doc.content_type)
        report = self.service.ingest(tenant, doc.doc_id, doc.title, text, source=doc.source)
        return Response(200, {"tenant_id": tenant, **report})

    @staticmethod
    def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return Response(status, {"error": message}, headers or {})
