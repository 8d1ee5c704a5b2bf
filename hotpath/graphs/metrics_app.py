"""The metrics exporter app: one detached actor polling every app (``hotpath up`` starts it last)."""

from __future__ import annotations

from typing import Callable

from hotpath.cluster.connect import connect_ray
from hotpath.config import Settings

__all__ = ["start_metrics", "start"]


def start_metrics(settings: Settings, *, interval_s: float = 5.0, name: str | None = None, detached: bool = True):
    ray = connect_ray(settings)
    from hotpath.actors.metrics_exporter import EXPORTER_ACTOR, MetricsExporter

    life = {"lifetime": "detached"} if detached else {}
    handle = ray.remote(MetricsExporter).options(
        name=name or EXPORTER_ACTOR, get_if_exists=True, num_cpus=0, max_restarts=-1, **life
    ).remote(settings, interval_s)
    ray.get(handle.start.remote(), timeout=60)
    return handle


def start(settings: Settings, say: Callable[[str], None]) -> list:
    from hotpath.cluster.apps import Endpoint
    from hotpath.cluster.ray_head import RayService

    start_metrics(settings)
    where = f"http://{settings.ray.host}:{RayService(settings).ports()['metrics_export_port']}/metrics"
    say(f"metrics: {where}")
    return [Endpoint("metrics", "Prometheus", where)]
