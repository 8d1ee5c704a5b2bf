"""Metrics: the plain sample functions (fast) and a metric showing up on Ray's metrics endpoint."""

from __future__ import annotations

import time
import urllib.request
import uuid

import pytest

from hotpath.observability.metrics import (
    METRICS,
    CounterState,
    check,
    cloud_samples,
    coview_samples,
    flatten,
    recs_samples,
    stt_samples,
    voice_samples,
)


def test_every_sample_function_names_defined_metrics_with_their_tags() -> None:
    samples = [
        *voice_samples("acme", {"devices": ["w-1", "w-2"], "counters": {"bad_payload": 3}},
                       {"w-1": {"counters": {"utterances": 2, "confirmations": 1}, "queued": 4, "retry_queue": 1,
                                "duplicates": 0, "skipped": 1, "stage_s": {"stt": 0.2}},
                        "w-2": {"error": "gone"}}),
        *stt_samples("acme", {"replicas": 4, "free": 3}),
        *coview_samples("job-1", {"offsets": {0: 90, 1: 100}, "checkpoints": 5, "recoveries": 1},
                        [{"sink_blocked_s": 1.5, "sink_pending": 2, "coview_lag_ms": [10, 250],
                          "counters": {"late": 2, "dlq": 1}}], {0: 100, 1: 100}, 12.0),
        *recs_samples({"hit_rates": {"cat:co_view": 0.97}, "fallbacks": {"no_semantic": 4},
                       "stale_masters": ["m1"]}),
        *cloud_samples({"tenants": {"acme": {"requests": {"ok": 9}, "p95_s": 0.8, "quota_refusals": 1}},
                        "queue": {"depth": 2}}),
    ]
    check(samples)
    got = {(n, tuple(sorted(t.items()))): v for n, v, t in samples}
    assert got[("hotpath_voice_active_devices", (("tenant", "acme"),))] == 2
    assert got[("hotpath_voice_stream_events", (("event", "utterances"), ("tenant", "acme")))] == 2
    assert got[("hotpath_voice_stt_replicas", (("state", "busy"), ("tenant", "acme")))] == 1
    assert got[("hotpath_coview_consumer_lag", (("job", "job-1"), ("partition", "0")))] == 10
    assert got[("hotpath_coview_lag_ms", (("job", "job-1"), ("sink", "coview")))] == 250
    assert got[("hotpath_coview_events", (("event", "dlq"), ("job", "job-1")))] == 1
    assert got[("hotpath_recs_cache_hit_ratio", (("family", "cat:co_view"),))] == 0.97
    assert got[("hotpath_cloud_stat", (("key", "queue.depth"),))] == 2
    assert all(name.startswith("hotpath_") for name in METRICS)


def test_counter_state_turns_cumulative_values_into_increments() -> None:
    c = CounterState()
    assert c.delta("x", {}, 5) == 5 and c.delta("x", {}, 7) == 2 and c.delta("x", {}, 7) == 0
    assert c.delta("x", {}, 3) == 3  # the source restarted: counting starts again from its value
    assert flatten({"a": {"b": 1, "c": [1, 5]}, "d": "text", "e": True}) == {"a.b": 1.0, "a.c.max": 5.0, "e": 1.0}


def _scrape(url: str) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as r:
        return r.read().decode()


@pytest.mark.ray
@pytest.mark.services
def test_exporter_metrics_appear_on_rays_metrics_endpoint(settings, ray_session) -> None:
    from hotpath.cluster.ray_head import RayService
    from hotpath.graphs.metrics_app import start_metrics

    ray = ray_session
    name = f"hotpath-metrics-test-{uuid.uuid4().hex[:6]}"
    exporter = start_metrics(settings, interval_s=1.0, name=name, detached=False)
    try:
        tag = uuid.uuid4().hex[:8]
        ray.get(exporter.record.remote([("hotpath_recs_cache_hit_ratio", 0.93, {"family": f"test-{tag}"}),
                                        ("hotpath_recs_degraded_answers", 4, {"reason": f"test-{tag}"})]))
        first = ray.get(exporter.snapshot.remote(), timeout=30)
        url = f"http://{settings.ray.host}:{RayService(settings).ports()['metrics_export_port']}/metrics"
        want = f'family="test-{tag}"'
        deadline = time.monotonic() + 60
        text = ""
        while time.monotonic() < deadline:
            text = _scrape(url)
            if want in text and "hotpath_app_up" in text and f'reason="test-{tag}"' in text:
                break
            time.sleep(2)
        line = next((ln for ln in text.splitlines() if want in ln and not ln.startswith("#")), "")
        assert "hotpath_recs_cache_hit_ratio" in line and line.rsplit(" ", 1)[1].startswith("0.93"), line
        assert "hotpath_app_up" in text  # the exporter's own polling round ran and was exported
        counter = next(ln for ln in text.splitlines() if f'reason="test-{tag}"' in ln and not ln.startswith("#"))
        assert counter.startswith("ray_hotpath_recs_degraded_answers_total{"), counter  # as the alert rules name it
        assert isinstance(first, dict)
    finally:
        ray.kill(exporter)


def _referenced(text: str) -> set[str]:
    import re

    return set(re.findall(r"ray_hotpath_[a-z_]+", text))


def test_alert_rules_and_dashboards_use_defined_metrics() -> None:
    import json
    from pathlib import Path

    import yaml

    deploy = Path(__file__).resolve().parents[2] / "deploy" / "observability"
    rules = yaml.safe_load((deploy / "alerts.yaml").read_text())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    for must in ("RecsRedisHitRateLow", "CoviewConsumerLagHigh", "CoviewBackpressure", "DruidQueryLatencyHigh",
                 "RecsStaleSemanticShare"):
        assert must in alerts and alerts[must]["expr"] and alerts[must]["labels"]["severity"]
    assert "< 0.95" in alerts["RecsRedisHitRateLow"]["expr"]
    texts = [(deploy / "alerts.yaml").read_text()]
    for f in sorted((deploy / "grafana").glob("*.json")):
        board = json.loads(f.read_text())
        assert board["uid"] and board["panels"] and all(p["targets"][0]["expr"] for p in board["panels"])
        texts.append(f.read_text())
    assert {f.stem for f in (deploy / "grafana").glob("*.json")} >= {"recs", "coview", "voice", "cloud"}
    for name in set().union(*map(_referenced, texts)):
        base = name.removeprefix("ray_")
        if base in METRICS:
            assert METRICS[base].kind == "gauge", f"{name}: a counter is exported with _total"
            continue
        assert base.endswith("_total") and METRICS[base.removesuffix("_total")].kind == "counter", name
