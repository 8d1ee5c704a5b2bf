"""The metrics exporter: one actor that polls every app's ``stats()`` and records hotpath's metrics.

The apps keep their own counters (plain domain objects); this shell asks them every ``interval_s`` and
records the samples :mod:`hotpath.observability.metrics` makes of them with ``ray.util.metrics``, which
Ray's metrics agent serves in Prometheus text on the node's metrics export port. An app that is not
deployed or does not answer is skipped for that round (``hotpath_app_up{app} 0``); a failing round is
logged and the loop goes on. It holds no state worth saving: a restarted exporter starts over.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from hotpath.config import Settings
from hotpath.observability.metrics import (
    METRICS,
    CounterState,
    Sample,
    cloud_samples,
    coview_samples,
    recs_samples,
    stt_samples,
    voice_samples,
)

__all__ = ["MetricsExporter", "RaySink", "EXPORTER_ACTOR"]

log = logging.getLogger(__name__)
EXPORTER_ACTOR = "hotpath-metrics"
DEFAULT_ACTORS = {"voice_ingress": "voice-ingress", "voice_stt": "voice-stt", "coview_driver": ""}


class RaySink:
    """``ray.util.metrics`` objects, made on first use; counters get the increase of cumulative values."""

    def __init__(self) -> None:
        self._made: dict[str, Any] = {}
        self._counters = CounterState()

    def record(self, samples: list[Sample]) -> int:
        from ray.util import metrics as rm

        for name, value, tags in samples:
            d = METRICS[name]
            m = self._made.get(name)
            if m is None:
                cls = rm.Counter if d.kind == "counter" else rm.Gauge
                m = self._made[name] = cls(name, description=d.description, tag_keys=d.tags)
            if d.kind == "counter":
                inc = self._counters.delta(name, tags, value)
                if inc > 0:
                    m.inc(inc, tags=tags or None)
            else:
                m.set(value, tags=tags or None)
        return len(samples)


class MetricsExporter:
    """Ray actor shell (``num_cpus=0``): see the module docstring."""

    def __init__(self, settings: Settings, interval_s: float = 5.0, metrics_url: str | None = None,
                 actors: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.actors = {**DEFAULT_ACTORS, **(actors or {})}
        """role -> actor name (``voice_ingress``, ``voice_stt``, ``coview_driver``): the graph starter's names."""
        self.metrics_url = metrics_url  # Ray's metrics endpoint on this node (request rates); None: the local head's
        self._requests: tuple[float, dict[str, float]] | None = None
        self.interval_s = interval_s
        self.sink = RaySink()
        self._task: asyncio.Task | None = None
        self._ckpt: tuple[float, float] | None = None  # (count, when it last grew)
        self._log = None
        self.rounds = 0
        self.last: dict[str, Any] = {}

    async def start(self) -> int:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())
        return self.rounds

    async def _loop(self) -> None:
        while True:
            try:
                await self.poll()
            except Exception:
                log.exception("metrics round failed")
            await asyncio.sleep(self.interval_s)

    async def _actor(self, name: str, method: str, *args: Any, timeout: float = 5.0) -> Any:
        import ray

        try:
            handle = ray.get_actor(name)
        except ValueError:
            return None
        try:
            return await asyncio.wait_for(getattr(handle, method).remote(*args), timeout)
        except Exception as exc:  # noqa: BLE001 - an app that does not answer is skipped
            log.debug("%s.%s failed: %s", name, method, exc)
            return None

    async def poll(self) -> dict[str, Any]:
        """One round over every app; returns what each answered (also kept for ``snapshot``)."""
        s = self.settings
        ingress_actor, stt_actor = self.actors["voice_ingress"], self.actors["voice_stt"]
        driver = self.actors["coview_driver"] or f"{s.streaming.job_id}-driver"
        tenant = s.voice.tenant_id
        samples: list[Sample] = []
        up: dict[str, float] = {}
        found: dict[str, Any] = {}

        ingress = await self._actor(ingress_actor, "stats")
        up["voice"] = float(ingress is not None)
        if ingress is not None:
            devices = await self._actor(ingress_actor, "device_stats", timeout=10.0) or {}
            samples += voice_samples(tenant, ingress, devices)
            found["voice"] = {"devices": len(ingress.get("devices", [])), "active_devices": list(ingress.get("devices", [])),
                              "counters": ingress.get("counters", {})}
        stt = await self._actor(stt_actor, "health")
        if stt is not None:
            samples += stt_samples(tenant, stt)
            found["stt"] = stt

        job = s.streaming.job_id
        status = await self._actor(driver, "status")
        up["coview"] = float(status is not None)
        if status is not None:
            shards = await self._actor(driver, "stats", timeout=10.0) or []
            ends = await self._end_offsets(status)
            count = float(status.get("checkpoints") or 0)
            now = time.time()
            if self._ckpt is None or count > self._ckpt[0]:
                self._ckpt = (count, now)
            age = now - self._ckpt[1]
            samples += coview_samples(job, status, shards, ends, age)
            found["coview"] = {"running": status.get("running"), "checkpoints": count, "checkpoint_age_s": age,
                               "lag": sum(max(0, e - int((status.get("offsets") or {}).get(p, 0) or 0))
                                          for p, e in ends.items())}

        recs = await self._serve_stats(s.recs.app_name, "RecsIngress")
        up["recs"] = float(recs is not None)
        if recs is not None:
            samples += recs_samples(recs)
            found["recs"] = {"hit_rates": recs.get("hit_rates", {})}
        cloud = await self._serve_stats("cloud", None)
        up["cloud"] = float(cloud is not None)
        if cloud is not None:
            samples += cloud_samples(cloud)
            found["cloud"] = cloud

        samples += [("hotpath_app_up", v, {"app": a}) for a, v in up.items()]
        self.sink.record(samples)
        self.rounds += 1
        self.last = {"at": time.time(), "up": up, "apps": found, "samples": len(samples),
                     "request_rates": await asyncio.to_thread(self._request_rates)}
        return self.last

    def _request_rates(self) -> dict[str, float]:
        """Requests per second per Serve route, from Serve's own counter on Ray's metrics endpoint."""
        import urllib.request

        from hotpath.observability.metrics import serve_request_totals

        url = self.metrics_url
        if url is None:
            from hotpath.cluster.ray_head import RayService

            url = f"http://{self.settings.ray.host}:{RayService(self.settings).ports()['metrics_export_port']}/metrics"
        try:
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(url, timeout=3) as r:
                totals = serve_request_totals(r.read().decode())
        except Exception:  # noqa: BLE001 - no rates this round
            return {}
        now = time.monotonic()
        prev, self._requests = self._requests, (now, totals)
        if prev is None or now <= prev[0]:
            return {}
        dt = now - prev[0]
        return {route: round(max(0.0, n - prev[1].get(route, 0.0)) / dt, 2) for route, n in sorted(totals.items())}

    async def _end_offsets(self, status: dict) -> dict[int, int]:
        try:
            if self._log is None:
                from hotpath.streams.factory import open_event_log

                self._log = open_event_log(self.settings)
            topic = status.get("topic") or self.settings.streaming.topic
            parts = status.get("partitions") or []
            parts = range(parts) if isinstance(parts, int) else parts
            return {int(p): int(await self._log.end_offset(topic, int(p))) for p in parts}
        except Exception as exc:  # noqa: BLE001 - lag is skipped this round
            log.debug("end offsets failed: %s", exc)
            return {}

    async def _serve_stats(self, app: str, deployment: str | None) -> dict | None:
        try:
            from ray import serve

            handle = serve.get_app_handle(app) if deployment is None else serve.get_deployment_handle(deployment, app)
            return await asyncio.wait_for(handle.stats.remote(), 5.0)
        except Exception as exc:  # noqa: BLE001 - not deployed, or no stats method
            log.debug("serve app %s stats failed: %s", app, exc)
            return None

    async def snapshot(self) -> dict[str, Any]:
        return self.last

    async def record(self, samples: list) -> int:
        """Record given samples (tests, and apps that push instead of being polled)."""
        return self.sink.record([(n, float(v), dict(t)) for n, v, t in samples])
