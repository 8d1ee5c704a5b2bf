"""Chunking, token buckets, tenancy (hashing, rotation overlap, revocation), extractive answers."""

from __future__ import annotations

import pytest

from hotpath.cloud.chunking import chunk_document, sections
from hotpath.cloud.extractive import extract_answer
from hotpath.cloud.models import Chunk, Hit, QueryRequest, parse_model
from hotpath.cloud.ratelimit import RateLimiter, TokenBucket
from hotpath.cloud.tenancy import Forbidden, KeyHasher, Tenancy, Unauthorized
from hotpath.errors import BadInput, NotFound
from hotpath.stores.tenants_sqlite import SqliteTenantRegistry, load_or_create_secret

from .conftest import DOCS


def test_sections_follow_markdown_headings() -> None:
    text = "# Policy\nIntro.\n\n## Zone B\nGoggles.\n\n### Night\nTorch.\n\n## Zone C\nVest."
    got = list(sections(text, "Policy"))
    assert [h for h, _ in got] == ["Policy", "Policy > Zone B", "Policy > Zone B > Night", "Policy > Zone C"]


def test_long_sections_are_cut_with_sentence_overlap() -> None:
    sentences = [f"Sentence number {i} says something about rule {i}." for i in range(40)]
    chunks = chunk_document("doc", "Doc", "# Doc\n" + " ".join(sentences), max_chars=300, overlap_chars=100)
    assert len(chunks) > 3
    assert all(len(c.text) <= 300 + 100 for c in chunks)
    for a, b in zip(chunks, chunks[1:]):
        last = a.text.splitlines()[-1].split(". ")[-1]
        assert last.rstrip(".") in b.text  # the cut's last sentence opens the next chunk
    joined = " ".join(c.text for c in chunks)
    assert all(s in joined for s in sentences)  # nothing lost
    assert [c.chunk_id for c in chunks] == [f"doc#{i}" for i in range(len(chunks))]


def test_chunk_ids_are_stable_across_re_ingest_and_empty_docs_refused() -> None:
    text = (DOCS / "ppe-policy.md").read_text()
    a = chunk_document("ppe", "PPE policy", text)
    b = chunk_document("ppe", "PPE policy", text)
    assert a == b
    with pytest.raises(BadInput, match="no text"):
        chunk_document("x", "X", "  \n ")
    with pytest.raises(BadInput, match="overlap"):
        chunk_document("x", "X", "text", max_chars=100, overlap_chars=100)


def test_token_bucket_refills_with_the_clock(clock) -> None:
    b = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [b.take()[0] for _ in range(3)] == [True, True, True]
    ok, wait = b.take()
    assert not ok and wait == pytest.approx(0.5)
    clock.advance(0.5)
    assert b.take() == (True, 0.0)
    lim = RateLimiter(1.0, 1, clock)
    assert lim.take("a")[0] and lim.take("b")[0]  # one bucket per tenant
    assert not lim.take("a")[0]
    assert RateLimiter.retry_after_header(0.2) == "1" and RateLimiter.retry_after_header(2.1) == "3"


@pytest.fixture
def tenancy(tmp_path, clock) -> Tenancy:
    secret = load_or_create_secret(tmp_path / "secret.key")
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert load_or_create_secret(tmp_path / "secret.key") == secret
    return Tenancy(SqliteTenantRegistry(tmp_path / "tenants.sqlite"), KeyHasher(secret), clock=clock)


def test_keys_are_stored_hashed_and_checked_against_the_tenant_header(tenancy, tmp_path) -> None:
    a = tenancy.add_tenant("acme").key
    b = tenancy.add_tenant("globex").key
    raw = (tmp_path / "tenants.sqlite").read_bytes()
    assert a.encode() not in raw and b.encode() not in raw
    assert tenancy.authenticate(f"Bearer {a}", "acme") == "acme"
    assert tenancy.authenticate(f"Bearer {a}", None) == "acme"
    with pytest.raises(Forbidden):
        tenancy.authenticate(f"Bearer {a}", "globex")
    for bad in (None, "", "Bearer ", f"Basic {a}", "Bearer hpk_nope_nope", f"Bearer {a}x"):
        with pytest.raises(Unauthorized):
            tenancy.authenticate(bad, "acme")
    with pytest.raises(BadInput, match="already exists"):
        tenancy.add_tenant("acme")
    with pytest.raises(BadInput, match="invalid tenant id"):
        tenancy.add_tenant("Robert'); DROP TABLE tenants;--")


def test_rotation_keeps_the_old_key_through_the_overlap_only(tenancy, clock) -> None:
    old = tenancy.add_tenant("acme").key
    new = tenancy.rotate("acme", overlap_s=3600).key
    assert tenancy.authenticate(f"Bearer {old}", "acme") == "acme"
    assert tenancy.authenticate(f"Bearer {new}", "acme") == "acme"
    clock.advance(3599)
    assert tenancy.authenticate(f"Bearer {old}", "acme") == "acme"
    clock.advance(2)
    with pytest.raises(Unauthorized):
        tenancy.authenticate(f"Bearer {old}", "acme")
    assert tenancy.authenticate(f"Bearer {new}", "acme") == "acme"


def test_revoked_key_is_refused_at_once(tenancy) -> None:
    issued = tenancy.add_tenant("acme")
    other = tenancy.issue("acme", label="spare").key
    assert tenancy.revoke("acme", issued.record.key_id) == 1
    with pytest.raises(Unauthorized):
        tenancy.authenticate(f"Bearer {issued.key}", "acme")
    assert tenancy.authenticate(f"Bearer {other}", "acme") == "acme"
    assert tenancy.revoke("acme") == 1
    with pytest.raises(Unauthorized):
        tenancy.authenticate(f"Bearer {other}", "acme")
    with pytest.raises(NotFound):
        tenancy.rotate("nobody", 10)


def _hit(text: str, n: int = 0, score: float = 0.8) -> Hit:
    return Hit(Chunk(f"d#{n}", "d", n, "Doc", text), score, "acme")


def test_extractive_answer_takes_the_matching_sentence() -> None:
    hits = [_hit("Visitors get a vest. In zone B, goggles and nitrile gloves are mandatory. Aprons too."),
            _hit("Zone C needs a hard hat.", 1, 0.5)]
    text, used = extract_answer("What gloves are needed in zone B?", hits)
    assert text.startswith("In zone B, goggles and nitrile gloves are mandatory.")
    assert [h.chunk.chunk_id for h in used] == ["d#0"]
    assert extract_answer("anything", []) == ("", [])


def test_query_body_is_the_edge_contract_and_refuses_unknown_fields() -> None:
    q = parse_model(QueryRequest, {"type": "query", "tenant_id": "demo", "device_id": "w-17", "text": "Hi?",
                                   "location": None, "intent": "QUESTION", "confidence": 0.4,
                                   "utterance_id": "u1", "time": 1.0})
    assert q.tenant_id == "demo" and q.utterance_id == "u1"
    with pytest.raises(BadInput, match="tenant"):
        parse_model(QueryRequest, {"text": "hi", "tenant": "demo"})
    with pytest.raises(BadInput, match="JSON object"):
        parse_model(QueryRequest, ["not", "an", "object"])
