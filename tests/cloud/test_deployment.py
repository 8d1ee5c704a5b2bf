"""The Serve deployment's class run as a plain object (no Ray): body limits and the response it shapes."""

from __future__ import annotations

import json

import pytest
from starlette.requests import Request

from hotpath.config import load_settings


def _request(method: str, path: str, headers: dict[str, str], body: bytes) -> Request:
    sent = {"done": False}

    async def receive():
        if sent["done"]:
            return {"type": "http.disconnect"}
        sent["done"] = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {"type": "http", "method": method, "path": path, "root_path": "", "query_string": b"",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    return Request(scope, receive)


@pytest.fixture
def ingress(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTPATH_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("HOTPATH_CLOUD__LLM__ENABLED", "false")
    from hotpath.deployments.cloud import CloudIngress
    from hotpath.graphs.cloud_app import ensure_demo_tenant

    s = load_settings()
    key = ensure_demo_tenant(s)
    cls = CloudIngress.func_or_class
    obj = cls(s, "embedded")
    obj.gateway.service.ingest(s.voice.tenant_id, "breaks", "Break rules",
                               "# Break rules\n\n## Smoking\nSmoking is allowed only in the shelter behind dock C.")
    return obj, key, s.voice.tenant_id


async def test_deployment_answers_and_refuses_oversize(ingress) -> None:
    obj, key, tenant = ingress
    body = json.dumps({"tenant_id": tenant, "text": "Where can I smoke?"}).encode()
    h = {"authorization": f"Bearer {key}", "x-tenant-id": tenant, "content-length": str(len(body))}
    resp = await obj(_request("POST", "/v1/query", h, body))
    data = json.loads(resp.body)
    assert resp.status_code == 200 and "dock C" in data["text"] and data["citations"][0]["tenant_id"] == tenant
    resp = await obj(_request("POST", "/v1/query", {**h, "content-length": str(10**8)}, b""))
    assert resp.status_code == 413 and list(json.loads(resp.body)) == ["error"]
    resp = await obj(_request("POST", "/v1/query", {**h, "x-tenant-id": "someone-else"}, body))
    assert resp.status_code == 403
