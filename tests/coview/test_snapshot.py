"""Shard snapshots are a versioned record with named fields; the older positional tuples still load."""

from __future__ import annotations

import json
import pickle

import pytest

from hotpath.coview.settings import StreamingSettings
from hotpath.coview.shard import SNAPSHOT_VERSION, ShardCore, ShardSnapshot
from hotpath.errors import BadInput
from hotpath.streams.base import LogRecord

T0 = 1_700_000_000_000


def _core() -> ShardCore:
    settings = StreamingSettings(watermark_delay_s=0, allowed_lateness_s=0)
    core = ShardCore(0, 1, [0], settings)
    recs = []
    for i in range(200):
        ev = {"type": "view", "user": f"u{i % 7}", "cat": f"c{i % 11}", "master": f"m{i % 13}", "ts": T0 + i * 1000}
        recs.append(LogRecord("t", 0, i, f"u{i % 7}".encode(), json.dumps(ev).encode(), T0 + i * 1000))
    core.ingest(0, recs)
    return core


def _same(a: ShardCore, b: ShardCore) -> None:
    assert a.offsets() == b.offsets()
    assert a.counters() == b.counters()
    assert (a.index, a.shards) == (b.index, b.shards)


def test_a_snapshot_is_a_versioned_dict_and_restores() -> None:
    core = _core()
    blob = core.snapshot()
    raw = pickle.loads(blob)
    assert isinstance(raw, dict) and raw["version"] == SNAPSHOT_VERSION
    assert {"index", "shards", "parts", "state", "pending", "dims_dirty", "counts", "orders"} <= set(raw)
    _same(core, ShardCore.restore(blob, StreamingSettings(watermark_delay_s=0, allowed_lateness_s=0)))


def test_a_version_2_tuple_still_loads() -> None:
    core = _core()
    snap = ShardSnapshot.from_blob(core.snapshot())
    old = pickle.dumps((snap.index, snap.shards, snap.parts, snap.state, snap.pending, snap.dims_dirty,
                        snap.counts, snap.orders))
    assert ShardSnapshot.from_blob(old).version == 2
    _same(core, ShardCore.restore(old, StreamingSettings(watermark_delay_s=0, allowed_lateness_s=0)))


def test_a_version_1_tuple_still_loads() -> None:
    core = _core()
    snap = ShardSnapshot.from_blob(core.snapshot())
    old = pickle.dumps((snap.index, snap.shards, snap.parts, snap.state, {}, snap.dims_dirty, snap.counts))
    back = ShardSnapshot.from_blob(old)
    assert back.version == 1 and back.orders == {} and back.pending is None and back.old_pending == {}
    _same(core, ShardCore.restore(old, StreamingSettings(watermark_delay_s=0, allowed_lateness_s=0)))


def test_an_unknown_snapshot_is_one_clear_error() -> None:
    with pytest.raises(BadInput, match="version 99"):
        ShardSnapshot.from_blob(pickle.dumps({"version": 99}))
    with pytest.raises(BadInput, match="not a co-view shard snapshot"):
        ShardSnapshot.from_blob(pickle.dumps([1, 2]))
