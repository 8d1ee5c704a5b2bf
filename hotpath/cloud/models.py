"""What crosses the cloud gateway: the edge's query, an answer with citations, chunks and hits.

The query is exactly the edge's :class:`hotpath.voice.messages.CloudQuery` as JSON (``to_dict``):
``{"type": "query", "tenant_id", "device_id", "text", "location", "intent", "confidence",
"utterance_id", "time"}``; unknown fields are refused (a typo is a 422, not silently ignored), except
the message ``type`` tag. The answer carries ``text`` (what the edge speaks) and ``citations``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hotpath.errors import BadInput

__all__ = [
    "QueryRequest",
    "DocumentRequest",
    "Citation",
    "QueryAnswer",
    "Chunk",
    "Hit",
    "TENANT_ID_RE",
    "check_tenant_id",
    "parse_model",
]

TENANT_ID_RE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
DOC_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")


def check_tenant_id(tenant_id: object) -> str:
    """A tenant id is 1-40 of ``[a-z0-9_-]``, starting with a letter; BadInput otherwise."""
    if not isinstance(tenant_id, str) or not TENANT_ID_RE.match(tenant_id):
        raise BadInput(
            f"invalid tenant id {str(tenant_id)[:60]!r}: use 1-40 lowercase letters, digits, '-' or '_', "
            "starting with a letter",
            field="tenant_id",
        )
    return tenant_id


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class QueryRequest(_Body):
    """``POST /v1/query``: the edge's CloudQuery."""

    type: Literal["query"] = "query"
    tenant_id: str
    device_id: str = Field("", max_length=100)
    text: str = Field(min_length=1, max_length=4000)
    location: str | None = Field(None, max_length=200)
    intent: str | None = Field(None, max_length=100)
    confidence: float | None = None
    utterance_id: str = Field("", max_length=200)
    time: float = 0.0
    filters: dict[str, str] | None = None
    """Optional metadata filter on the tenant's own chunks: ``doc_id`` or ``source`` equality."""
    top_k: int | None = Field(None, ge=1, le=20)


class DocumentRequest(_Body):
    """``POST /v1/tenants/{id}/documents`` with a JSON body (raw bodies are described in docs/cloud.md)."""

    doc_id: str
    title: str = Field("", max_length=300)
    text: str | None = None
    content_base64: str | None = None
    """The file's bytes in base64 (PDF); ``text`` for Markdown and plain text."""
    content_type: Literal["text/markdown", "text/plain", "application/pdf"] = "text/markdown"
    source: str = Field("", max_length=300)

    @field_validator("doc_id")
    @classmethod
    def _doc_id(cls, v: str) -> str:
        if not DOC_ID_RE.match(v):
            raise ValueError("use 1-120 letters, digits, '.', '_' or '-'")
        return v


def parse_model(cls: type[_Body], data: Any) -> Any:
    """Validate ``data`` as ``cls``; one :class:`BadInput` naming the first problem, never a dump."""
    if not isinstance(data, dict):
        raise BadInput("the request body must be a JSON object")
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise BadInput(f"{where}: {err['msg']}{more}", field=where) from None


@dataclass(frozen=True, slots=True)
class Chunk:
    """One stored piece of a tenant's document."""

    chunk_id: str
    """``{doc_id}#{n}``: stable, so a re-ingest replaces rather than duplicates."""
    doc_id: str
    ordinal: int
    title: str
    text: str
    source: str = ""
    meta: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Hit:
    chunk: Chunk
    score: float
    """Cosine similarity of the query and the chunk (vectors are unit length)."""
    tenant_id: str


@dataclass(frozen=True, slots=True)
class Citation:
    tenant_id: str
    chunk_id: str
    doc_id: str
    title: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, "chunk_id": self.chunk_id, "doc_id": self.doc_id,
                "title": self.title, "score": round(self.score, 4)}


@dataclass(frozen=True, slots=True)
class QueryAnswer:
    text: str
    """One or two short sentences, for TTS."""
    mode: Literal["llm", "extractive", "none"]
    """How the text was made: the LLM, sentences of the top chunks, or no grounding found."""
    citations: tuple[Citation, ...]
    tenant_id: str
    utterance_id: str = ""
    fallback_reason: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "text": self.text,
            "answer": self.text,
            "mode": self.mode,
            "citations": [c.to_dict() for c in self.citations],
            "tenant_id": self.tenant_id,
            "utterance_id": self.utterance_id,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }
        if self.fallback_reason:
            out["fallback_reason"] = self.fallback_reason
        return out
