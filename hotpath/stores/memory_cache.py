"""An in-process :class:`HotCache` with Redis semantics: a test double and a replica-local cache.

Thread-safe (one lock around plain dicts). TTLs follow an injectable monotonic ``clock`` so tests can
move time by hand; expired keys vanish lazily on access and in :meth:`scan`. Pub/sub messages are
delivered on one background dispatcher thread per cache, in publish order, as Redis delivers them
on the subscriber's connection thread; a callback that raises is logged and delivery goes on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from hotpath.errors import StoreError
from hotpath.stores.base import HotCache, Subscription

__all__ = ["InMemoryHotCache"]

log = logging.getLogger(__name__)

_STR, _ZSET, _HASH = "string", "zset", "hash"


class _MemorySubscription(Subscription):
    def __init__(self, cache: InMemoryHotCache, channel: str, callback: Callable[[str], None]) -> None:
        self.channel = channel
        self.callback = callback
        self.closed = False
        self._cache = cache

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._cache._unsubscribe(self)


class InMemoryHotCache(HotCache):
    """Redis-like strings, sorted sets, hashes, TTLs and pub/sub in one process."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._data: dict[str, tuple[str, object]] = {}
        self._deadline: dict[str, float] = {}
        self._subs: dict[str, list[_MemorySubscription]] = {}
        self._queue: queue.SimpleQueue[tuple[_MemorySubscription, str] | None] = queue.SimpleQueue()
        self._dispatcher: threading.Thread | None = None
        self._closed = False

    # ------------------------------------------------------------------ internals (hold the lock)
    def _live(self, key: str) -> tuple[str, object] | None:
        deadline = self._deadline.get(key)
        if deadline is not None and self._clock() >= deadline:
            self._data.pop(key, None)
            self._deadline.pop(key, None)
            return None
        return self._data.get(key)

    def _typed(self, key: str, kind: str) -> object | None:
        entry = self._live(key)
        if entry is None:
            return None
        if entry[0] != kind:
            raise StoreError(f"key {key!r} holds a {entry[0]}, not a {kind}")
        return entry[1]

    def _set_ttl(self, key: str, ttl_s: float | None) -> None:
        if ttl_s is not None and key in self._data:
            if ttl_s <= 0:
                self._drop(key)
            else:
                self._deadline[key] = self._clock() + ttl_s

    def _drop(self, key: str) -> bool:
        self._deadline.pop(key, None)
        return self._data.pop(key, None) is not None

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the in-memory cache is closed")

    # ------------------------------------------------------------------ strings / keys
    def ping(self) -> bool:
        return not self._closed

    def get(self, key: str) -> str | None:
        with self._lock:
            value = self._typed(key, _STR)
            return value  # type: ignore[return-value]

    def set(self, key: str, value: str, *, ttl_s: float | None = None) -> None:
        with self._lock:
            self._check_open()
            self._drop(key)
            self._data[key] = (_STR, str(value))
            self._set_ttl(key, ttl_s)

    def delete(self, *keys: str) -> int:
        with self._lock:
            return sum(1 for key in keys if self._live(key) is not None and self._drop(key))

    def expire(self, key: str, ttl_s: float) -> bool:
        with self._lock:
            if self._live(key) is None:
                return False
            self._set_ttl(key, ttl_s)
            return True

    def ttl(self, key: str) -> float | None:
        with self._lock:
            if self._live(key) is None:
                return None
            deadline = self._deadline.get(key)
            return None if deadline is None else max(0.0, deadline - self._clock())

    def scan(self, prefix: str) -> Iterable[str]:
        with self._lock:
            keys = [k for k in self._data if k.startswith(prefix)]
            return [k for k in keys if self._live(k) is not None]

    # ------------------------------------------------------------------ sorted sets
    def _zset(self, key: str, create: bool) -> dict[str, float] | None:
        zset = self._typed(key, _ZSET)
        if zset is None and create:
            zset = {}
            self._data[key] = (_ZSET, zset)
        return zset  # type: ignore[return-value]

    def zadd(self, key: str, members: Mapping[str, float], *, ttl_s: float | None = None) -> None:
        with self._lock:
            self._check_open()
            if members:
                zset = self._zset(key, create=True)
                assert zset is not None
                zset.update((str(m), float(s)) for m, s in members.items())
            self._set_ttl(key, ttl_s)

    def zreplace(self, key: str, members: Mapping[str, float], *, ttl_s: float | None = None) -> None:
        with self._lock:
            self._check_open()
            self._drop(key)
            if members:
                self._data[key] = (_ZSET, {str(m): float(s) for m, s in members.items()})
                self._set_ttl(key, ttl_s)

    def zreplace_many(self, items: Mapping[str, Mapping[str, float]], *, ttl_s: float | None = None) -> None:
        with self._lock:  # one lock hold: readers see all keys old or all new
            for key, members in items.items():
                self.zreplace(key, members, ttl_s=ttl_s)

    @staticmethod
    def _top(zset: dict[str, float] | None, n: int) -> list[tuple[str, float]]:
        if not zset or n <= 0:
            return []
        ordered = sorted(zset.items(), key=lambda item: (-item[1], item[0]))
        return ordered[:n]

    def ztop(self, key: str, n: int) -> list[tuple[str, float]]:
        with self._lock:
            return self._top(self._zset(key, create=False), n)

    def ztop_many(self, keys: Sequence[str], n: int) -> list[list[tuple[str, float]]]:
        with self._lock:
            return [self._top(self._zset(key, create=False), n) for key in keys]

    def zprune_below(self, key: str, min_score: float) -> int:
        with self._lock:
            zset = self._zset(key, create=False)
            if not zset:
                return 0
            gone = [m for m, s in zset.items() if s < min_score]
            for member in gone:
                del zset[member]
            if not zset:
                self._drop(key)
            return len(gone)

    def zrem(self, key: str, members: Sequence[str]) -> int:
        with self._lock:
            zset = self._zset(key, create=False)
            if not zset:
                return 0
            gone = [m for m in members if zset.pop(str(m), None) is not None]
            if not zset:
                self._drop(key)
            return len(gone)

    # ------------------------------------------------------------------ hashes
    def hset(self, key: str, mapping: Mapping[str, str], *, ttl_s: float | None = None) -> None:
        with self._lock:
            self._check_open()
            if mapping:
                hashed = self._typed(key, _HASH)
                if hashed is None:
                    hashed = {}
                    self._data[key] = (_HASH, hashed)
                hashed.update((str(f), str(v)) for f, v in mapping.items())  # type: ignore[union-attr]
            self._set_ttl(key, ttl_s)

    def hgetall(self, key: str) -> dict[str, str]:
        with self._lock:
            hashed = self._typed(key, _HASH)
            return dict(hashed) if hashed else {}  # type: ignore[call-overload]

    def hgetall_many(self, keys: Sequence[str]) -> list[dict[str, str]]:
        with self._lock:
            return [self.hgetall(key) for key in keys]

    # ------------------------------------------------------------------ pub/sub
    def publish(self, channel: str, message: str) -> int:
        with self._lock:
            self._check_open()
            subs = list(self._subs.get(channel, ()))
            for sub in subs:
                self._queue.put((sub, str(message)))
            return len(subs)

    def subscribe(
        self, channel: str, callback: Callable[[str], None], *, on_reconnect: Callable[[float], None] | None = None
    ) -> Subscription:
        """``on_reconnect``: accepted for the Redis cache's contract; an in-process cache never drops."""
        with self._lock:
            self._check_open()
            sub = _MemorySubscription(self, channel, callback)
            self._subs.setdefault(channel, []).append(sub)
            if self._dispatcher is None:
                self._dispatcher = threading.Thread(target=self._dispatch, name="hotpath-memcache-pubsub", daemon=True)
                self._dispatcher.start()
            return sub

    def _unsubscribe(self, sub: _MemorySubscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.channel, [])
            if sub in subs:
                subs.remove(sub)
            if not subs:
                self._subs.pop(sub.channel, None)

    def _dispatch(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            sub, message = item
            if sub.closed:
                continue
            try:
                sub.callback(message)
            except Exception:  # a subscriber's bug must not stop delivery to the others
                log.exception("pub/sub callback on %r failed", sub.channel)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for subs in self._subs.values():
                for sub in subs:
                    sub.closed = True
            self._subs.clear()
            dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is not None:
            self._queue.put(None)
            if dispatcher is not threading.current_thread():
                dispatcher.join(timeout=5)
