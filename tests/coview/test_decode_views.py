"""``decode_views`` (msgspec) is only a faster way to the same result: every batch it accepts gives
the shard exactly the state and side streams the general (orjson + checks) path gives, and any
batch with a record off its shape is left to the general path."""

from __future__ import annotations

import json
import pickle

import pytest

import hotpath.coview.shard as shard_mod
from hotpath.coview.events import decode_views
from hotpath.coview.settings import StreamingSettings
from hotpath.coview.shard import ShardCore
from hotpath.streams.base import LogRecord

T0 = 1_700_000_000_000


def _view(i: int, **extra) -> dict:
    ev = {"type": "view", "user": f"u{i % 7}", "session": f"s{i % 9}", "cat": f"c{i % 11}", "ts": T0 + i * 1000,
          "pid": f"p{i}", "sent_ms": T0 + i}
    ev.update(extra)
    return {k: v for k, v in ev.items() if v is not ...}


@pytest.mark.parametrize(
    "odd",
    [
        {"ts": float(T0)},  # a float time: the general path re-times it
        {"ts": True},
        {"cat": ""},
        {"user": 5},
        {"cat": "x" * 257},
        {"pid": None},
        {"sent_ms": "soon"},
        {"type": "watermark", "user": ..., "cat": ...},
    ],
)
def test_a_record_off_the_shape_leaves_the_batch_to_the_general_path(odd: dict) -> None:
    raws = [json.dumps(_view(i)).encode() for i in range(5)]
    assert decode_views(raws) is not None
    raws[2] = json.dumps(_view(2, **odd)).encode()
    assert decode_views(raws) is None
    assert decode_views([b"{not json}"]) is None and decode_views([b"[1]"]) is None and decode_views([]) is None


def test_fields_read_as_the_general_path_reads_them() -> None:
    raws = [json.dumps(e).encode() for e in (
        _view(1), _view(2, session=None), _view(3, session=...), _view(4, session=""), _view(5, pid=..., sent_ms=...),
        _view(6, extra={"a": [1, 2]}, sent_ms=1.5e12), _view(7, type="order", master="m1", qty=3),
    )]  # fmt: skip
    got = decode_views(raws)
    assert got is not None
    assert [w.session for w in got][:4] == ["s1", None, None, ""]
    assert got[4].pid == "" and got[4].sent_ms == 0 and got[5].sent_ms == 1.5e12
    assert got[6].type == "order"


def _records() -> list[LogRecord]:
    evs = [_view(i) for i in range(300)]
    evs[10] = _view(10, type="order", master="m1", qty=2)
    evs[20] = _view(20, ts=5)  # an absurd time: dead
    evs[30] = _view(30, type="nope")  # an unknown type: dead
    evs[40] = _view(40, ts=T0 - 3_600_000)  # late by then
    evs[50] = _view(50, session=None)
    return [LogRecord("t", 0, i, e["user"].encode(), json.dumps(e).encode(), 0) for i, e in enumerate(evs)]


def _run(monkeypatch, fast: bool) -> tuple[ShardCore, list]:
    if not fast:
        monkeypatch.setattr(shard_mod, "decode_views", lambda raws: None)
    core = ShardCore(0, 1, [0], StreamingSettings(watermark_delay_s=0, allowed_lateness_s=0))
    recs = _records()
    outs = [core.ingest(0, recs[i:i + 60]) for i in range(0, len(recs), 60)]
    monkeypatch.undo()
    return core, outs


def test_the_shard_ends_in_the_same_state_either_way(monkeypatch) -> None:
    fast, fast_out = _run(monkeypatch, True)
    slow, slow_out = _run(monkeypatch, False)
    assert decode_views([r.value for r in _records()[:60]]) is not None  # the fast path did run
    assert fast.counters() == slow.counters() and fast.counters()["views"] > 250
    assert pickle.loads(fast.snapshot()) == pickle.loads(slow.snapshot())
    for a, b in zip(fast_out, slow_out):
        assert [(r.offset, why) for r, why in a.dead] == [(r.offset, why) for r, why in b.dead]
        assert [r.offset for r in a.late] == [r.offset for r in b.late]
        assert (a.views, a.orders, a.oldest_sent_ms, a.newest_sent_ms) == (b.views, b.orders, b.oldest_sent_ms, b.newest_sent_ms)
    assert sum(len(o.dead) for o in fast_out) == 2 and sum(o.orders for o in fast_out) == 1
