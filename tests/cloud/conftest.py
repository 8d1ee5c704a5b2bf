"""Fixtures of the cloud assistant's tests: one MiniLM encoder per session, stores, a gateway."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from hotpath.config import Settings

DOCS = Path(__file__).resolve().parents[2] / "data" / "cloud" / "docs"


class Clock:
    """A hand-driven clock for token buckets and key expiry."""

    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def embedder(settings: Settings):
    from hotpath.cloud.embedding import open_embedder

    return open_embedder(settings.runtime_dir / "models", threads=1)


@pytest.fixture
def uniq() -> str:
    return "t" + uuid.uuid4().hex[:8]


@pytest.fixture
def pg_store(settings: Settings):
    """The real PostgreSQL + pgvector (`hotpath services up --profile full` starts it)."""
    from hotpath.cluster.postgres import PostgresService
    from hotpath.stores.vectors_pg import PgVectorStore

    if not PostgresService(settings).healthy():
        pytest.fail(f"PostgreSQL is not running on {settings.cloud.postgres.port}: `hotpath services up --profile full`")
    store = PgVectorStore(settings.cloud.postgres)
    yield store
    store.close()
