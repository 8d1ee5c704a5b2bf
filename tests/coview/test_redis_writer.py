"""The sinks' RESP writer against the real Redis: the same contents as RedisHotCache.zreplace_many."""

from __future__ import annotations

import random

import pytest

from hotpath.config import load_settings
from hotpath.stores.redis_fast import RespZWriter, zwriter_for
from hotpath.errors import ServiceUnavailable
from hotpath.stores.memory_cache import InMemoryHotCache
from hotpath.stores.redis_cache import RedisHotCache

from .conftest import zset_dump

pytestmark = [pytest.mark.services]


@pytest.fixture
def writer(uniq: str):
    """The real Redis through RedisHotCache, its RespZWriter; the test's ``t:{uniq}:`` keys removed after."""
    cache = RedisHotCache(load_settings(None))
    w = zwriter_for(cache)
    try:
        yield cache, w
    finally:
        for k in list(cache.scan(f"t:{uniq}:")):
            cache.delete(k)
        w.close()
        cache.close()


def test_resp_writer_replaces_sets_exactly_like_the_cache(uniq: str, writer) -> None:
    cache, w = writer
    assert isinstance(w, RespZWriter)
    rng = random.Random(3)
    items = {f"k{i}": {f"m{j}é": rng.random() * 10 ** rng.randint(-6, 6) for j in range(rng.randint(0, 30))}
             for i in range(200)}
    cache.zreplace_many({f"t:{uniq}:a:{k}": {"stale": 1.0} for k in items})  # replaced whole below
    cache.zreplace_many({f"t:{uniq}:b:{k}": v for k, v in items.items()}, ttl_s=300)
    w.keys_per_transaction = 64  # 200 keys: four transactions
    w.zreplace_many({f"t:{uniq}:a:{k}": sorted(v.items()) for k, v in items.items()}, ttl_s=300)
    a = {k.split(":a:")[1]: v for k, v in zset_dump(cache, f"t:{uniq}:a:").items()}
    b = {k.split(":b:")[1]: v for k, v in zset_dump(cache, f"t:{uniq}:b:").items()}
    assert a == b and len(a) == sum(1 for v in items.values() if v)  # empty sets: deleted
    assert 290 < cache.ttl(f"t:{uniq}:a:k1") <= 300


def test_resp_writer_replaces_some_sets_and_sets_members_of_others_in_one_call(uniq: str, writer) -> None:
    cache, w = writer
    w.keys_per_transaction = 2  # three keys: two transactions in one send
    k = lambda name: f"t:{uniq}:{name}"  # noqa: E731
    cache.zreplace_many({k("r"): {"old": 1.0, "x": 9.0}, k("a"): {"keep": 2.0, "x": 1.0}})
    w.zwrite_many({k("r"): {"x": 0.5, "y": 0.25}}, {k("a"): {"x": 3.5, "new": 0.75}, k("n"): {"z": 1.0}},
                  ttl_s=600)
    assert zset_dump(cache, f"t:{uniq}:") == {
        k("r"): {"x": 0.5, "y": 0.25},  # replaced whole: "old" gone
        k("a"): {"keep": 2.0, "x": 3.5, "new": 0.75},  # members set, the others kept
        k("n"): {"z": 1.0},  # a new key
    }
    assert all(590 < cache.ttl(k(n)) <= 600 for n in "ran")
    w.zwrite_many({}, {k("a"): {"x": 3.5, "new": 0.75}})  # the same write again: no change
    assert zset_dump(cache, f"t:{uniq}:")[k("a")] == {"keep": 2.0, "x": 3.5, "new": 0.75}
    w.zwrite_many({}, {k("a"): {"keep": None, "y": 1.5}, k("n"): {"z": None, "absent": None}})  # None: removed
    got = zset_dump(cache, f"t:{uniq}:")
    assert got[k("a")] == {"x": 3.5, "new": 0.75, "y": 1.5} and k("n") not in got


def test_resp_writer_writes_int_and_numpy_scores_like_the_cache(uniq: str, writer) -> None:
    import numpy as np

    cache, w = writer
    items = {"m": {"x": 3, "y": np.float32(0.1), "z": np.float64(2.5), "w": 1.0}, "l": [("x", 7), ("y", np.int64(2))],
             "i": {"x": 1_878_866, "y": 12, "z": 2**53 + 1}}  # all ints: users' recent interests
    cache.zreplace_many({f"t:{uniq}:b:{k}": dict(v) for k, v in items.items()})
    w.zreplace_many({f"t:{uniq}:a:{k}": v for k, v in items.items()})
    a = {k.split(":a:")[1]: v for k, v in zset_dump(cache, f"t:{uniq}:a:").items()}
    b = {k.split(":b:")[1]: v for k, v in zset_dump(cache, f"t:{uniq}:b:").items()}
    assert a == b and a["m"]["x"] == 3.0 and a["l"] == {"x": 7.0, "y": 2.0} and a["i"]["x"] == 1_878_866.0


def test_resp_writer_unreachable_is_service_unavailable() -> None:
    w = RespZWriter("127.0.0.1", 1, timeout_s=1.0)
    with pytest.raises(ServiceUnavailable):
        w.zreplace_many({"k": {"m": 1.0}})


def test_other_caches_are_written_through_their_own_interface() -> None:
    cache = InMemoryHotCache()
    assert zwriter_for(cache) is cache
