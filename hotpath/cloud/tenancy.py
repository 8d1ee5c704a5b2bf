"""Tenants and their API keys: hashed at rest, rotated with an overlap, checked against X-Tenant-ID.

A key is ``hpk_<key id>_<secret part>`` (random, 32 url-safe bytes in all); only its HMAC-SHA256
under the server secret is stored, so a leaked registry gives no usable key, and a lookup is one
indexed equality on the digest. A key is *active* until its ``expires_at`` (None: no expiry).

Rotation (``rotate``) issues a new key and sets ``expires_at = now + overlap`` on every key of the
tenant that is still active and would live longer: edges holding the old key keep working through
the overlap window while they are re-configured. ``revoke`` expires keys now.

Authentication (``authenticate``): no or unknown key -> :class:`Unauthorized` (401); a key whose
tenant is not the ``X-Tenant-ID`` (or the tenant the path names) -> :class:`Forbidden` (403). The
tenant a request acts on is always the key's, never one taken from its body.

The storage behind it is a :class:`TenantRegistry` (``hotpath.stores.tenants_sqlite``).
"""

from __future__ import annotations

import abc
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from hotpath.cloud.models import check_tenant_id
from hotpath.errors import BadInput, HotpathError, NotFound

__all__ = [
    "Tenant",
    "ApiKey",
    "IssuedKey",
    "TenantRegistry",
    "KeyHasher",
    "Tenancy",
    "Unauthorized",
    "Forbidden",
    "generate_key",
    "key_id_of",
]

KEY_PREFIX = "hpk_"


class Unauthorized(HotpathError):
    """No API key, or one that is unknown, revoked or expired (HTTP 401)."""


class Forbidden(HotpathError):
    """A valid key used for another tenant than its own (HTTP 403)."""


@dataclass(frozen=True, slots=True)
class Tenant:
    tenant_id: str
    name: str
    created_at: float


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key: never the key itself, only its digest."""

    key_id: str
    tenant_id: str
    digest: str
    created_at: float
    expires_at: float | None = None
    label: str = ""

    def active(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key just issued: ``key`` is shown once and never stored."""

    key: str
    record: ApiKey


def generate_key() -> tuple[str, str]:
    """(key id, full key)."""
    key_id = secrets.token_hex(4)
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(24)}"


def key_id_of(key: str) -> str | None:
    """The key id inside a well-formed key, else None."""
    if not key.startswith(KEY_PREFIX):
        return None
    kid, sep, rest = key[len(KEY_PREFIX):].partition("_")
    return kid if sep and len(kid) == 8 and rest else None


class KeyHasher:
    """HMAC-SHA256 of keys under the server secret (at least 16 bytes)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise BadInput("the key-hashing secret must be at least 16 bytes")
        self._secret = secret

    def digest(self, key: str) -> str:
        return hmac.new(self._secret, key.encode("utf-8"), hashlib.sha256).hexdigest()


class TenantRegistry(abc.ABC):
    """Where tenants and key digests live (SQLite file; any store with an index on the digest)."""

    @abc.abstractmethod
    def add_tenant(self, tenant: Tenant) -> None:
        """Raise BadInput when the tenant exists."""

    @abc.abstractmethod
    def get_tenant(self, tenant_id: str) -> Tenant | None: ...

    @abc.abstractmethod
    def list_tenants(self) -> list[Tenant]: ...

    @abc.abstractmethod
    def remove_tenant(self, tenant_id: str) -> bool:
        """Remove the tenant and all its keys."""

    @abc.abstractmethod
    def add_key(self, key: ApiKey) -> None: ...

    @abc.abstractmethod
    def keys(self, tenant_id: str) -> list[ApiKey]: ...

    @abc.abstractmethod
    def find_key(self, digest: str) -> ApiKey | None: ...

    @abc.abstractmethod
    def update_key(self, key: ApiKey) -> None: ...

    def close(self) -> None:
        pass


class Tenancy:
    """Tenant and key operations over a registry; ``clock`` is injectable (tests)."""

    def __init__(self, registry: TenantRegistry, hasher: KeyHasher, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.registry = registry
        self.hasher = hasher
        self.clock = clock

    # ----------------------------------------------------------------- tenants
    def add_tenant(self, tenant_id: str, name: str = "", *, label: str = "initial") -> IssuedKey:
        """Create a tenant and its first key."""
        check_tenant_id(tenant_id)
        if self.registry.get_tenant(tenant_id) is not None:
            raise BadInput(f"tenant {tenant_id!r} already exists", hint="`hotpath cloud key rotate` issues a new key")
        self.registry.add_tenant(Tenant(tenant_id, name or tenant_id, self.clock()))
        return self.issue(tenant_id, label=label)

    def require(self, tenant_id: str) -> Tenant:
        tenant = self.registry.get_tenant(check_tenant_id(tenant_id))
        if tenant is None:
            raise NotFound(f"no tenant {tenant_id!r}", hint="`hotpath cloud tenant add` creates one")
        return tenant

    # ----------------------------------------------------------------- keys
    def issue(self, tenant_id: str, *, label: str = "", key: str | None = None,
              expires_at: float | None = None) -> IssuedKey:
        """A new key for the tenant (``key``: register that one, e.g. an edge's configured key)."""
        self.require(tenant_id)
        if key is None:
            key_id, key = generate_key()
        else:
            key_id = key_id_of(key) or secrets.token_hex(4)
            if len(key) < 20:
                raise BadInput("an API key must be at least 20 characters")
        record = ApiKey(key_id, tenant_id, self.hasher.digest(key), self.clock(), expires_at, label)
        self.registry.add_key(record)
        return IssuedKey(key, record)

    def rotate(self, tenant_id: str, overlap_s: float, *, label: str = "rotated") -> IssuedKey:
        """Issue a new key; every other active key of the tenant expires ``overlap_s`` from now."""
        self.require(tenant_id)
        now = self.clock()
        until = now + max(0.0, overlap_s)
        for k in self.registry.keys(tenant_id):
            if k.active(now) and (k.expires_at is None or k.expires_at > until):
                self.registry.update_key(replace(k, expires_at=until))
        return self.issue(tenant_id, label=label)

    def revoke(self, tenant_id: str, key_id: str | None = None) -> int:
        """Expire one key (by id) or all of the tenant's keys now; returns how many."""
        self.require(tenant_id)
        now = self.clock()
        n = 0
        for k in self.registry.keys(tenant_id):
            if (key_id is None or k.key_id == key_id) and k.active(now):
                self.registry.update_key(replace(k, expires_at=now))
                n += 1
        if key_id is not None and n == 0:
            raise NotFound(f"tenant {tenant_id!r} has no active key {key_id!r}")
        return n

    # ----------------------------------------------------------------- requests
    def authenticate(self, authorization: str | None, tenant_header: str | None) -> str:
        """The tenant id of the request's key; 401 without a valid key, 403 when it is not the header's."""
        if not authorization:
            raise Unauthorized("missing API key: send Authorization: Bearer <key>")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("malformed Authorization header: use Bearer <key>")
        record = self.registry.find_key(self.hasher.digest(token.strip()))
        if record is None or not record.active(self.clock()):
            raise Unauthorized("unknown, revoked or expired API key")
        if tenant_header is not None and tenant_header != record.tenant_id:
            raise Forbidden("this API key does not belong to the tenant named in X-Tenant-ID")
        return record.tenant_id
