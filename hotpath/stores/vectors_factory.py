"""Open the cloud assistant's stores for the settings' profile: the vector store and the tenant registry."""

from __future__ import annotations

from hotpath.config import Settings
from hotpath.stores.vectors import VectorStore

__all__ = ["open_vector_store", "open_tenancy", "store_kind"]


def store_kind(settings: Settings, profile: str | None = None) -> str:
    kind = settings.cloud.store
    if kind == "auto":
        return "postgres" if (profile or settings.profile) == "full" else "file"
    return kind


def open_vector_store(settings: Settings, profile: str | None = None) -> VectorStore:
    if store_kind(settings, profile) == "postgres":
        from hotpath.stores.vectors_pg import PgVectorStore

        return PgVectorStore(settings.cloud.postgres)
    from hotpath.stores.vectors_file import FileVectorStore

    return FileVectorStore(settings.in_runtime(settings.cloud.file_store_path))


def open_tenancy(settings: Settings):  # noqa: ANN201
    """A :class:`~hotpath.cloud.tenancy.Tenancy` over the SQLite registry and the server secret."""
    from hotpath.cloud.tenancy import KeyHasher, Tenancy
    from hotpath.stores.tenants_sqlite import SqliteTenantRegistry, load_or_create_secret

    c = settings.cloud
    return Tenancy(SqliteTenantRegistry(settings.in_runtime(c.registry_path)),
                   KeyHasher(load_or_create_secret(settings.in_runtime(c.secret_path))))
