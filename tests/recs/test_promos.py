"""The volatile-signal write path: the promos topic (embedded log) consumed into real Redis, bad
records to the DLQ, per-pid offset order (a replay brings nothing old back), the admin endpoint."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest

from hotpath.errors import BadInput
from hotpath.recs.model import Keys
from hotpath.recs.promos import PromoEvent, parse_promo
from hotpath.streams.base import EventIn

from .conftest import recs_settings_for


def test_schema_refuses_bad_events_naming_the_problem() -> None:
    assert parse_promo(b'{"pid": "p1", "out_of_stock": true}').out_of_stock is True
    for raw, where in [
        (b"not json", "value"),
        (b'{"pid": "p1", "boost": -1}', "boost"),
        (b'{"pid": "p1", "colour": "red"}', "colour"),
        (b'{"pid": "p 1", "boost": 2}', "pid"),
        (b'{"boost": 2}', "pid"),
        (b'{"pid": "p1"}', "value"),  # changes nothing
        (b'{"pid": "p1", "price": "cheap"}', "price"),
    ]:
        with pytest.raises(BadInput) as e:
            parse_promo(raw)
        assert e.value.field == where, raw
    with pytest.raises(BadInput, match="key"):
        parse_promo(b'{"pid": "p1", "boost": 2}', key=b"p2")
    assert "pid" in PromoEvent.model_json_schema()["required"]


@pytest.fixture
def promo_settings(settings, tmp_path):
    s = recs_settings_for(settings.model_copy(update={"profile": "embedded"}), tmp_path, f"t-promo-{uuid.uuid4().hex[:6]}:",
                          promos_partitions=2, promos_consumer=False)  # fmt: skip
    return s.model_copy(update={"event_log": s.event_log.model_copy(update={"path": tmp_path / "log"})})


async def _append(s, events: list[tuple[bytes | None, bytes]]) -> list[tuple[int, int]]:
    from hotpath.streams.factory import open_event_log

    log = open_event_log(s)
    try:
        await log.create_topic(s.recs.promos_topic, s.recs.promos_partitions)
        return await log.append(s.recs.promos_topic, [EventIn(v, k) for k, v in events])
    finally:
        await log.close()


async def _read_all(s, topic: str) -> list:
    from hotpath.streams.factory import open_event_log

    log = open_event_log(s)
    try:
        out = []
        for p in range(await log.partitions(topic)):
            out += await log.read(topic, p, 0, max_records=1000)
        return out
    finally:
        await log.close()


def _ev(pid: str, **fields) -> tuple[bytes, bytes]:
    return pid.encode(), json.dumps({"pid": pid, **fields}).encode()


@pytest.mark.services
def test_promos_topic_into_redis_with_dlq_order_and_replay(promo_settings) -> None:
    from hotpath.deployments.recs import run_promos
    from hotpath.stores.factory import open_hot_cache

    s = promo_settings
    keys = Keys(s.recs.key_prefix)
    cache = open_hot_cache(s)
    got: list[str] = []
    sub = cache.subscribe(keys.channel(s.recs.invalidation_channel), got.append)
    try:
        events = [
            _ev("pa", price=10.0, out_of_stock=False),
            _ev("pb", boost=1.5, ad_bid=0.2),
            (b"pa", b"{broken"),
            _ev("pa", boost=-3),
            (b"pc", json.dumps({"pid": "pd", "boost": 2}).encode()),  # key is not its pid
            _ev("pa", price=20.0, out_of_stock=True),
        ]
        asyncio.run(_append(s, events))
        res = asyncio.run(run_promos(s, idle_exit_s=1.0))
        assert res == {"applied": 3, "skipped_old": 0, "bad": 3}
        pa = cache.hgetall(keys.promo("pa"))
        assert pa["out_of_stock"] == "1" and cache.hgetall(keys.attr("pa"))["price"] == "20.0"
        assert cache.hgetall(keys.promo("pb"))["ad_bid"] == "0.2"
        dlq = asyncio.run(_read_all(s, s.recs.promos_dlq_topic))
        assert len(dlq) == 3
        reasons = [json.loads(r.value)["reason"] for r in dlq]
        assert any("boost" in r for r in reasons) and any("key" in r for r in reasons)
        assert all(json.loads(r.value)["topic"] == s.recs.promos_topic for r in dlq)
        assert {c for c, _ in cache.ztop(keys.changes, 10)} == {"pid:pa", "pid:pb"}
        assert _wait(lambda: sum(m.startswith("pid:pa|") for m in got) == 2)

        # a replay from the start brings no old price or stock state back
        cache.hset(keys.promo("pb"), {"boost": "3.0"})  # a newer manual state, no event behind it
        res = asyncio.run(run_promos(s, from_start=True, idle_exit_s=1.0))
        assert res["applied"] == 0 and res["skipped_old"] == 3
        assert cache.hgetall(keys.attr("pa"))["price"] == "20.0" and cache.hgetall(keys.promo("pa"))["out_of_stock"] == "1"

        # newer events apply; the checkpoint means a restarted consumer reads only those
        asyncio.run(_append(s, [_ev("pa", price=15.0, out_of_stock=False)]))
        res = asyncio.run(run_promos(s, idle_exit_s=1.0))
        assert res == {"applied": 1, "skipped_old": 0, "bad": 0}
        assert cache.hgetall(keys.attr("pa"))["price"] == "15.0"

        # Redis lost everything: a replay from the start rebuilds the latest state, in order
        for k in list(cache.scan(s.recs.key_prefix)):
            cache.delete(k)
        res = asyncio.run(run_promos(s, from_start=True, idle_exit_s=1.0))
        assert res["applied"] == 4
        assert cache.hgetall(keys.attr("pa"))["price"] == "15.0" and cache.hgetall(keys.promo("pa"))["out_of_stock"] == "0"
    finally:
        sub.close()
        for k in list(cache.scan(s.recs.key_prefix)):
            cache.delete(k)
        cache.close()


def _wait(pred, timeout_s: float = 3.0) -> bool:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return bool(pred())


@pytest.mark.services
def test_admin_endpoint_needs_the_token_and_appends_to_the_topic(promo_settings, redis_sqlite) -> None:
    from pydantic import SecretStr
    from starlette.requests import Request

    from hotpath.deployments.recs import RecsIngress

    base, _, _ = redis_sqlite
    s = promo_settings.model_copy(update={
        "recs": base.recs.model_copy(update={"admin_token": SecretStr("s3cret"), "promos_consumer": False,
                                             "warm_masters": 0}),
        "sqlite": base.sqlite, "duckdb": base.duckdb, "runtime_dir": base.runtime_dir})  # fmt: skip
    ing = RecsIngress.func_or_class(s, False)

    def put(pid: str, body: bytes, token: str | None):
        headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
        scope = {"type": "http", "method": "PUT", "path": f"{s.recs.route_prefix}/promos/{pid}",
                 "query_string": b"", "headers": headers}  # fmt: skip

        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        async def go():
            r = await ing(Request(scope, receive))
            return r.status_code, json.loads(r.body)

        return asyncio.run(go())

    try:
        assert put("pz", b'{"out_of_stock": true}', None)[0] == 401
        assert put("pz", b'{"out_of_stock": true}', "wrong")[0] == 401
        code, body = put("pz", b'{"boost": -1}', "s3cret")
        assert code == 422 and body["parameter"] == "boost"
        code, body = put("pz", b'{"out_of_stock": true}', "s3cret")
        assert code == 202 and body["pid"] == "pz"
        recs = asyncio.run(_read_all(s, s.recs.promos_topic))
        assert [json.loads(r.value)["out_of_stock"] for r in recs if r.key == b"pz"] == [True]
        off = ing.settings.model_copy(update={"recs": s.recs.model_copy(update={"admin_token": None})})
        ing.settings = off
        assert put("pz", b'{"out_of_stock": true}', "s3cret")[0] == 403
    finally:
        ing.service.close()
