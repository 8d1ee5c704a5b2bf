"""The recommendation Serve application: ``app`` for ``serve run``, builders for code.

``build_recs_app(settings)`` binds :class:`~hotpath.deployments.recs.RecsIngress` with the
serving options that matter on this machine: ``max_ongoing_requests`` well above Serve's default of
5 (which collapses under concurrency), access logs off. ``start(settings, say)`` is the
``hotpath up`` starter: it generates and loads a small demo catalog when none is loaded, deploys the
app and returns example calls; ``start_recs(settings)`` returns the same as plain URLs.

Throughput: the proxy -> replica hop costs ~6 ms here and the proxy tops out near 300-700 req/s, so
the replicas serve HTTP themselves. ``make run`` (:func:`start`) deploys the app with a **shared
port** (:func:`shared_port`: ``recs.http_port``, by default ``serve.http_port + 12000``): every
replica binds it with ``SO_REUSEPORT`` and answers through a bare ASGI adapter on uvicorn (half the
CPU per request of Serve's own request path); that URL is printed, and it is what
``hotpath bench recs --target`` measures. Serve itself runs with ``RAY_SERVE_THROUGHPUT_OPTIMIZED=1``
(direct ingress: each replica also answers on its own Serve port, from ``serve.http_port + 12001``
up; user code on the replica's event loop; Serve's per-request log lines off); apps deployed without
a shared port (tests, the bench's baseline) print that address, or the proxy's where Serve was
started without direct ingress.
"""

from __future__ import annotations

from collections.abc import Callable

from ray.serve.config import HTTPOptions

from hotpath.config import Settings, load_settings
from hotpath.deployments.recs import RecsIngress

__all__ = ["app", "build_recs_app", "deploy_recs", "ensure_demo_catalog", "recs_base_url", "shared_port", "start",
           "start_recs"]


def serve_env(settings: Settings) -> dict[str, str]:
    """Environment of the Serve controller and the recs replicas: direct ingress on this stack's ports."""
    lo = settings.serve.http_port + 12_001  # + 12_000 is the shared port
    return {
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(lo),
        "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(lo + 900),
        "RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT": str(lo + 10_000),
        "RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT": str(lo + 10_900),
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "1",
    }


def shared_port(settings: Settings) -> int:
    """The port ``make run``'s recs replicas share (``recs.http_port``, else ``serve.http_port + 12000``)."""
    return settings.recs.http_port or settings.serve.http_port + 12_000


def build_recs_app(settings: Settings, *, local: bool = True, name: str = "RecsIngress", http_port: int = 0):
    """``http_port``: the port every replica serves on itself (0: Serve's ports only)."""
    from ray.serve.schema import LoggingConfig

    s = settings.recs
    return RecsIngress.options(
        name=name,
        num_replicas=s.replicas,
        max_ongoing_requests=s.max_ongoing_requests,
        max_queued_requests=-1,
        logging_config=LoggingConfig(enable_access_log=False, log_level="WARNING"),
        ray_actor_options={"num_cpus": 0, "runtime_env": {"env_vars": serve_env(settings)}},
    ).bind(settings, local, http_port)


def deploy_recs(settings: Settings, *, local: bool = True, name: str | None = None, route_prefix: str | None = None,
                http_port: int = 0):  # fmt: skip
    """Deploy (or update) the app on the connected Ray cluster; returns its handle. ``http_port``:
    the port its replicas share (:func:`shared_port`; 0: Serve's ports only)."""
    from ray import serve
    from ray.serve.schema import LoggingConfig

    serve.start(
        http_options=HTTPOptions(host=settings.serve.host, port=settings.serve.http_port),
        logging_config=LoggingConfig(enable_access_log=False),
        controller_options={"runtime_env": {"env_vars": serve_env(settings)}},
    )
    return serve.run(
        build_recs_app(settings, local=local, http_port=http_port),
        name=name or settings.recs.app_name,
        route_prefix=route_prefix or settings.recs.route_prefix,
        blocking=False,
    )


def recs_base_url(settings: Settings, *, app_name: str | None = None, route_prefix: str | None = None,
                  http_port: int = 0) -> str:  # fmt: skip
    """Where the app answers: its shared port when it has one, else the replica's direct-ingress port
    when that mode is on, else the proxy."""
    prefix = route_prefix or settings.recs.route_prefix
    if http_port:
        return f"http://{settings.serve.host}:{http_port}{prefix}"
    try:
        from ray.serve.context import _get_global_client

        client = _get_global_client()
        import ray

        groups = ray.get(client._controller.get_target_groups.remote(app_name or settings.recs.app_name))
        for g in groups:
            if str(getattr(g.protocol, "value", g.protocol)).upper() == "HTTP" and g.targets:
                t = g.targets[0]
                return f"http://{settings.serve.host}:{t.port}{prefix}"
    except Exception:  # older Serve, not connected: the proxy
        pass
    return f"http://{settings.serve.host}:{settings.serve.http_port}{prefix}"


def recs_roots(settings: Settings, *, app_name: str | None = None) -> list[str]:
    """``http://host:port`` of every ingress replica (direct ingress), else of the proxy."""
    try:
        import ray
        from ray.serve.context import _get_global_client

        client = _get_global_client()
        groups = ray.get(client._controller.get_target_groups.remote(app_name or settings.recs.app_name))
        roots = [
            f"http://{settings.serve.host}:{t.port}"
            for g in groups
            if str(getattr(g.protocol, "value", g.protocol)).upper() == "HTTP"
            for t in g.targets
        ]
        if roots:
            return roots
    except Exception:
        pass
    return [f"http://{settings.serve.host}:{settings.serve.http_port}"]


def ensure_demo_catalog(settings: Settings, say: Callable[[str], None] = print) -> dict | None:
    """Generate and load the default (small) catalog unless its keys are already in Redis."""
    from hotpath.recs.catalog import generate, master_uuid
    from hotpath.recs.model import ALL_CATEGORIES, Keys
    from hotpath.recs.loader import load_catalog
    from hotpath.stores.factory import open_dimension_store, open_hot_cache
    from hotpath.stores.redis_fast import bulk_writer
    from hotpath.stores.rollups import open_rollup_store

    cache = open_hot_cache(settings)
    keys = Keys(settings.recs.key_prefix)
    try:
        if cache.ztop(keys.bestsellers(ALL_CATEGORIES), 1) and cache.hgetall(keys.meta(master_uuid(0))):
            return None
        say(f"  recs: generating a demo catalog ({settings.recs.catalog.masters} masters)")
        cat = generate(settings.recs.catalog)
        store = open_dimension_store(settings)
        rollups = open_rollup_store(settings)
        try:
            rep = load_catalog(cat, settings.recs, cache, bulk_writer(cache), store, rollups)
        finally:
            store.close()
            rollups.close()
        say(f"  recs: loaded {rep.masters} masters / {rep.pids} pids in {rep.to_json()['total_s']} s")
        return rep.to_json()
    finally:
        cache.close()


def start_recs(settings: Settings) -> list[str]:
    """Load a demo catalog if needed, deploy the app, return example URLs."""
    from hotpath.recs.catalog import master_uuid

    ensure_demo_catalog(settings, say=lambda _: None)
    port = shared_port(settings)
    deploy_recs(settings, http_port=port)
    base = recs_base_url(settings, http_port=port)
    return [
        f"{base}/related?user_id=u1&master_id={master_uuid(3)}&widget=pdp_related&k=20",
        f"{base}/related?user_id=u7&k=10",
        f"{base}/related?master_id={master_uuid(42)}&widget=sponsored&k=5",
        f"{base}/bestsellers?category_id=d00.s00.l00&user_id=u1&k=10",
        f"{base}/metrics",
    ]


def start(settings: Settings, say: Callable[[str], None]):
    """The ``hotpath up`` starter (see :mod:`hotpath.cluster.apps`)."""
    from hotpath.cluster.apps import Endpoint
    from hotpath.cluster.connect import connect_ray

    connect_ray(settings)
    ensure_demo_catalog(settings, say)
    return [Endpoint("recs", "HTTP", url) for url in start_recs(settings)]


_settings = load_settings()
app = build_recs_app(_settings, http_port=shared_port(_settings))
"""``serve run hotpath.graphs.recs_app:app`` (settings from ``HOTPATH_*`` / ``HOTPATH_CONFIG``)."""
