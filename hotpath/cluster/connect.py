"""Connecting a driver to the local Ray cluster that `hotpath services up` started."""

from __future__ import annotations

import os
from typing import Any

from hotpath.config import Settings
from hotpath.errors import ServiceError

__all__ = ["connect_ray"]


def connect_ray(settings: Settings, *, namespace: str | None = None) -> Any:
    """Join the running cluster at ``settings.ray.address`` (never start a private one); returns ``ray``.

    Ray resolves 127.0.0.1 to the machine's external address unless told it is not a cluster, and
    the driver's auth mode must match the head's, so both are set (as the head has them) before ray
    is first imported.
    """
    from hotpath.cluster.ray_head import RAY_ENV
    from hotpath.cluster.ray_patches import HOOK

    for key in ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_USAGE_STATS_ENABLED", "RAY_AUTH_MODE"):
        os.environ.setdefault(key, RAY_ENV[key])
    import ray

    if not ray.is_initialized():
        try:
            ray.init(
                address=settings.ray.address,
                namespace=namespace or settings.ray.namespace,
                log_to_driver=False,
                _node_ip_address=settings.ray.host,
                runtime_env={"worker_process_setup_hook": HOOK},
            )
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, TimeoutError...
            raise ServiceError(
                f"cannot reach the Ray cluster at {settings.ray.address}: {exc}",
                hint="start it with `hotpath services up`",
            ) from exc
    return ray
