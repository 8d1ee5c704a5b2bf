"""The intent replica batches concurrent requests and routes by the tenant's threshold (the plain class;
its Ray actor and Serve shells were removed: nothing in production used them)."""

from __future__ import annotations

import asyncio

from hotpath.intent.replica import IntentReplica
from hotpath.intent.settings import IntentSettings
from hotpath.intent.types import Intent, IntentResult

TEXTS = ["call technician nguyen", "send security to gate 2", "never mind", "tell me a joke",
         "fire in warehouse b", "what is the ppe policy for zone b"] * 8
EXPECTED = [Intent.DIAL_PERSON, Intent.SUMMON_TEAM, Intent.CANCEL, Intent.OOS, Intent.EMERGENCY,
            Intent.GENERAL_QUERY] * 8


async def test_replica_batches_concurrent_calls() -> None:
    replica = IntentReplica(IntentSettings(batch_wait_ms=20, batch_max_size=16))
    results = await asyncio.gather(*(replica.predict(t) for t in TEXTS))
    assert all(isinstance(r, IntentResult) for r in results)
    assert [r.intent for r in results] == EXPECTED
    stats = await replica.stats()
    assert stats["requests"] == len(TEXTS)
    assert 1 < stats["largest_batch"] <= 16 and stats["batches"] < len(TEXTS)


async def test_replica_routes_by_tenant_threshold() -> None:
    replica = IntentReplica(IntentSettings(batch_wait_ms=5, tenant_thresholds={"strict": 0.999999}))
    local = await replica.route("call technician nguyen", tenant=None)
    strict = await replica.route("call technician nguyen", "strict")
    assert (local["route"], strict["route"]) == ("local", "cloud") and local["intent"] == "DIAL_PERSON"
    assert (await replica.predict("")).reason == "empty transcript"
