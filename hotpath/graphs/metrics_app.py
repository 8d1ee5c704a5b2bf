"""The metrics exporter app: one detached actor polling every app (``hotpath up`` starts it last)."""

from __future__ import annotations

from typing import Callable

from hotpath.cluster.connect import connect_ray
from hotpath.config import Settings

__all__ = ["start_metrics", "start", "exporter_actors"]


def exporter_actors(settings: Settings) -> dict[str, str]:
    """The names the apps' starters give their actors, by role (what the exporter polls)."""
    from hotpath.actors.coview_shard import driver_actor_name
    from hotpath.graphs.voice_edge_app import INGRESS_ACTOR, STT_ACTOR

    return {"voice_ingress": INGRESS_ACTOR, "voice_stt": STT_ACTOR,
            "coview_driver": driver_actor_name(settings.streaming.job_id)}


def start_metrics(settings: Settings, *, interval_s: float = 5.0, name: str | None = None, detached: bool = True):
    ray = connect_ray(settings)
    from hotpath.actors.metrics_exporter import EXPORTER_ACTOR, MetricsExporter

    actors = exporter_actors(settings)
    life = {"lifetime": "detached"} if detached else {}
    handle = ray.remote(MetricsExporter).options(
        name=name or EXPORTER_ACTOR, get_if_exists=True, num_cpus=0, max_restarts=-1, **life
    ).remote(settings, interval_s, None, actors)
    ray.get(handle.start.remote(), timeout=60)
    return handle


def start(settings: Settings, say: Callable[[str], None]) -> list:
    from hotpath.cluster.apps import Endpoint
    from hotpath.cluster.ray_head import RayService

    start_metrics(settings)
    where = f"http://{settings.ray.host}:{RayService(settings).ports()['metrics_export_port']}/metrics"
    say(f"metrics: {where}")
    return [Endpoint("metrics", "Prometheus", where)]
