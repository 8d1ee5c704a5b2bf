"""Tenants and hashed API keys in one SQLite file (WAL; shared by the CLI and gateway replicas).

Only key digests are stored (see :mod:`hotpath.cloud.tenancy`); ``find_key`` is one indexed lookup.
Every call opens its own short connection, so a key revoked from the CLI is refused by the gateway on
its next request.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from hotpath.cloud.tenancy import ApiKey, Tenant, TenantRegistry
from hotpath.errors import BadInput, StoreError

__all__ = ["SqliteTenantRegistry", "load_or_create_secret"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tenants (tenant_id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
  digest TEXT PRIMARY KEY, key_id TEXT NOT NULL, tenant_id TEXT NOT NULL REFERENCES tenants(tenant_id),
  created_at REAL NOT NULL, expires_at REAL, label TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS api_keys_tenant ON api_keys(tenant_id);
"""


def load_or_create_secret(path: Path) -> bytes:
    """The server's key-hashing secret: 32 random bytes, created 0600 on first use."""
    import os
    import secrets

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        data = path.read_bytes()
        if len(data) < 16:
            raise StoreError(f"the key-hashing secret {path} is shorter than 16 bytes", hint="delete it (every key must then be re-issued)")
        return data
    with os.fdopen(fd, "wb") as fh:
        fh.write(secrets.token_bytes(32))
    return path.read_bytes()


class SqliteTenantRegistry(TenantRegistry):
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._conn()) as conn, conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=10)
        except sqlite3.Error as exc:
            raise StoreError(f"tenant registry {self.path} cannot be opened: {exc}") from exc
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _do(self, sql: str, args: tuple = ()) -> list[tuple]:
        try:
            with closing(self._conn()) as conn, conn:
                return conn.execute(sql, args).fetchall()
        except sqlite3.IntegrityError as exc:
            raise BadInput(f"tenant registry refused the change: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"tenant registry {self.path}: {exc}") from exc

    def add_tenant(self, tenant: Tenant) -> None:
        self._do("INSERT INTO tenants VALUES (?, ?, ?)", (tenant.tenant_id, tenant.name, tenant.created_at))

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        rows = self._do("SELECT tenant_id, name, created_at FROM tenants WHERE tenant_id = ?", (tenant_id,))
        return Tenant(*rows[0]) if rows else None

    def list_tenants(self) -> list[Tenant]:
        return [Tenant(*r) for r in self._do("SELECT tenant_id, name, created_at FROM tenants ORDER BY tenant_id")]

    def remove_tenant(self, tenant_id: str) -> bool:
        self._do("DELETE FROM api_keys WHERE tenant_id = ?", (tenant_id,))
        return bool(self._do("DELETE FROM tenants WHERE tenant_id = ? RETURNING tenant_id", (tenant_id,)))

    def add_key(self, key: ApiKey) -> None:
        self._do("INSERT INTO api_keys (digest, key_id, tenant_id, created_at, expires_at, label) VALUES (?, ?, ?, ?, ?, ?)",
                 (key.digest, key.key_id, key.tenant_id, key.created_at, key.expires_at, key.label))

    def _key(self, row: tuple) -> ApiKey:
        digest, key_id, tenant_id, created_at, expires_at, label = row
        return ApiKey(key_id, tenant_id, digest, created_at, expires_at, label)

    def keys(self, tenant_id: str) -> list[ApiKey]:
        rows = self._do("SELECT digest, key_id, tenant_id, created_at, expires_at, label FROM api_keys"
                        " WHERE tenant_id = ? ORDER BY created_at", (tenant_id,))
        return [self._key(r) for r in rows]

    def find_key(self, digest: str) -> ApiKey | None:
        rows = self._do("SELECT digest, key_id, tenant_id, created_at, expires_at, label FROM api_keys WHERE digest = ?",
                        (digest,))
        return self._key(rows[0]) if rows else None

    def update_key(self, key: ApiKey) -> None:
        self._do("UPDATE api_keys SET expires_at = ?, label = ? WHERE digest = ?", (key.expires_at, key.label, key.digest))
