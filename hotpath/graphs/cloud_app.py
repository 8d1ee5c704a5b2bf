"""The cloud assistant application: ``configure`` wires the edge to it, ``start`` deploys it.

``configure(settings, profile)`` runs before any app starts (see :mod:`hotpath.cluster.apps`): it
pins the vector store to the profile's (pgvector on ``full``, the file store otherwise) and, when the
edge has no cloud endpoint configured (``voice.cloud.endpoint`` unset), provisions the demo tenant
(``cloud.demo_tenant``, the edge's ``voice.tenant_id``) with an edge key kept in
``<runtime>/data/cloud/edge-<tenant>.key`` (0600), and points ``voice.cloud`` at this app with that
key. ``start(settings, say)`` ingests the demo documents that are missing, starts the local llama.cpp
server when it is installed, and deploys the Serve app at ``cloud.route_prefix``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from hotpath.config import Settings, load_settings, repo_root

__all__ = ["configure", "start", "deploy_cloud", "query_url", "ensure_demo_tenant", "demo_docs_dir"]


def query_url(settings: Settings) -> str:
    return f"http://{settings.serve.host}:{settings.serve.http_port}{settings.cloud.route_prefix.rstrip('/')}/query"


def demo_docs_dir(settings: Settings) -> Path:
    return settings.cloud.demo_documents or repo_root() / "data" / "cloud" / "docs"


def ensure_demo_tenant(settings: Settings) -> str:
    """The demo tenant exists and has a live edge key; returns that key (created once, kept 0600)."""
    from hotpath.stores.vectors_factory import open_tenancy

    tenant = settings.voice.tenant_id
    tenancy = open_tenancy(settings)
    path = settings.runtime_dir / "data" / "cloud" / f"edge-{tenant}.key"
    if tenancy.registry.get_tenant(tenant) is None:
        key = tenancy.add_tenant(tenant, "Demo site (Riverside)", label="edge").key
    else:
        key = path.read_text().strip() if path.exists() else ""
        record = tenancy.registry.find_key(tenancy.hasher.digest(key)) if key else None
        if record is None or not record.active(tenancy.clock()) or record.tenant_id != tenant:
            key = tenancy.issue(tenant, label="edge").key
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


def configure(settings: Settings, profile: str) -> Settings:
    from hotpath.stores.vectors_factory import store_kind

    cloud = settings.cloud.model_copy(update={"store": store_kind(settings, profile)})
    update: dict = {"cloud": cloud}
    if settings.cloud.provision_demo and settings.voice.cloud.endpoint is None:
        from pydantic import SecretStr

        key = ensure_demo_tenant(settings)
        edge = settings.voice.cloud.model_copy(update={"endpoint": query_url(settings), "api_key": SecretStr(key)})
        update["voice"] = settings.voice.model_copy(update={"cloud": edge})
    return settings.model_copy(update=update)


def _start_llm(settings: Settings, say: Callable[[str], None]) -> str:
    if not settings.cloud.llm.enabled:
        return "off (extractive answers)"
    if settings.cloud.llm.endpoint:
        return settings.cloud.llm.endpoint
    from hotpath.cluster.llama import LlamaService

    svc = LlamaService(settings)
    why = svc.available()
    if why:
        say(f"  cloud: no local LLM ({why}); answers are extractive")
        return "none (extractive answers)"
    svc.start(say)
    return f"llama.cpp {settings.cloud.llm.model} on {svc.address}"


def build_cloud_app(settings: Settings, profile: str | None = None):  # noqa: ANN201
    """The cloud assistant's Serve application (what ``serve build`` / the RayService deploy)."""
    from ray.serve.schema import LoggingConfig

    from hotpath.deployments.cloud import CloudIngress

    c = settings.cloud
    return CloudIngress.options(
        name="CloudIngress", num_replicas=c.replicas, max_ongoing_requests=c.max_ongoing_requests,
        logging_config=LoggingConfig(enable_access_log=False, log_level="WARNING"),
        ray_actor_options={"num_cpus": 0},
    ).bind(settings, profile)


def deploy_cloud(settings: Settings, profile: str | None):  # noqa: ANN201
    from ray import serve
    from ray.serve.config import HTTPOptions
    from ray.serve.schema import LoggingConfig

    c = settings.cloud
    serve.start(http_options=HTTPOptions(host=settings.serve.host, port=settings.serve.http_port),
                logging_config=LoggingConfig(enable_access_log=False))
    return serve.run(build_cloud_app(settings, profile), name=c.app_name, route_prefix=c.route_prefix, blocking=False)


def start(settings: Settings, say: Callable[[str], None]):  # noqa: ANN201
    """The ``hotpath up`` starter (see :mod:`hotpath.cluster.apps`)."""
    from hotpath.cluster.apps import Endpoint
    from hotpath.cluster.connect import connect_ray
    from hotpath.deployments.cloud_wiring import build_service, ingest_folder

    profile = {"postgres": "full", "file": "embedded"}.get(settings.cloud.store)  # auto: settings.profile
    tenant = settings.voice.tenant_id
    if settings.cloud.provision_demo:
        service = build_service(settings, profile, llm=None)
        done = ingest_folder(service, tenant, demo_docs_dir(settings), say, only_missing=True)
        if done:
            say(f"  cloud: demo tenant {tenant!r}: {len(done)} documents ingested")
        service.store.close()
    llm = _start_llm(settings, say)
    connect_ray(settings)
    deploy_cloud(settings, profile)
    url = query_url(settings)
    return [
        Endpoint("cloud", "HTTP", f"POST {url} (tenant {tenant!r}, store {settings.cloud.store}, LLM {llm})"),
        Endpoint("cloud", "try", f'.venv/bin/hotpath voice say "What is the PPE policy for zone B?" --device w-17'),
    ]


app = build_cloud_app(load_settings())
"""``serve run hotpath.graphs.cloud_app:app`` (settings from ``HOTPATH_*`` / ``HOTPATH_CONFIG``)."""
