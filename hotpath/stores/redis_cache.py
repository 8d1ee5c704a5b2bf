"""The Redis :class:`HotCache` (redis-py with hiredis, one connection pool per cache).

Every ``*_many`` call is one pipelined round trip; ``zreplace`` is one MULTI/EXEC (DEL, ZADD,
PEXPIRE), so readers see the old set or the new one, never a mix. Redis orders equal scores in
*reverse* lexicographic order for ZREVRANGE, while the interface wants ties by member ascending;
``ztop`` therefore runs a small Lua script that also fetches the boundary score's ties, and the
client sorts the few rows it gets back.

Errors: connection failures and timeouts become :class:`ServiceUnavailable` naming the address;
every other Redis error becomes :class:`StoreError`.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from dataclasses import dataclass
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import redis
import redis.exceptions

from hotpath.config import Settings
from hotpath.errors import ServiceUnavailable, StoreError
from hotpath.stores.base import HotCache, Subscription

__all__ = ["RedisHotCache", "RedisEndpoint"]

log = logging.getLogger(__name__)

# Top n by score desc, plus every member tied with the n-th score (ascending member order), so the
# caller can break ties by member ascending. Returns a flat [member, score, ...] list.
_ZTOP_LUA = """
local n = tonumber(ARGV[1])
if n <= 0 then return {} end
local top = redis.call('ZREVRANGE', KEYS[1], 0, n - 1, 'WITHSCORES')
if #top < 2 * n then return top end
local last = top[#top]
local out = {}
for i = 1, #top, 2 do
  if top[i + 1] ~= last then
    out[#out + 1] = top[i]
    out[#out + 1] = top[i + 1]
  end
end
local room = n - #out / 2
local ties = redis.call('ZRANGEBYSCORE', KEYS[1], last, last, 'WITHSCORES', 'LIMIT', 0, room)
for i = 1, #ties do out[#out + 1] = ties[i] end
return out
"""

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


def _ms(ttl_s: float) -> int:
    return max(1, int(round(ttl_s * 1000)))


def _pairs(flat: Sequence[Any], n: int) -> list[tuple[str, float]]:
    rows = [(str(flat[i]), float(flat[i + 1])) for i in range(0, len(flat), 2)]
    rows.sort(key=lambda item: (-item[1], item[0]))
    return rows[:n]


@dataclass(frozen=True, slots=True)
class RedisEndpoint:
    """Host, port, database and password of a cache's connections."""

    host: str
    port: int
    db: int
    password: str | None


class _RedisSubscription(Subscription):
    """A pubsub connection and the thread that feeds its messages to the callback.

    A lost connection (Redis killed, restarted, a network error) is re-established by the thread
    with backoff (``min_backoff_s`` doubling to ``max_backoff_s``); once subscribed again it calls
    ``on_reconnect(lost_at)`` (``time.time()`` of the loss) so the owner can re-read what it may have
    missed: pub/sub does not keep messages published while nobody listened."""

    min_backoff_s = 0.05
    max_backoff_s = 0.25

    def __init__(
        self,
        cache: RedisHotCache,
        channel: str,
        callback: Callable[[str], None],
        on_reconnect: Callable[[float], None] | None = None,
    ) -> None:
        self._cache = cache
        self._channel = channel
        self._callback = callback
        self._on_reconnect = on_reconnect
        self._stop = threading.Event()
        self.reconnects = 0
        self._pubsub = self._open()
        self._thread = threading.Thread(target=self._run, name=f"hotpath-redis-sub-{channel}", daemon=True)
        self._thread.start()

    def _open(self):
        cache, channel = self._cache, self._channel
        pubsub = cache._client.pubsub(ignore_subscribe_messages=False)
        try:
            with cache.errors("SUBSCRIBE"):
                pubsub.subscribe(channel)
                # Return only once the server confirmed: a publish right after subscribe() is delivered.
                while True:
                    msg = pubsub.get_message(timeout=5.0)
                    if msg is None:
                        raise ServiceUnavailable(f"Redis at {cache.address} did not confirm SUBSCRIBE {channel}")
                    if msg["type"] == "subscribe":
                        break
        except BaseException:
            with contextlib.suppress(Exception):
                pubsub.close()
            raise
        return pubsub

    def _resubscribe(self, lost_at: float) -> bool:
        """Reopen with backoff until it works or the subscription is closed; True when it worked."""
        with contextlib.suppress(Exception):
            self._pubsub.close()
        backoff = self.min_backoff_s
        while not self._stop.wait(backoff):
            try:
                self._pubsub = self._open()
            except Exception:  # still down: try again later
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            self.reconnects += 1
            log.warning("subscription to %r on Redis %s re-established", self._channel, self._cache.address)
            if self._on_reconnect is not None:
                try:
                    self._on_reconnect(lost_at)
                except Exception:
                    log.exception("resync after resubscribing to %r failed", self._channel)
            return True
        return False

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            except (redis.exceptions.RedisError, OSError, ValueError, AttributeError) as exc:
                if self._stop.is_set():
                    return
                log.warning("subscription to %r on Redis %s lost (%s); reconnecting", self._channel,
                            self._cache.address, exc)  # fmt: skip
                if not self._resubscribe(time.time()):
                    return
                continue
            if msg is None or msg.get("type") != "message":
                continue
            try:
                self._callback(msg["data"])
            except Exception:
                log.exception("pub/sub callback on %r failed", self._channel)

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        with contextlib.suppress(Exception):
            self._pubsub.close()
        self._cache._forget(self)


class RedisHotCache(HotCache):
    """:class:`HotCache` on a Redis server (``settings.redis``, or ``url`` when given)."""

    def __init__(
        self,
        settings: Settings,
        *,
        url: str | None = None,
        socket_timeout_s: float = 5.0,
        max_connections: int = 64,
    ) -> None:
        self.address = f"{settings.redis.host}:{settings.redis.port}"
        kwargs: dict[str, Any] = dict(
            decode_responses=True,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=socket_timeout_s,
            health_check_interval=30,
            max_connections=max_connections,
        )
        if url is not None:
            self._pool = redis.ConnectionPool.from_url(url, **kwargs)
            self.address = url
        else:
            self._pool = redis.ConnectionPool(
                host=settings.redis.host, port=settings.redis.port, db=settings.redis.db, **kwargs
            )
        self._client = redis.Redis(connection_pool=self._pool)
        self._ztop_script = self._client.register_script(_ZTOP_LUA)
        self._subs: list[_RedisSubscription] = []
        self._subs_lock = threading.Lock()

    # ------------------------------------------------------------------ for the fast paths (stores/redis_fast.py)
    @property
    def endpoint(self) -> RedisEndpoint:
        """Where this cache's connections go (for clients that speak RESP themselves)."""
        kw = self._pool.connection_kwargs
        return RedisEndpoint(str(kw.get("host", "localhost")), int(kw.get("port", 6379)), int(kw.get("db", 0) or 0),
                             kw.get("password"))  # fmt: skip

    def pipeline(self):
        """A non-transactional redis-py pipeline on this cache's pool; run its ``execute()`` inside
        :meth:`errors` so failures map like every other call."""
        return self._client.pipeline(transaction=False)

    @contextlib.contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """Redis connection failures and timeouts -> :class:`ServiceUnavailable` naming the address;
        any other Redis error -> :class:`StoreError`."""
        try:
            yield
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise ServiceUnavailable(
                f"Redis at {self.address} is unavailable ({what}): {exc}",
                hint="start it with `hotpath services up`",
            ) from exc
        except redis.exceptions.RedisError as exc:
            raise StoreError(f"Redis {what} failed: {exc}") from exc

    # ------------------------------------------------------------------ strings / keys
    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except redis.exceptions.RedisError:
            return False

    def get(self, key: str) -> str | None:
        with self.errors("GET"):
            return self._client.get(key)

    def set(self, key: str, value: str, *, ttl_s: float | None = None) -> None:
        with self.errors("SET"):
            self._client.set(key, value, px=_ms(ttl_s) if ttl_s is not None else None)

    def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        with self.errors("DEL"):
            return int(self._client.delete(*keys))

    def expire(self, key: str, ttl_s: float) -> bool:
        with self.errors("PEXPIRE"):
            return bool(self._client.pexpire(key, _ms(ttl_s)))

    def ttl(self, key: str) -> float | None:
        with self.errors("PTTL"):
            ms = int(self._client.pttl(key))
        return None if ms < 0 else ms / 1000.0

    def scan(self, prefix: str) -> Iterable[str]:
        pattern = _GLOB_SPECIAL.sub(r"\\\1", prefix) + "*"
        with self.errors("SCAN"):
            return list(self._client.scan_iter(match=pattern, count=1000))

    # ------------------------------------------------------------------ sorted sets
    def zadd(self, key: str, members: Mapping[str, float], *, ttl_s: float | None = None) -> None:
        with self.errors("ZADD"):
            pipe = self._client.pipeline(transaction=True)
            if members:
                pipe.zadd(key, {m: float(s) for m, s in members.items()})
            if ttl_s is not None:
                pipe.pexpire(key, _ms(ttl_s))
            pipe.execute()

    def zreplace(self, key: str, members: Mapping[str, float], *, ttl_s: float | None = None) -> None:
        with self.errors("ZREPLACE"):
            pipe = self._client.pipeline(transaction=True)
            pipe.delete(key)
            if members:
                pipe.zadd(key, {m: float(s) for m, s in members.items()})
                if ttl_s is not None:
                    pipe.pexpire(key, _ms(ttl_s))
            pipe.execute()

    def zreplace_many(self, items: Mapping[str, Mapping[str, float]], *, ttl_s: float | None = None) -> None:
        """Every key replaced in one MULTI/EXEC round trip (atomic across the keys as well)."""
        if not items:
            return
        with self.errors("ZREPLACE many"):
            pipe = self._client.pipeline(transaction=True)
            for key, members in items.items():
                pipe.delete(key)
                if members:
                    pipe.zadd(key, {m: float(s) for m, s in members.items()})
                    if ttl_s is not None:
                        pipe.pexpire(key, _ms(ttl_s))
            pipe.execute()

    def ztop(self, key: str, n: int) -> list[tuple[str, float]]:
        if n <= 0:
            return []
        with self.errors("ZTOP"):
            return _pairs(self._ztop_script(keys=[key], args=[n]), n)

    def ztop_many(self, keys: Sequence[str], n: int) -> list[list[tuple[str, float]]]:
        if n <= 0 or not keys:
            return [[] for _ in keys]
        with self.errors("ZTOP many"):
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                self._ztop_script(keys=[key], args=[n], client=pipe)
            return [_pairs(flat, n) for flat in pipe.execute()]

    def zprune_below(self, key: str, min_score: float) -> int:
        with self.errors("ZREMRANGEBYSCORE"):
            return int(self._client.zremrangebyscore(key, "-inf", f"({float(min_score)!r}"))

    def zrem(self, key: str, members: Sequence[str]) -> int:
        if not members:
            return 0
        with self.errors("ZREM"):
            return int(self._client.zrem(key, *members))

    # ------------------------------------------------------------------ hashes
    def hset(self, key: str, mapping: Mapping[str, str], *, ttl_s: float | None = None) -> None:
        with self.errors("HSET"):
            pipe = self._client.pipeline(transaction=True)
            if mapping:
                pipe.hset(key, mapping={f: str(v) for f, v in mapping.items()})
            if ttl_s is not None:
                pipe.pexpire(key, _ms(ttl_s))
            pipe.execute()

    def hgetall(self, key: str) -> dict[str, str]:
        with self.errors("HGETALL"):
            return dict(self._client.hgetall(key))

    def hgetall_many(self, keys: Sequence[str]) -> list[dict[str, str]]:
        if not keys:
            return []
        with self.errors("HGETALL many"):
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.hgetall(key)
            return [dict(h) for h in pipe.execute()]

    # ------------------------------------------------------------------ pub/sub
    def publish(self, channel: str, message: str) -> int:
        with self.errors("PUBLISH"):
            return int(self._client.publish(channel, message))

    def subscribe(
        self, channel: str, callback: Callable[[str], None], *, on_reconnect: Callable[[float], None] | None = None
    ) -> Subscription:
        """Deliver the channel's messages to ``callback`` on a thread; the subscription survives a
        Redis restart (re-established with backoff, then ``on_reconnect(lost_at)``)."""
        sub = _RedisSubscription(self, channel, callback, on_reconnect)
        with self._subs_lock:
            self._subs.append(sub)
        return sub

    def _forget(self, sub: _RedisSubscription) -> None:
        with self._subs_lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def close(self) -> None:
        with self._subs_lock:
            subs = list(self._subs)
        for sub in subs:
            sub.close()
        self._pool.disconnect()
