"""Writes of many Redis sorted sets, straight in RESP (the sinks' hot path).

:meth:`RespZWriter.zreplace_many` does what :meth:`HotCache.zreplace_many` does on Redis (per key:
``DEL``, ``ZADD`` of every member, ``PEXPIRE`` when a TTL is given, in ``MULTI``/``EXEC``
transactions of ``keys_per_transaction`` keys), and :meth:`RespZWriter.zwrite_many` the same plus
``ZADD`` of some members into other keys, with a fraction of the client CPU: commands are packed by
``hiredis.pack_command`` (C), every transaction goes out in one ``sendall`` on a plain socket, and the replies are parsed by
``hiredis.Reader``. Scores are written as redis-py writes them (``repr`` of the float, or of the
int), so the stored values are identical. The sink writer uses it whenever its cache is a :class:`RedisHotCache`
(:func:`zwriter_for`); any other cache is written through its own ``zreplace_many``.

Errors: a failed connection or a timeout is :class:`ServiceUnavailable` (the socket is dropped and
opened again on the next call), an error reply :class:`StoreError`. Writes set absolute values,
so the sink may simply retry a batch.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import hiredis

from hotpath.errors import ServiceUnavailable, StoreError

__all__ = ["ZWriter", "RespZWriter", "zwriter_for"]

Members = Mapping[str, float] | Sequence[tuple[str, float]]

_MULTI = b"*1\r\n$5\r\nMULTI\r\n"
_EXEC = b"*1\r\n$4\r\nEXEC\r\n"


class ZWriter(Protocol):
    def zreplace_many(self, items: Mapping[str, Members], *, ttl_s: float | None = None) -> None: ...

    def zwrite_many(
        self, replace: Mapping[str, Members], add: Mapping[str, Members], *, ttl_s: float | None = None
    ) -> None: ...


class RespZWriter:
    """``zreplace_many`` on one socket of its own (one thread at a time; see the module docstring)."""

    def __init__(
        self, host: str, port: int, db: int = 0, *, timeout_s: float = 10.0, keys_per_transaction: int = 500
    ) -> None:
        self.host, self.port, self.db, self.timeout_s = host, port, db, timeout_s
        self.keys_per_transaction = keys_per_transaction
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        if self.db:
            self._roundtrip(hiredis.pack_command(("SELECT", str(self.db))), 1)
        return sock

    def _roundtrip(self, payload: bytes, replies: int) -> list[Any]:
        sock = self._sock or self._connect()
        reader = hiredis.Reader()
        out: list[Any] = []
        sock.sendall(payload)
        while len(out) < replies:
            data = sock.recv(1 << 20)
            if not data:
                raise ConnectionError("Redis closed the connection")
            reader.feed(data)
            while len(out) < replies:
                r = reader.gets()
                if r is False:
                    break
                out.append(r)
        return out

    def zreplace_many(self, items: Mapping[str, Members], *, ttl_s: float | None = None) -> None:
        self.zwrite_many(items, {}, ttl_s=ttl_s)

    def zwrite_many(
        self, replace: Mapping[str, Members], add: Mapping[str, Members], *, ttl_s: float | None = None
    ) -> None:
        """Each key of ``replace`` replaced by its members (``DEL`` + ``ZADD``), each key of ``add``
        given its members' scores (``ZADD``: its other members kept; a member scored ``None`` is
        removed, ``ZREM``); every key written gets
        ``PEXPIRE`` when a TTL is given. One ``MULTI``/``EXEC`` per ``keys_per_transaction`` keys
        (a reader never sees a key half written; Redis serves other clients between them), all
        sent at once."""
        if not replace and not add:
            return
        pack = hiredis.pack_command
        ttl = None if ttl_s is None else str(max(1, int(round(ttl_s * 1000))))
        parts = [_MULTI]
        n = 1  # replies expected: +OK per MULTI, +QUEUED per command, one array per EXEC
        execs: list[int] = []  # the reply index of each EXEC
        keys = 0
        for items, whole in ((replace, True), (add, False)):
            for key, members in items.items():
                if keys == self.keys_per_transaction:
                    parts += (_EXEC, _MULTI)
                    execs.append(n)
                    n += 2
                    keys = 0
                keys += 1
                if whole:
                    parts.append(pack(("DEL", key)))
                    n += 1
                is_map = type(members) is dict or isinstance(members, Mapping)
                if not whole and members and is_map and None in members.values():
                    gone = [m for m, v in members.items() if v is None]
                    parts.append(pack(("ZREM", key, *gone)))
                    n += 1
                    members = {m: v for m, v in members.items() if v is not None}
                if members:
                    if is_map:
                        names, scores = members.keys(), members.values()
                    else:
                        names, scores = zip(*members)
                    # ZADD key score member score member ...: the scores' repr interleaved with the
                    # names by slice assignment (the per-member loop cost more than the packing)
                    args: list[Any] = [None] * (2 + 2 * len(members))
                    args[0], args[1] = "ZADD", key
                    try:  # all floats (co-views) or all ints (users' recent interests)
                        args[2::2] = map(int.__repr__ if type(next(iter(scores))) is int else float.__repr__, scores)
                    except TypeError:  # a mix, numpy scalars: as redis-py writes them
                        args[2::2] = [repr(x) if type(x) is int else repr(float(x)) for x in scores]
                    args[3::2] = names
                    parts.append(pack(tuple(args)))
                    n += 1
                    if ttl is not None:
                        parts.append(pack(("PEXPIRE", key, ttl)))
                        n += 1
        parts.append(_EXEC)
        execs.append(n)
        n += 1
        with self._lock:
            try:
                replies = self._roundtrip(b"".join(parts), n)
            except (OSError, ConnectionError, hiredis.ProtocolError) as exc:
                self.close()
                raise ServiceUnavailable(
                    f"Redis at {self.address} is unavailable (ZREPLACE many): {exc}",
                    hint="start it with `hotpath services up`",
                ) from exc
        for r in replies:
            if isinstance(r, hiredis.ReplyError):
                raise StoreError(f"Redis ZREPLACE many failed: {r}")
        for i in execs:
            res = replies[i]
            if not isinstance(res, list):
                raise StoreError(f"Redis ZREPLACE many: a transaction was not executed ({res!r})")
            for r in res:
                if isinstance(r, hiredis.ReplyError):
                    raise StoreError(f"Redis ZREPLACE many failed: {r}")

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None


def zwriter_for(cache: Any) -> ZWriter:
    """A :class:`RespZWriter` to the same server when ``cache`` is a :class:`RedisHotCache` on a
    plain TCP address, else the cache itself."""
    from hotpath.stores.redis_cache import RedisHotCache

    if type(cache) is RedisHotCache:
        ep = cache.endpoint
        if ep.host and ep.port and not ep.password:
            return RespZWriter(ep.host, ep.port, ep.db)
    return cache
