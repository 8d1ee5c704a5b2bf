"""The cloud query client: text + tenant id + device context to the cloud assistant over HTTP(S).

The tenant's API key travels as ``Authorization: Bearer``; the tenant id also as ``X-Tenant-ID``
(the cloud gateway routes on it). Any failure — unreachable, timeout, a 5xx, a reply that is not the
expected JSON — is raised as :class:`~hotpath.errors.ServiceUnavailable`; the pipeline then speaks
"couldn't reach the assistant" and puts the query on a :class:`~hotpath.voice.retry.RetryQueue`.
Also the webhook client (DIAL_PERSON without a PBX).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hotpath.errors import ServiceUnavailable
from hotpath.voice.messages import CloudAnswer, CloudQuery

if TYPE_CHECKING:
    import httpx

__all__ = ["CloudClient", "Webhook"]


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
