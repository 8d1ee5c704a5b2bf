"""The streaming co-view job on Ray, and its ``hotpath up`` starter.

- :func:`start_coview_job` — the job on the running Ray cluster (a detached driver actor and its
  shard actors, :mod:`hotpath.actors.coview_shard`); returns a :class:`CoviewJobHandle`.
- :func:`start` — the ``hotpath up`` app starter: the job plus a generator feeding it.

The same job in-process (tests, no Ray) is :class:`hotpath.coview.job.LocalJob`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hotpath.cluster.connect import connect_ray
from hotpath.config import Settings

__all__ = ["CoviewJobHandle", "start_coview_job", "start"]


@dataclass
class CoviewJobHandle:
    """The running job on Ray: its driver actor and a description for ``hotpath up``."""

    driver: Any
    settings: Settings

    def describe(self) -> dict[str, Any]:
        s = self.settings.streaming
        return {
            "job": s.job_id,
            "topic": s.topic,
            "shards": s.shards,
            "placement": s.placement if s.placement_resource is None else f"{s.placement} ({s.placement_resource})",
            "window": f"{s.window_kind} {s.window_s:g}s/{s.slide_s:g}s" if s.window_kind == "sliding"
            else f"session gap {s.session_gap_s:g}s",
            "redis_keys": [f"{s.key_prefix}cat:co_view:{{cat}}", f"{s.key_prefix}user:recent_cats:{{uid}}"],
            "checkpoints": str(self.settings.runtime_dir / "coview" / s.job_id),
        }

    def status(self) -> dict[str, Any]:
        import ray

        return ray.get(self.driver.status.remote())

    def stats(self) -> list[dict[str, Any]]:
        import ray

        return ray.get(self.driver.stats.remote())

    def shard_nodes(self) -> list[dict[str, Any]]:
        """Where each shard runs now: ``{"node_id", "ip", "pid"}`` per shard."""
        import ray

        return ray.get(self.driver.shard_nodes.remote())

    def stop(self, *, kill: bool = True) -> dict[str, Any]:
        """Final checkpoint, then (with ``kill``) the shards and the driver go."""
        import ray

        st = ray.get(self.driver.stop.remote())
        if kill:
            ray.get(self.driver.shutdown_shards.remote())
            ray.kill(self.driver, no_restart=True)
        return st


def _ensure_ray(settings: Settings) -> None:
    connect_ray(settings)


def start_coview_job(settings: Settings) -> CoviewJobHandle:
    """Start (or attach to) the co-view job on the Ray cluster; resumes from its last checkpoint."""
    import ray

    from hotpath.actors.coview_shard import CoviewDriver, driver_actor_name

    _ensure_ray(settings)
    opts: dict[str, Any] = {}
    if settings.streaming.placement == "spread":
        # shards spread over the nodes; the driver runs here, beside the caller (a soft pin is not
        # kept for actors without resources; it is not restarted anyway: max_restarts=0)
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        opts["scheduling_strategy"] = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    deadline = time.monotonic() + 30.0
    while True:
        driver = CoviewDriver.options(
            name=driver_actor_name(settings.streaming.job_id), get_if_exists=True, lifetime="detached", **opts
        ).remote(settings)
        try:
            ray.get(driver.start.remote())
            return CoviewJobHandle(driver, settings)
        except ray.exceptions.RayActorError:
            # a driver killed a moment ago may still hold the name: wait for Ray to let it go
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def start(settings: Settings, say: Callable[[str], None]) -> list:
    """``hotpath up`` app starter: the co-view job fed by a generator (event time 60x wall time)."""
    from hotpath.actors.coview_shard import EventFeeder
    from hotpath.cluster.apps import Endpoint

    handle = start_coview_job(settings)
    import ray

    feeder = EventFeeder.options(
        name=f"{settings.streaming.job_id}-feeder", get_if_exists=True, lifetime="detached"
    ).remote(settings)
    feeder.run.remote()
    d = handle.describe()
    say(f"  co-view job {d['job']}: {d['shards']} shards on topic {d['topic']}, {d['window']}")
    trends = ray.get(feeder.trends.remote(), timeout=60)
    leaf, partner = next(iter(trends.items()))
    say(
        f"  co-view demo: generated sessions pair {len(trends)} trending categories with a new partner "
        f"every minute (now {leaf} -> {partner}); within ~30 s the first related example below (a "
        f"master of {leaf}) lists the partner's best sellers under the co_view signal, and the "
        f"best-sellers example puts one in its first three; a minute later, the next partner's"
    )
    return [
        Endpoint("coview", "Redis keys", ", ".join(d["redis_keys"])),
        Endpoint("coview", "event topic", d["topic"]),
    ]
