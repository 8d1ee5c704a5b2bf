"""The cloud query client: text + tenant id + device context to the cloud assistant over HTTP(S).

The tenant's API key travels as ``Authorization: Bearer``; the tenant id also as ``X-Tenant-ID``
(the cloud gateway routes on it). Any failure — unreachable, timeout, a 5xx, a reply that is not the
expected JSON — is raised as :class:`~hotpath.errors.ServiceUnavailable`; the pipeline then speaks
"couldn't reach the assistant" and puts the query on a :class:`RetryQueue`.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Awaitable, Callable

from hotpath.errors import ServiceUnavailable
from hotpath.voice.messages import CloudAnswer, CloudQuery

if TYPE_CHECKING:
    import httpx

__all__ = ["CloudClient", "RetryQueue", "Pending", "Webhook"]


class CloudClient:
    def __init__(self, endpoint: str | None, api_key: str, *, timeout_s: float = 3.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        import httpx  # the network client is imported by the adapter only, never by the pipeline

        self.endpoint = endpoint
        self._http = httpx.AsyncClient(
            timeout=timeout_s, transport=transport,
            headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
        )

    async def ask(self, query: CloudQuery) -> CloudAnswer:
        import httpx

        if not self.endpoint:
            raise ServiceUnavailable("no cloud endpoint configured", hint="set voice.cloud.endpoint")
        try:
            resp = await self._http.post(self.endpoint, json=query.to_dict(), headers={"X-Tenant-ID": query.tenant_id})
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"cloud assistant unreachable: {type(exc).__name__}: {exc}") from exc
        if resp.status_code >= 500 or resp.status_code in (401, 403, 408, 429):
            raise ServiceUnavailable(f"cloud assistant answered HTTP {resp.status_code}")
        try:
            data = resp.json()
            text = data.get("text") or data.get("answer")
        except (ValueError, AttributeError) as exc:
            raise ServiceUnavailable("cloud assistant sent a reply that is not JSON") from exc
        if resp.status_code >= 400 or not isinstance(text, str):
            raise ServiceUnavailable(f"cloud assistant refused the query (HTTP {resp.status_code})")
        return CloudAnswer(text=text, utterance_id=query.utterance_id)

    async def close(self) -> None:
        await self._http.aclose()


@dataclass
class Pending:
    query: CloudQuery
    attempts: int = 1
    queued_at: float = 0.0


class RetryQueue:
    """Queries the cloud could not take, retried later; bounded (the oldest is dropped and counted)."""

    def __init__(self, maxlen: int = 100, max_attempts: int = 5) -> None:
        self.items: deque[Pending] = deque()
        self.maxlen = maxlen
        self.max_attempts = max_attempts
        self.dropped = 0
        self.delivered = 0

    def __len__(self) -> int:
        return len(self.items)

    def put(self, query: CloudQuery) -> None:
        if self.maxlen == 0:
            self.dropped += 1
            return
        if len(self.items) >= self.maxlen:
            self.items.popleft()
            self.dropped += 1
        self.items.append(Pending(query, 1, time.time()))

    async def retry(self, client: CloudClient, deliver: Callable[[CloudQuery, CloudAnswer], Awaitable[None]]) -> int:
        """One pass over the queue; returns how many were answered (and delivered)."""
        done = 0
        for _ in range(len(self.items)):
            item = self.items.popleft()
            try:
                answer = await client.ask(item.query)
            except ServiceUnavailable:
                item.attempts += 1
                if item.attempts <= self.max_attempts:
                    self.items.append(item)
                else:
                    self.dropped += 1
                continue
            await deliver(item.query, answer)
            done += 1
        self.delivered += done
        return done


class Webhook:
    """POSTs an action as JSON to a configured URL (DIAL_PERSON without a PBX)."""

    def __init__(self, *, timeout_s: float = 3.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        import httpx

        self._http = httpx.AsyncClient(timeout=timeout_s, transport=transport)

    async def __call__(self, url: str, payload: dict) -> None:
        import httpx

        try:
            resp = await self._http.post(url, json=payload)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"webhook {url} unreachable: {type(exc).__name__}") from exc
        if resp.status_code >= 300:
            raise ServiceUnavailable(f"webhook {url} answered HTTP {resp.status_code}")

    async def close(self) -> None:
        await self._http.aclose()
