"""The intent replicas batch concurrent requests: the Ray actor on the local cluster, and the Serve
deployment's class (its batching needs no live Serve replica)."""

from __future__ import annotations

import asyncio

import pytest

from hotpath.intent.settings import IntentSettings
from hotpath.intent.types import Intent, IntentResult

TEXTS = ["call technician nguyen", "send security to gate 2", "never mind", "tell me a joke",
         "fire in warehouse b", "what is the ppe policy for zone b"] * 8
EXPECTED = [Intent.DIAL_PERSON, Intent.SUMMON_TEAM, Intent.CANCEL, Intent.OOS, Intent.EMERGENCY,
            Intent.GENERAL_QUERY] * 8


async def test_serve_deployment_batches_concurrent_calls() -> None:
    from hotpath.deployments.intent import IntentDeployment

    replica = IntentDeployment.func_or_class(IntentSettings(batch_wait_ms=20, batch_max_size=16))
    results = await asyncio.gather(*(replica.predict(t) for t in TEXTS))
    assert [r.intent for r in results] == EXPECTED
    stats = await replica.stats()
    assert 1 < stats["largest_batch"] <= 16 and stats["batches"] < len(TEXTS)
    routed = await replica.route("call technician nguyen", tenant=None)
    assert routed["route"] == "local" and routed["intent"] == "DIAL_PERSON"


@pytest.mark.ray
async def test_ray_actor_batches_concurrent_calls(ray_session) -> None:
    from hotpath.actors.intent import start_intent_actor

    actor = start_intent_actor(IntentSettings(batch_wait_ms=20, tenant_thresholds={"strict": 0.999999}), num_cpus=0)
    try:
        results = await asyncio.gather(*(actor.predict.remote(t) for t in TEXTS))
        assert all(isinstance(r, IntentResult) for r in results)
        assert [r.intent for r in results] == EXPECTED
        stats = await actor.stats.remote()
        assert stats["requests"] == len(TEXTS)
        assert stats["largest_batch"] > 1 and stats["batches"] < len(TEXTS)
        local = await actor.route.remote("call technician nguyen")
        strict = await actor.route.remote("call technician nguyen", "strict")
        assert (local["route"], strict["route"]) == ("local", "cloud")
        assert (await actor.predict.remote("")).reason == "empty transcript"
    finally:
        ray_session.kill(actor)


@pytest.mark.ray
async def test_serve_deployment_on_the_cluster_batches_through_its_handle(ray_session, settings) -> None:
    from ray import serve
    from ray.serve.config import HTTPOptions
    from ray.serve.schema import LoggingConfig

    from hotpath.deployments.intent import IntentDeployment

    serve.start(http_options=HTTPOptions(host=settings.serve.host, port=settings.serve.http_port),
                logging_config=LoggingConfig(enable_access_log=False))
    app = IntentDeployment.options(ray_actor_options={"num_cpus": 0}).bind(IntentSettings(batch_wait_ms=20))
    handle = serve.run(app, name="intent-test", route_prefix=None, blocking=False)
    try:
        results = await asyncio.gather(*(handle.predict.remote(t) for t in TEXTS))
        assert [r.intent for r in results] == EXPECTED
        stats = await handle.stats.remote()
        assert stats["requests"] == len(TEXTS) and stats["largest_batch"] > 1
    finally:
        serve.delete("intent-test")
