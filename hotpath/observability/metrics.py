"""Every hotpath metric exported through Ray (``ray.util.metrics``), defined in one place.

Ray's metrics agent on each node serves them in Prometheus text on the node's metrics export port, with
Ray's ``ray_`` prefix (``hotpath_voice_active_devices`` is scraped as ``ray_hotpath_voice_active_devices``).
The values come from the counters the domain objects already keep (their ``stats()``): the exporter actor
(:mod:`hotpath.actors.metrics_exporter`) polls each app and turns its stats into samples with the plain
functions below, so the apps carry no metric code of their own. docs/metrics.md lists the names.

A sample is ``(name, value, tags)``; a ``counter`` is exported from a cumulative value (the exporter adds
the increase since its last poll, and starts again from the value when the source restarted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

__all__ = ["MetricDef", "METRICS", "Sample", "flatten", "voice_samples", "stt_samples", "coview_samples",
           "recs_samples", "cloud_samples", "CounterState", "serve_request_totals"]


@dataclass(frozen=True, slots=True)
class MetricDef:
    name: str
    kind: str  # gauge | counter
    description: str
    tags: tuple[str, ...] = ()


Sample = tuple[str, float, dict[str, str]]

_DEFS = [
    # exporter
    MetricDef("hotpath_app_up", "gauge", "1 when the app answered the exporter's last poll, else 0", ("app",)),
    # voice edge
    MetricDef("hotpath_voice_active_devices", "gauge", "devices with a live stream actor", ("tenant",)),
    MetricDef("hotpath_voice_ingress_events", "counter",
              "ingress counters by name (bad_payload, flood_dropped, mqtt_reconnects, ...)", ("tenant", "event")),
    MetricDef("hotpath_voice_stream_events", "counter",
              "per-device pipeline counters summed over devices (utterances, commands, confirmations, "
              "rejections, false-action guard, stt_failed, cloud_*, ...)", ("tenant", "event")),
    MetricDef("hotpath_voice_stream_queued", "gauge", "audio chunks queued in a device's stream", ("tenant", "device")),
    MetricDef("hotpath_voice_retry_queue", "gauge", "cloud queries waiting for a retry, all devices", ("tenant",)),
    MetricDef("hotpath_voice_stt_replicas", "gauge", "STT engine replicas by state (free, busy)", ("tenant", "state")),
    MetricDef("hotpath_voice_stage_seconds", "gauge", "latest per-stage latency a stream reports (stage tag)",
              ("tenant", "stage")),
    # co-view job
    MetricDef("hotpath_coview_consumer_lag", "gauge", "events in the log not yet consumed, per partition",
              ("job", "partition")),
    MetricDef("hotpath_coview_checkpoint_age_seconds", "gauge",
              "seconds since the job's checkpoint count last grew (as seen by the exporter)", ("job",)),
    MetricDef("hotpath_coview_checkpoints", "counter", "checkpoints committed", ("job",)),
    MetricDef("hotpath_coview_recoveries", "counter", "restores of every shard after a shard failure", ("job",)),
    MetricDef("hotpath_coview_backpressure_seconds", "counter",
              "time shards' steps waited on a full sink (backpressure), all shards", ("job",)),
    MetricDef("hotpath_coview_sink_pending", "gauge", "sink writes waiting, all shards", ("job",)),
    MetricDef("hotpath_coview_lag_ms", "gauge", "event time to visible in Redis, max over shards' recent window",
              ("job", "sink")),
    MetricDef("hotpath_coview_events", "counter", "shard counters summed (late, dlq, events, ...)", ("job", "event")),
    # recommendations
    MetricDef("hotpath_recs_cache_hit_ratio", "gauge", "Redis/local hit ratio per key family (one replica's view)",
              ("family",)),
    MetricDef("hotpath_recs_degraded_answers", "counter", "answers given by a fallback rule", ("reason",)),
    MetricDef("hotpath_recs_stale_masters", "gauge", "distinct masters served with old semantic inference", ()),
    MetricDef("hotpath_recs_stale_semantic_share", "gauge",
              "stale-master serves / all semantic lookups (one replica's view)", ()),
    MetricDef("hotpath_druid_query_seconds", "gauge",
              "best-seller rollup queries (Druid | DuckDB) latest p50/p95, as the recs replica reports them",
              ("quantile",)),
    # cloud assistant
    MetricDef("hotpath_cloud_requests", "counter", "cloud queries per tenant and outcome", ("tenant", "outcome")),
    MetricDef("hotpath_cloud_latency_seconds", "gauge", "latest p50/p95 of cloud queries", ("tenant", "quantile")),
    MetricDef("hotpath_cloud_quota_refusals", "counter", "queries refused by the tenant's quota", ("tenant",)),
    MetricDef("hotpath_cloud_stat", "gauge", "any other numeric stat the cloud app reports", ("key",)),
]
METRICS: dict[str, MetricDef] = {d.name: d for d in _DEFS}


def flatten(d: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a nested stats dict, keyed ``a.b.c`` (lists of numbers give ``.max``)."""
    out: dict[str, float] = {}
    if isinstance(d, bool):
        return {prefix: float(d)} if prefix else {}
    if isinstance(d, (int, float)):
        return {prefix: float(d)} if prefix else {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(d, (list, tuple)) and d and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in d):
        out[f"{prefix}.max"] = float(max(d))
    return out


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def voice_samples(tenant: str, ingress: dict, devices: dict[str, dict] | None = None) -> list[Sample]:
    t = {"tenant": tenant}
    out: list[Sample] = [("hotpath_voice_active_devices", float(len(ingress.get("devices", []))), t)]
    for k, v in (ingress.get("counters") or {}).items():
        out.append(("hotpath_voice_ingress_events", float(v), {**t, "event": str(k)}))
    summed: dict[str, float] = {}
    retry = 0.0
    for dev, st in (devices or {}).items():
        if not isinstance(st, dict) or "error" in st:
            continue
        for k, v in (st.get("counters") or {}).items():
            if _num(v) is not None:
                summed[k] = summed.get(k, 0.0) + float(v)
        for k in ("duplicates", "skipped"):
            if _num(st.get(k)) is not None:
                summed[k] = summed.get(k, 0.0) + float(st[k])
        out.append(("hotpath_voice_stream_queued", float(st.get("queued", 0)), {**t, "device": dev}))
        retry += float(st.get("retry_queue", 0) or 0)
        for stage, secs in (st.get("stage_s") or st.get("latency_s") or {}).items():
            if _num(secs) is not None:
                out.append(("hotpath_voice_stage_seconds", float(secs), {**t, "stage": str(stage)}))
    out += [("hotpath_voice_stream_events", v, {**t, "event": k}) for k, v in sorted(summed.items())]
    out.append(("hotpath_voice_retry_queue", retry, t))
    return out


def stt_samples(tenant: str, stats: dict) -> list[Sample]:
    t = {"tenant": tenant}
    total = _num(stats.get("replicas"))
    free = _num(stats.get("free"))
    busy = _num(stats.get("busy"))
    if busy is None and total is not None and free is not None:
        busy = total - free
    out: list[Sample] = []
    if free is not None:
        out.append(("hotpath_voice_stt_replicas", free, {**t, "state": "free"}))
    if busy is not None:
        out.append(("hotpath_voice_stt_replicas", busy, {**t, "state": "busy"}))
    return out


def coview_samples(job: str, status: dict, shards: list[dict], end_offsets: dict[int, int],
                   checkpoint_age_s: float | None) -> list[Sample]:
    j = {"job": job}
    out: list[Sample] = []
    for p, end in sorted(end_offsets.items()):
        done = (status.get("offsets") or {}).get(p, (status.get("offsets") or {}).get(str(p), 0))
        out.append(("hotpath_coview_consumer_lag", float(max(0, end - int(done or 0))), {**j, "partition": str(p)}))
    if checkpoint_age_s is not None:
        out.append(("hotpath_coview_checkpoint_age_seconds", float(checkpoint_age_s), j))
    for key, name in (("checkpoints", "hotpath_coview_checkpoints"), ("recoveries", "hotpath_coview_recoveries")):
        if _num(status.get(key)) is not None:
            out.append((name, float(status[key]), j))
    blocked = pending = 0.0
    lag: dict[str, float] = {}
    events: dict[str, float] = {}
    for sh in shards:
        blocked += float(sh.get("sink_blocked_s", 0) or 0)
        pending += float(sh.get("sink_pending", 0) or 0)
        for sink in ("coview_lag_ms", "recent_lag_ms"):
            vals = [v for v in sh.get(sink, []) if _num(v) is not None]
            if vals:
                lag[sink] = max(lag.get(sink, 0.0), float(max(vals)))
        for k, v in flatten(sh.get("counters") or {}).items():
            events[k] = events.get(k, 0.0) + v
    out += [("hotpath_coview_backpressure_seconds", blocked, j), ("hotpath_coview_sink_pending", pending, j)]
    out += [("hotpath_coview_lag_ms", v, {**j, "sink": k.removesuffix("_lag_ms")}) for k, v in sorted(lag.items())]
    out += [("hotpath_coview_events", v, {**j, "event": k}) for k, v in sorted(events.items())]
    return out


def recs_samples(stats: dict) -> list[Sample]:
    out: list[Sample] = []
    for fam, ratio in (stats.get("hit_rates") or {}).items():
        if _num(ratio) is not None:
            out.append(("hotpath_recs_cache_hit_ratio", float(ratio), {"family": str(fam)}))
    for reason, n in (stats.get("fallbacks") or {}).items():
        if _num(n) is not None:
            out.append(("hotpath_recs_degraded_answers", float(n), {"reason": str(reason)}))
    out.append(("hotpath_recs_stale_masters", float(len(stats.get("stale_masters") or [])), {}))
    rollup = stats.get("druid") or stats.get("rollups") or {}
    for q in ("p50_s", "p95_s"):
        if isinstance(rollup, dict) and _num(rollup.get(q)) is not None:
            out.append(("hotpath_druid_query_seconds", float(rollup[q]), {"quantile": q[:-2]}))
    if _num(stats.get("stale_semantic_share")) is not None:
        out.append(("hotpath_recs_stale_semantic_share", float(stats["stale_semantic_share"]), {}))
    return out


def cloud_samples(stats: dict) -> list[Sample]:
    """The cloud app's stats: ``tenants: {t: {requests: {outcome: n}, p50_s, p95_s, quota_refusals}}``;
    any other numeric leaf goes to ``hotpath_cloud_stat{key}``."""
    out: list[Sample] = []
    for tenant, st in (stats.get("tenants") or {}).items():
        t = {"tenant": str(tenant)}
        for outcome, n in (st.get("requests") or {}).items():
            out.append(("hotpath_cloud_requests", float(n), {**t, "outcome": str(outcome)}))
        for q in ("p50_s", "p95_s"):
            if _num(st.get(q)) is not None:
                out.append(("hotpath_cloud_latency_seconds", float(st[q]), {**t, "quantile": q[:-2]}))
        if _num(st.get("quota_refusals")) is not None:
            out.append(("hotpath_cloud_quota_refusals", float(st["quota_refusals"]), t))
    rest = {k: v for k, v in stats.items() if k != "tenants"}
    out += [("hotpath_cloud_stat", v, {"key": k}) for k, v in sorted(flatten(rest).items())]
    return out


def serve_request_totals(exposition: str, metric: str = "ray_serve_num_http_requests_total") -> dict[str, float]:
    """Serve's HTTP request counter summed per route, from Prometheus text."""
    import re

    out: dict[str, float] = {}
    for line in exposition.splitlines():
        if not line.startswith(metric + "{"):
            continue
        m = re.search(r'route="([^"]*)"', line)
        route = m.group(1) if m else "?"
        try:
            out[route] = out.get(route, 0.0) + float(line.rsplit(" ", 1)[1])
        except ValueError:
            continue
    return out


class CounterState:
    """Turns cumulative values into increments (a source that restarted starts again from its value)."""

    def __init__(self) -> None:
        self.last: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def delta(self, name: str, tags: dict[str, str], value: float) -> float:
        key = (name, tuple(sorted(tags.items())))
        prev = self.last.get(key)
        self.last[key] = value
        if prev is None or value < prev:  # first sight, or the source restarted
            return value
        return value - prev


def check(samples: Iterable[Sample]) -> None:
    """Every sample names a defined metric with exactly its tags (tests call this)."""
    for name, _, tags in samples:
        d = METRICS[name]
        if set(tags) != set(d.tags):
            raise ValueError(f"{name}: tags {sorted(tags)} != {sorted(d.tags)}")
