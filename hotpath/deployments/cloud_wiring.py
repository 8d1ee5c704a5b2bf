"""Assembles the cloud gateway from settings: stores, tenancy, the MiniLM embedder, the LLM client.

No Ray here: the Serve deployment, the CLI (``hotpath cloud ...``), the benchmark and the tests all
build the same objects through these functions.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from hotpath.config import Settings

__all__ = ["build_service", "build_gateway", "open_llm", "AuditFile", "ingest_folder"]


class AuditFile:
    """Appends one JSON line per request to the audit log (one ``write`` per line, O_APPEND)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def __call__(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)


def open_llm(settings: Settings):  # noqa: ANN201
    """The OpenAI-compatible client, or None when no LLM is enabled or installed."""
    llm = settings.cloud.llm
    if not llm.enabled:
        return None
    if llm.endpoint is None:
        from hotpath.cluster.llama import LlamaService

        if LlamaService(settings).available() is not None:
            return None
    from hotpath.clients.llm import OpenAIChat

    return OpenAIChat(llm)


def build_service(settings: Settings, profile: str | None = None, *, llm: Any = "auto"):  # noqa: ANN201
    from hotpath.cloud.embedding import open_embedder
    from hotpath.cloud.service import CloudService
    from hotpath.stores.vectors_factory import open_vector_store

    embedder = open_embedder(settings.runtime_dir / "models", threads=settings.cloud.embed_threads)
    return CloudService(settings.cloud, open_vector_store(settings, profile), embedder,
                        open_llm(settings) if llm == "auto" else llm)


def build_gateway(settings: Settings, profile: str | None = None, *, llm: Any = "auto", service: Any = None):  # noqa: ANN201
    from hotpath.cloud.gateway import Gateway
    from hotpath.stores.vectors_factory import open_tenancy

    c = settings.cloud
    audit = AuditFile(settings.in_runtime(c.audit_log)) if c.audit_log else None
    return Gateway(c, service or build_service(settings, profile, llm=llm), open_tenancy(settings), audit=audit)


def ingest_folder(service, tenant_id: str, folder: Path, say=print, *, only_missing: bool = False) -> list[dict]:  # noqa: ANN001
    """Ingest every .md/.txt/.pdf file of ``folder`` (doc id: the file's stem), with progress lines."""
    from hotpath.cloud.documents import content_type_for, document_text
    from hotpath.errors import BadInput

    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".md", ".markdown", ".txt", ".pdf"))
    if not files:
        raise BadInput(f"no .md, .txt or .pdf files in {folder}")
    have = service.store.documents(tenant_id) if only_missing else {}
    reports = []
    for i, path in enumerate(files, 1):
        if path.stem in have:
            continue
        text = document_text(path.read_bytes(), content_type_for(path.name))
        first = text.strip().splitlines()[0] if text.strip() else path.stem
        title = first.lstrip("# ").strip() if first.startswith("#") else path.stem.replace("-", " ")
        rep = service.ingest(tenant_id, path.stem, title, text, source=path.name)
        say(f"  [{i}/{len(files)}] {path.name}: {rep['chunks']} chunks ({rep['ms']} ms)")
        reports.append(dict(rep))
    return reports
