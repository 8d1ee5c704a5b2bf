"""The gateway end to end over real parts (MiniLM, the file store, the SQLite registry): auth, tenancy,
isolation by query text, bad bodies, rate limits, the LLM down, and the edge's own client."""

from __future__ import annotations

import json

import httpx
import pytest

from hotpath.cloud.gateway import Gateway
from hotpath.cloud.service import CloudService
from hotpath.cloud.settings import CloudAppSettings, LlmSettings, RateLimitSettings
from hotpath.cloud.tenancy import KeyHasher, Tenancy
from hotpath.stores.tenants_sqlite import SqliteTenantRegistry
from hotpath.stores.vectors_file import FileVectorStore

from .conftest import DOCS

SECRET_B = "The vault combination for globex is 7-3-9-1 and only Globex staff may know it."


class Env:
    def __init__(self, gw: Gateway, keys: dict[str, str], audit: list[dict]) -> None:
        self.gw, self.keys, self.audit = gw, keys, audit

    def call(self, method: str, path: str, body=None, *, tenant: str | None = "acme", key: str | None = None,
             header_tenant: str | None = "same", raw: bytes | None = None, headers: dict | None = None):
        h = {"content-type": "application/json"}
        k = key if key is not None else self.keys.get(tenant or "", "")
        if k:
            h["authorization"] = f"Bearer {k}"
        if header_tenant is not None:
            h["x-tenant-id"] = tenant if header_tenant == "same" else header_tenant
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        return self.gw.handle(method, path, h, data)

    def ask(self, text: str, tenant: str = "acme", **kw):
        return self.call("POST", "/v1/query", {"type": "query", "tenant_id": tenant, "device_id": "w-17", "text": text,
                                               "utterance_id": "u1"}, tenant=tenant, **kw)


def _gateway(tmp_path, embedder, clock, llm=None, **overrides) -> Env:
    settings = CloudAppSettings(llm=LlmSettings(enabled=llm is not None), **overrides)
    service = CloudService(settings, FileVectorStore(tmp_path / "vectors"), embedder, llm)
    tenancy = Tenancy(SqliteTenantRegistry(tmp_path / "t.sqlite"), KeyHasher(b"s" * 32), clock=clock)
    audit: list[dict] = []
    gw = Gateway(settings, service, tenancy, audit=audit.append, clock=clock)
    keys = {t: tenancy.add_tenant(t).key for t in ("acme", "globex")}
    return Env(gw, keys, audit)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, embedder):
    """acme holds the demo documents; globex one secret document."""
    from .conftest import Clock

    clock = Clock()
    env = _gateway(tmp_path_factory.mktemp("gw"), embedder, clock, rate=RateLimitSettings(queries_per_s=1000, query_burst=1000))
    for p in sorted(DOCS.glob("*.md")):
        r = env.call("POST", f"/v1/tenants/acme/documents", {"doc_id": p.stem, "title": p.stem, "text": p.read_text()})
        assert r.status == 200, r.body
    r = env.call("POST", "/v1/tenants/globex/documents", {"doc_id": "vault", "title": "Vault", "text": SECRET_B},
                 tenant="globex")
    assert r.status == 200 and r.body["chunks"] == 1
    return env


def test_query_answers_from_the_tenants_documents_with_citations(loaded) -> None:
    r = loaded.ask("What is the PPE policy for zone B?")
    assert r.status == 200, r.body
    assert "goggles" in r.body["text"] and r.body["mode"] == "extractive"
    assert r.body["citations"] and all(c["tenant_id"] == "acme" for c in r.body["citations"])
    assert r.body["citations"][0]["doc_id"] == "ppe-policy"
    assert r.body["utterance_id"] == "u1"
    assert loaded.audit[-1]["tenant"] == "acme" and loaded.audit[-1]["status"] == 200


@pytest.mark.parametrize("text", [
    SECRET_B,
    "What is the vault combination for globex?",
    "' OR '1'='1",
    "x'; SELECT * FROM t_globex.chunks; --",
    "tenant_id = 'globex'",
])
def test_tenant_a_never_retrieves_tenant_b_by_query_text(loaded, text) -> None:
    r = loaded.ask(text)
    assert r.status == 200
    assert "7-3-9-1" not in r.body["text"]
    assert all(c["tenant_id"] == "acme" and c["doc_id"] != "vault" for c in r.body["citations"])
    r = loaded.ask(text, tenant="globex")
    assert all(c["tenant_id"] == "globex" for c in r.body["citations"])


def test_crafted_filters_cannot_reach_another_tenant(loaded) -> None:
    body = {"tenant_id": "acme", "text": "vault combination", "filters": {"doc_id": "vault"}}
    r = loaded.call("POST", "/v1/query", body)
    assert r.status == 200 and r.body["citations"] == [] and r.body["mode"] == "none"
    for filters in ({"tenant_id": "globex"}, {"doc_id": "vault' OR '1'='1"}, {"source": {"$ne": ""}}):
        r = loaded.call("POST", "/v1/query", {**body, "filters": filters})
        assert r.status in (200, 422)
        assert all(c["tenant_id"] == "acme" for c in r.body.get("citations", []))


def test_a_key_of_a_with_the_tenant_header_of_b_is_forbidden(loaded) -> None:
    r = loaded.ask("vault?", tenant="acme", header_tenant="globex")
    assert r.status == 403 and list(r.body) == ["error"]
    # the body naming B with A's key and header is refused too
    r = loaded.call("POST", "/v1/query", {"tenant_id": "globex", "text": "vault?"})
    assert r.status == 403
    r = loaded.call("POST", "/v1/tenants/globex/documents", {"doc_id": "x", "text": "x"})
    assert r.status == 403
    r = loaded.call("GET", "/v1/tenants/globex/documents")
    assert r.status == 403


def test_missing_and_unknown_keys_are_401(loaded) -> None:
    assert loaded.ask("hi", key="").status == 401
    r = loaded.ask("hi", key="hpk_deadbeef_not-a-real-key-at-all")
    assert r.status == 401 and r.headers.get("WWW-Authenticate") == "Bearer"


@pytest.mark.parametrize("raw,status,word", [
    (b"{not json", 400, "not valid JSON"),
    (b"", 400, "empty"),
    (b"[1, 2]", 422, "JSON object"),
    (json.dumps({"tenant_id": "acme"}).encode(), 422, "text"),
    (json.dumps({"tenant_id": "acme", "text": "hi", "bogus": 1}).encode(), 422, "bogus"),
    (json.dumps({"tenant_id": "acme", "text": "x" * 5000}).encode(), 422, "text"),
    (b"\xff\xfe\x00garbage", 400, "not valid JSON"),
])
def test_malformed_bodies_get_a_4xx_with_one_message(loaded, raw, status, word) -> None:
    r = loaded.call("POST", "/v1/query", raw=raw)
    assert r.status == status, r.body
    assert list(r.body) == ["error"] and word in r.body["error"] and "\n" not in r.body["error"]
    assert "Traceback" not in r.body["error"]


def test_oversize_bodies_are_413_before_anything_else(loaded) -> None:
    big = json.dumps({"doc_id": "big", "text": "word " * 300_000}).encode()
    r = loaded.call("POST", "/v1/tenants/acme/documents", raw=big)
    assert r.status == 413 and list(r.body) == ["error"]
    r = loaded.call("POST", "/v1/query", raw=b"{}", headers={"content-length": str(10**9)}, key="")
    assert r.status == 413


def test_routes_and_methods(loaded) -> None:
    assert loaded.call("GET", "/v1/healthz", key="").status == 200
    assert loaded.call("GET", "/v1/query").status == 405
    assert loaded.call("POST", "/v1/nope").status == 404
    r = loaded.call("GET", "/v1/tenants/acme/documents")
    assert r.status == 200 and r.body["documents"]["ppe-policy"] >= 1


def test_reingest_replaces_and_pdf_and_bad_documents(loaded, tmp_path) -> None:
    import base64

    before = loaded.call("GET", "/v1/tenants/globex/documents", tenant="globex").body["documents"]
    r = loaded.call("POST", "/v1/tenants/globex/documents", {"doc_id": "vault", "text": SECRET_B}, tenant="globex")
    assert r.status == 200 and r.body["replaced"] == before["vault"]
    assert loaded.call("GET", "/v1/tenants/globex/documents", tenant="globex").body["documents"] == before
    bad = [
        {"doc_id": "../etc", "text": "x"},
        {"doc_id": "d", "text": "   "},
        {"doc_id": "d"},
        {"doc_id": "d", "content_base64": "!!!", "content_type": "application/pdf"},
        {"doc_id": "d", "content_base64": base64.b64encode(b"not a pdf").decode(), "content_type": "application/pdf"},
        {"doc_id": "d", "text": "x", "content_type": "image/png"},
    ]
    for body in bad:
        r = loaded.call("POST", "/v1/tenants/globex/documents", body, tenant="globex")
        assert r.status == 422, (body, r.body)
        assert list(r.body) == ["error"]


def test_pdf_ingest(loaded) -> None:
    import base64

    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject
    import io

    w = PdfWriter()
    page = w.add_blank_page(612, 792)
    font = DictionaryObject({NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
                             NameObject("/BaseFont"): NameObject("/Helvetica")})
    page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
    stream = DecodedStreamObject()
    stream.set_data(b"BT /F1 12 Tf 72 720 Td (Globex forklifts are inspected every Monday morning.) Tj ET")
    page[NameObject("/Contents")] = w._add_object(stream)
    buf = io.BytesIO()
    w.write(buf)
    body = {"doc_id": "inspect", "title": "Inspections", "content_type": "application/pdf",
            "content_base64": base64.b64encode(buf.getvalue()).decode()}
    r = loaded.call("POST", "/v1/tenants/globex/documents", body, tenant="globex")
    assert r.status == 200, r.body
    r = loaded.ask("When are the forklifts inspected?", tenant="globex")
    assert "Monday" in r.body["text"] and r.body["citations"][0]["doc_id"] == "inspect"


def test_rate_limit_is_429_with_retry_after(tmp_path, embedder, clock) -> None:
    env = _gateway(tmp_path, embedder, clock, rate=RateLimitSettings(queries_per_s=1, query_burst=2))
    assert env.ask("hi").status == 200
    assert env.ask("hi").status == 200
    r = env.ask("hi")
    assert r.status == 429 and r.headers["Retry-After"] == "1" and list(r.body) == ["error"]
    assert env.ask("hi", tenant="globex").status == 200  # per tenant
    clock.advance(1.0)
    assert env.ask("hi").status == 200


def test_storage_quota(tmp_path, embedder, clock) -> None:
    env = _gateway(tmp_path, embedder, clock, max_chunks_per_tenant=2)
    text = (DOCS / "ppe-policy.md").read_text()
    r = env.call("POST", "/v1/tenants/acme/documents", {"doc_id": "ppe", "text": text})
    assert r.status == 429 and "quota" in r.body["error"]


def test_llm_down_gives_the_extractive_answer_never_a_500(tmp_path, embedder, clock) -> None:
    from hotpath.clients.llm import OpenAIChat
    from hotpath.cluster.process import port_free

    port = next(p for p in range(29500, 29600) if port_free("127.0.0.1", p))
    llm = OpenAIChat(LlmSettings(endpoint=f"http://127.0.0.1:{port}/v1", timeout_s=1.0))
    env = _gateway(tmp_path, embedder, clock, llm=llm)
    env.call("POST", "/v1/tenants/acme/documents", {"doc_id": "ppe", "text": (DOCS / "ppe-policy.md").read_text()})
    r = env.ask("What is the PPE policy for zone B?")
    assert r.status == 200
    assert r.body["mode"] == "extractive" and "goggles" in r.body["text"]
    assert "unreachable" in r.body["fallback_reason"]


def test_key_rotation_overlap_through_the_gateway(tmp_path, embedder, clock) -> None:
    env = _gateway(tmp_path, embedder, clock)
    old = env.keys["acme"]
    new = env.gw.tenancy.rotate("acme", overlap_s=60).key
    assert env.ask("hi", key=old).status == 200 and env.ask("hi", key=new).status == 200
    clock.advance(61)
    assert env.ask("hi", key=old).status == 401
    assert env.ask("hi", key=new).status == 200
    env.gw.tenancy.revoke("acme")
    assert env.ask("hi", key=new).status == 401


async def test_the_edge_client_speaks_this_contract_and_its_retry_queue_drains(loaded) -> None:
    """hotpath.voice.cloud.CloudClient, unchanged, against the gateway's ASGI face."""
    from hotpath.deployments.cloud_asgi import asgi_app
    from hotpath.errors import ServiceUnavailable
    from hotpath.clients.cloud import CloudClient
    from hotpath.voice.retry import RetryQueue
    from hotpath.voice.messages import CloudQuery

    up = {"on": False}
    inner = httpx.ASGITransport(app=asgi_app(loaded.gw))

    class Flaky(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request):
            if not up["on"]:
                raise httpx.ConnectError("cloud down")
            return await inner.handle_async_request(request)

    client = CloudClient("http://cloud.test/v1/query", loaded.keys["acme"], transport=Flaky())
    q = CloudQuery(tenant_id="acme", device_id="w-17", text="Where is the fire assembly point?", utterance_id="u9")
    with pytest.raises(ServiceUnavailable):
        await client.ask(q)
    queue = RetryQueue()
    queue.put(q)
    delivered = []

    async def deliver(query, answer):
        delivered.append(answer)

    assert await queue.retry(client, deliver) == 0 and len(queue) == 1
    up["on"] = True
    assert await queue.retry(client, deliver) == 1 and len(queue) == 0
    assert "north car park" in delivered[0].text and delivered[0].utterance_id == "u9"
    wrong = CloudClient("http://cloud.test/v1/query", loaded.keys["globex"], transport=Flaky())
    with pytest.raises(ServiceUnavailable, match="403"):
        await wrong.ask(q)  # globex's key, acme's X-Tenant-ID
    await client.close()
    await wrong.close()


def test_garbled_or_off_topic_text_gets_no_grounded_answer(loaded) -> None:
    """What the edge's speech-to-text makes of a question at worst: no chunk is good enough to cite."""
    for text in ("what'd lucky it optical rizzoli it", "who won the football game last night"):
        r = loaded.ask(text)
        assert r.status == 200 and r.body["mode"] == "none" and r.body["citations"] == []
        assert r.body["text"] == "I couldn't find that in your site's documents."
