"""The HotCache contract: every implementation passes the same tests (Redis needs the services)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from hotpath.config import Settings
from hotpath.errors import ServiceUnavailable, StoreError
from hotpath.stores.base import HotCache
from hotpath.stores.memory_cache import InMemoryHotCache


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class CacheUnderTest:
    cache: HotCache
    prefix: str
    advance: Callable[[float], None]
    """Let ``seconds`` pass for TTL purposes (a fake clock in memory, a real sleep on Redis)."""

    def k(self, name: str) -> str:
        return f"{self.prefix}{name}"


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.services)])
def cut(request: pytest.FixtureRequest, settings: Settings, uniq: str) -> Iterator[CacheUnderTest]:
    prefix = f"contract:{uniq}:"
    if request.param == "memory":
        clock = FakeClock()
        cache: HotCache = InMemoryHotCache(clock=clock)

        def advance(seconds: float) -> None:
            clock.now += seconds

    else:
        from hotpath.stores.redis_cache import RedisHotCache

        cache = RedisHotCache(settings)
        if not cache.ping():
            cache.close()
            pytest.fail(f"Redis at {settings.redis.host}:{settings.redis.port} is down: run `hotpath services up`")

        def advance(seconds: float) -> None:
            time.sleep(seconds)

    try:
        yield CacheUnderTest(cache, prefix, advance)
    finally:
        keys = list(cache.scan(prefix))
        if keys:
            cache.delete(*keys)
        cache.close()


# ---------------------------------------------------------------------------- strings and keys
def test_ping(cut: CacheUnderTest) -> None:
    assert cut.cache.ping() is True


def test_get_set_delete_missing(cut: CacheUnderTest) -> None:
    c, a, b = cut.cache, cut.k("a"), cut.k("b")
    assert c.get(a) is None
    c.set(a, "1")
    c.set(a, "2")
    assert c.get(a) == "2"
    assert c.delete(a, b) == 1
    assert c.get(a) is None
    assert c.delete(a) == 0


def test_ttl_expiry(cut: CacheUnderTest) -> None:
    c, a, b = cut.cache, cut.k("a"), cut.k("b")
    c.set(a, "x", ttl_s=0.3)
    c.set(b, "y")
    ttl = c.ttl(a)
    assert ttl is not None and 0 < ttl <= 0.3
    assert c.ttl(b) is None  # no TTL
    assert c.ttl(cut.k("missing")) is None
    cut.advance(0.45)
    assert c.get(a) is None
    assert c.ttl(a) is None
    assert list(c.scan(cut.prefix)) == [b]
    assert c.expire(b, 0.3) is True
    assert c.expire(cut.k("missing"), 1) is False
    cut.advance(0.45)
    assert c.get(b) is None


def test_set_without_ttl_clears_old_ttl(cut: CacheUnderTest) -> None:
    c, a = cut.cache, cut.k("a")
    c.set(a, "x", ttl_s=0.3)
    c.set(a, "y")
    assert c.ttl(a) is None
    cut.advance(0.45)
    assert c.get(a) == "y"


def test_scan_prefix_is_literal(cut: CacheUnderTest) -> None:
    c = cut.cache
    c.set(cut.k("p*1"), "1")
    c.set(cut.k("p*2"), "2")
    c.set(cut.k("px3"), "3")
    assert sorted(c.scan(cut.k("p*"))) == [cut.k("p*1"), cut.k("p*2")]
    assert sorted(c.scan(cut.prefix)) == sorted([cut.k("p*1"), cut.k("p*2"), cut.k("px3")])


# ---------------------------------------------------------------------------- sorted sets
def test_ztop_order_and_ties(cut: CacheUnderTest) -> None:
    c, z = cut.cache, cut.k("z")
    c.zadd(z, {"d": 1.0, "b": 2.0, "a": 2.0, "c": 2.0, "e": 3.5, "f": 0.5})
    assert c.ztop(z, 10) == [("e", 3.5), ("a", 2.0), ("b", 2.0), ("c", 2.0), ("d", 1.0), ("f", 0.5)]
    # the cut falls inside a tie: members ascending win
    assert c.ztop(z, 2) == [("e", 3.5), ("a", 2.0)]
    assert c.ztop(z, 3) == [("e", 3.5), ("a", 2.0), ("b", 2.0)]
    assert c.ztop(z, 0) == []
    assert c.ztop(cut.k("missing"), 5) == []


def test_ztop_many_ties_all_equal(cut: CacheUnderTest) -> None:
    c = cut.cache
    c.zadd(cut.k("flat"), {m: 1.0 for m in "qwertyuiop"})
    assert c.ztop(cut.k("flat"), 3) == [("e", 1.0), ("i", 1.0), ("o", 1.0)]


def test_zadd_upserts_scores_and_ttl(cut: CacheUnderTest) -> None:
    c, z = cut.cache, cut.k("z")
    c.zadd(z, {"a": 1.0, "b": 2.0})
    c.zadd(z, {"a": 5.0}, ttl_s=0.3)
    assert c.ztop(z, 5) == [("a", 5.0), ("b", 2.0)]
    ttl = c.ttl(z)
    assert ttl is not None and 0 < ttl <= 0.3
    cut.advance(0.45)
    assert c.ztop(z, 5) == []


def test_zreplace_atomic_idempotent(cut: CacheUnderTest) -> None:
    c, z = cut.cache, cut.k("z")
    c.zadd(z, {"old": 9.0, "a": 1.0})
    new = {"a": 3.0, "b": 2.0, "c": -1.5}
    c.zreplace(z, new, ttl_s=60)
    first = c.ztop(z, 10)
    c.zreplace(z, new, ttl_s=60)
    assert c.ztop(z, 10) == first == [("a", 3.0), ("b", 2.0), ("c", -1.5)]
    ttl = c.ttl(z)
    assert ttl is not None and 50 < ttl <= 60
    c.zreplace(z, {"x": 1.0})  # no TTL given: the new set has none
    assert c.ttl(z) is None
    c.zreplace(z, {})
    assert c.ztop(z, 10) == []
    assert list(c.scan(z)) == []


def test_zreplace_many(cut: CacheUnderTest) -> None:
    c = cut.cache
    a, b, gone = cut.k("a"), cut.k("b"), cut.k("gone")
    c.zadd(a, {"stale": 5.0})
    c.zadd(gone, {"x": 1.0})
    items = {a: {"m1": 2.0, "m2": 1.0}, b: {"n1": 0.5}, gone: {}}
    c.zreplace_many(items, ttl_s=60)
    c.zreplace_many(items, ttl_s=60)  # idempotent
    assert c.ztop_many([a, b, gone], 10) == [[("m1", 2.0), ("m2", 1.0)], [("n1", 0.5)], []]
    for key in (a, b):
        ttl = c.ttl(key)
        assert ttl is not None and 50 < ttl <= 60
    assert sorted(c.scan(cut.prefix)) == sorted([a, b])
    c.zreplace_many({})


def test_zprune_below(cut: CacheUnderTest) -> None:
    c, z = cut.cache, cut.k("z")
    c.zadd(z, {"a": 0.1, "b": 0.5, "c": 0.49, "d": 2.0})
    assert c.zprune_below(z, 0.5) == 2  # strictly below: b (0.5) stays
    assert c.ztop(z, 10) == [("d", 2.0), ("b", 0.5)]
    assert c.zprune_below(z, 0.0) == 0
    assert c.zprune_below(cut.k("missing"), 1.0) == 0


def test_zrem(cut: CacheUnderTest) -> None:
    c, z = cut.cache, cut.k("z")
    c.zadd(z, {"a": 0.1, "b": 0.5, "c": 2.0})
    assert c.zrem(z, ["a", "absent"]) == 1
    assert c.ztop(z, 10) == [("c", 2.0), ("b", 0.5)]
    assert c.zrem(z, []) == 0 and c.zrem(cut.k("missing"), ["a"]) == 0
    assert c.zrem(z, ["b", "c"]) == 2 and c.ztop(z, 10) == []


def test_ztop_many_order_matches_keys(cut: CacheUnderTest) -> None:
    c = cut.cache
    keys = [cut.k(f"z{i}") for i in range(5)]
    for i, key in enumerate(keys):
        if i != 2:
            c.zadd(key, {f"m{j}": float(i * 10 + j) for j in range(i + 1)})
    got = c.ztop_many(keys, 2)
    assert got[2] == []
    assert got[0] == [("m0", 0.0)]
    assert got[4] == [("m4", 44.0), ("m3", 43.0)]
    assert got[1] == [("m1", 11.0), ("m0", 10.0)]
    assert c.ztop_many([], 3) == []


def test_wrong_type_is_store_error(cut: CacheUnderTest) -> None:
    c, a = cut.cache, cut.k("a")
    c.set(a, "x")
    with pytest.raises(StoreError):
        c.zadd(a, {"m": 1.0})


# ---------------------------------------------------------------------------- hashes
def test_hashes(cut: CacheUnderTest) -> None:
    c, h = cut.cache, cut.k("h")
    assert c.hgetall(h) == {}
    c.hset(h, {"boost": "1.5", "out_of_stock": "0"})
    c.hset(h, {"boost": "2.0", "ad_bid": "0.3"}, ttl_s=30)
    assert c.hgetall(h) == {"boost": "2.0", "out_of_stock": "0", "ad_bid": "0.3"}
    ttl = c.ttl(h)
    assert ttl is not None and 20 < ttl <= 30
    keys = [cut.k("missing"), h, cut.k("h2")]
    c.hset(keys[2], {"x": "y"})
    assert c.hgetall_many(keys) == [{}, {"boost": "2.0", "out_of_stock": "0", "ad_bid": "0.3"}, {"x": "y"}]
    assert c.hgetall_many([]) == []


# ---------------------------------------------------------------------------- pub/sub
def test_pubsub_delivers_in_order_until_closed(cut: CacheUnderTest) -> None:
    c, channel = cut.cache, cut.k("chan")
    got: list[str] = []
    done = threading.Event()

    def on_message(message: str) -> None:
        got.append(message)
        if len(got) == 3:
            done.set()

    assert c.publish(channel, "before") == 0
    sub = c.subscribe(channel, on_message)
    try:
        assert c.publish(channel, "one") == 1
        c.publish(channel, "two")
        c.publish(channel, "three")
        assert done.wait(5), got
        assert got == ["one", "two", "three"]
    finally:
        sub.close()
    assert c.publish(channel, "after") == 0
    time.sleep(0.1)
    assert got == ["one", "two", "three"]


def test_pubsub_failing_callback_keeps_delivering(cut: CacheUnderTest) -> None:
    c, channel = cut.cache, cut.k("chan")
    got: list[str] = []
    done = threading.Event()

    def on_message(message: str) -> None:
        if message == "boom":
            raise RuntimeError("subscriber bug")
        got.append(message)
        done.set()

    sub = c.subscribe(channel, on_message)
    try:
        c.publish(channel, "boom")
        c.publish(channel, "ok")
        assert done.wait(5)
        assert got == ["ok"]
    finally:
        sub.close()


# ---------------------------------------------------------------------------- errors
def test_redis_down_is_service_unavailable(settings: Settings) -> None:
    from hotpath.stores.redis_cache import RedisHotCache

    cache = RedisHotCache(settings, url="redis://127.0.0.1:1/0", socket_timeout_s=0.5)
    try:
        assert cache.ping() is False
        with pytest.raises(ServiceUnavailable, match="127.0.0.1:1"):
            cache.get("x")
    finally:
        cache.close()
