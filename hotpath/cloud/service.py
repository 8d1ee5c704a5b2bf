"""The cloud assistant's core: ingest a tenant's documents, answer a tenant's question from them.

    service = CloudService(settings.cloud, store, embedder, llm)
    service.ingest("acme", "ppe-policy", "PPE policy", markdown)
    answer = service.answer("acme", QueryRequest(tenant_id="acme", text="What is the PPE policy for zone B?"))

Answering: embed the question, take the tenant's ``top_k`` chunks, drop those under ``min_score``;
none left -> an "I don't know" with no citation. Otherwise the LLM (when configured) gets a grounded
prompt; if it is down, slow (its timeout) or empty, the extractive answer (the best sentences of the
top chunks) is given instead, with the reason. Every citation names a chunk of the asking tenant:
the store is only ever asked for that tenant's chunks.

The LLM and embedder are injected (``Generator`` / ``Embedder`` protocols); the service itself does
no network I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Protocol

from hotpath.cloud.chunking import chunk_document, embed_text
from hotpath.cloud.embedding import Embedder
from hotpath.cloud.extractive import extract_answer
from hotpath.cloud.models import Citation, Hit, QueryAnswer, QueryRequest, check_tenant_id
from hotpath.cloud.prompt import build_messages, clean_answer
from hotpath.cloud.settings import CloudAppSettings
from hotpath.errors import BadInput, HotpathError, ServiceUnavailable
from hotpath.stores.vectors import VectorStore

__all__ = ["CloudService", "Generator", "QuotaExceeded", "IngestReport", "NO_ANSWER"]

NO_ANSWER = "I couldn't find that in your site's documents."


class QuotaExceeded(HotpathError):
    """The tenant's storage quota would be passed (HTTP 429)."""


class Generator(Protocol):
    def complete(self, messages: list[dict[str, str]], *, max_tokens: int | None = None,
                 timeout_s: float | None = None) -> str: ...


class IngestReport(dict):
    """``{"doc_id", "chunks", "replaced", "ms"}``."""


class CloudService:
    def __init__(self, settings: CloudAppSettings, store: VectorStore, embedder: Embedder,
                 llm: Generator | None = None, *, clock: Callable[[], float] = time.perf_counter) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.llm = llm if settings.llm.enabled else None
        self.clock = clock

    # ------------------------------------------------------------------ documents
    def ingest(self, tenant_id: str, doc_id: str, title: str, text: str, *, source: str = "") -> IngestReport:
        """Chunk, embed and store one document, replacing its earlier chunks."""
        t0 = self.clock()
        check_tenant_id(tenant_id)
        c = self.settings.chunks
        chunks = chunk_document(doc_id, title or doc_id, text, max_chars=c.max_chars, overlap_chars=c.overlap_chars,
                                source=source)
        existing = self.store.documents(tenant_id)
        after = sum(existing.values()) - existing.get(doc_id, 0) + len(chunks)
        if after > self.settings.max_chunks_per_tenant:
            raise QuotaExceeded(
                f"tenant {tenant_id!r} would hold {after} chunks, over its quota of {self.settings.max_chunks_per_tenant}",
                hint="delete documents or raise cloud.max_chunks_per_tenant",
            )
        vectors = self.embedder.embed([embed_text(ch) for ch in chunks])
        self.store.ensure_tenant(tenant_id)
        replaced = self.store.replace_document(tenant_id, doc_id, chunks, vectors)
        return IngestReport(doc_id=doc_id, chunks=len(chunks), replaced=replaced,
                            ms=round((self.clock() - t0) * 1000, 1))

    # ------------------------------------------------------------------ questions
    def retrieve(self, tenant_id: str, text: str, *, k: int | None = None,
                 filters: Mapping[str, str] | None = None) -> list[Hit]:
        check_tenant_id(tenant_id)
        if not text or not text.strip():
            raise BadInput("the question is empty", field="text")
        vec = self.embedder.embed([text])[0]
        hits = self.store.search(tenant_id, vec, k or self.settings.top_k, filters)
        for h in hits:  # belt and braces: a store bug must never leak another tenant's chunk
            if h.tenant_id != tenant_id:
                raise HotpathError(f"vector store returned a chunk of another tenant for {tenant_id!r}")
        return hits

    def answer(self, tenant_id: str, query: QueryRequest) -> QueryAnswer:
        t0 = self.clock()
        if len(query.text) > self.settings.max_query_chars:
            raise BadInput(f"the question is longer than {self.settings.max_query_chars} characters", field="text")
        hits = self.retrieve(tenant_id, query.text, k=query.top_k, filters=query.filters)
        t1 = self.clock()
        grounded = [h for h in hits if h.score >= self.settings.min_score]
        timings = {"retrieve": (t1 - t0) * 1000}
        if not grounded:
            return QueryAnswer(NO_ANSWER, "none", (), tenant_id, query.utterance_id, timings_ms=timings)
        reason = ""
        if self.llm is not None:
            try:
                messages = build_messages(query.text, grounded, location=query.location)
                text = clean_answer(self.llm.complete(messages, timeout_s=self.settings.llm.timeout_s))
                if text:
                    timings["generate"] = (self.clock() - t1) * 1000
                    return QueryAnswer(text, "llm", self._cite(grounded), tenant_id, query.utterance_id,
                                       timings_ms=timings)
                reason = "the LLM's reply was empty"
            except ServiceUnavailable as exc:
                reason = exc.message
        else:
            reason = "no LLM configured"
        text, used = extract_answer(query.text, grounded)
        timings["extract"] = (self.clock() - t1) * 1000
        return QueryAnswer(text or NO_ANSWER, "extractive" if text else "none", self._cite(used), tenant_id,
                           query.utterance_id, fallback_reason=reason, timings_ms=timings)

    @staticmethod
    def _cite(hits: list[Hit]) -> tuple[Citation, ...]:
        return tuple(Citation(h.tenant_id, h.chunk.chunk_id, h.chunk.doc_id, h.chunk.title, h.score) for h in hits)
