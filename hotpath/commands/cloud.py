"""``hotpath cloud ...``: tenants, keys, document ingest, a question, and a standalone gateway.

    hotpath cloud tenant add acme [--name "Acme Corp"]     prints the first API key (shown once)
    hotpath cloud tenant list [--json]
    hotpath cloud key rotate acme [--overlap 86400]        new key; old ones expire after the overlap
    hotpath cloud key revoke acme [--key-id ID]            expire one key (or all) now
    hotpath cloud ingest acme docs/ [--profile full]       .md/.txt/.pdf files, with progress
    hotpath cloud ask acme "What is the PPE policy?"       the answer and its citations, locally
    hotpath cloud serve [--port 18443]                     the gateway under uvicorn (TLS by config)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

__all__ = ["register"]

_CONFIG = typer.Option(None, "--config", help="YAML settings file")
_PROFILE = typer.Option(None, "--profile", "-p", help="embedded (file store) or full (PostgreSQL)")


def _settings(config: Optional[Path]):  # noqa: ANN202
    from hotpath.config import load_settings

    return load_settings(config)


def register(root: typer.Typer, bench: typer.Typer) -> None:
    cloud = typer.Typer(no_args_is_help=True, help="The cloud assistant: tenants, keys, documents.")
    tenant = typer.Typer(no_args_is_help=True, help="Tenants.")
    key = typer.Typer(no_args_is_help=True, help="API keys (stored hashed).")
    cloud.add_typer(tenant, name="tenant")
    cloud.add_typer(key, name="key")
    root.add_typer(cloud, name="cloud")

    @tenant.command("add")
    def tenant_add(tenant_id: str, name: str = typer.Option("", help="Display name"),
                   config: Optional[Path] = _CONFIG) -> None:
        """Create a tenant and print its first API key (shown once, stored hashed)."""
        from hotpath.stores.vectors_factory import open_tenancy

        issued = open_tenancy(_settings(config)).add_tenant(tenant_id, name)
        typer.echo(f"tenant {tenant_id} created; API key (shown once): {issued.key}")

    @tenant.command("list")
    def tenant_list(as_json: bool = typer.Option(False, "--json"), config: Optional[Path] = _CONFIG) -> None:
        """Tenants with their keys' ids and expiry (never the keys)."""
        import time

        from hotpath.stores.vectors_factory import open_tenancy

        t = open_tenancy(_settings(config))
        now = time.time()
        rows = []
        for ten in t.registry.list_tenants():
            keys = [{"key_id": k.key_id, "label": k.label, "active": k.active(now), "expires_at": k.expires_at}
                    for k in t.registry.keys(ten.tenant_id)]
            rows.append({"tenant_id": ten.tenant_id, "name": ten.name, "keys": keys})
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        if not rows:
            typer.echo("no tenants (hotpath cloud tenant add NAME)")
        for r in rows:
            active = [k["key_id"] for k in r["keys"] if k["active"]]
            typer.echo(f"{r['tenant_id']:<20} {r['name']:<30} active keys: {', '.join(active) or '-'}")

    @key.command("rotate")
    def key_rotate(tenant_id: str,
                   overlap: Optional[float] = typer.Option(None, help="Seconds the old keys keep working "
                                                                     "(default: cloud.key_overlap_s)"),
                   config: Optional[Path] = _CONFIG) -> None:
        """Issue a new key; the tenant's other keys expire after the overlap window."""
        from hotpath.stores.vectors_factory import open_tenancy

        s = _settings(config)
        window = s.cloud.key_overlap_s if overlap is None else overlap
        issued = open_tenancy(s).rotate(tenant_id, window)
        typer.echo(f"new API key for {tenant_id} (shown once): {issued.key}")
        typer.echo(f"previous keys stop working in {window:.0f} s")

    @key.command("revoke")
    def key_revoke(tenant_id: str, key_id: Optional[str] = typer.Option(None, "--key-id", help="One key (default: all)"),
                   config: Optional[Path] = _CONFIG) -> None:
        """Expire a key (or all of the tenant's keys) now."""
        from hotpath.stores.vectors_factory import open_tenancy

        n = open_tenancy(_settings(config)).revoke(tenant_id, key_id)
        typer.echo(f"revoked {n} key(s) of {tenant_id}")

    @cloud.command("ingest")
    def ingest(tenant_id: str, folder: Path = typer.Argument(..., help="Folder (or one file) of .md/.txt/.pdf"),
               profile: Optional[str] = _PROFILE, config: Optional[Path] = _CONFIG) -> None:
        """Chunk, embed and store a tenant's documents (re-ingest replaces a document's chunks)."""
        import shutil
        import tempfile

        from hotpath.deployments.cloud_wiring import build_service, ingest_folder
        from hotpath.errors import BadInput

        s = _settings(config)
        open_tenancy_check(s, tenant_id)
        if not folder.exists():
            raise BadInput(f"{folder} does not exist")
        service = build_service(s, profile, llm=None)
        src = folder
        tmp = None
        if folder.is_file():
            tmp = Path(tempfile.mkdtemp())
            shutil.copy(folder, tmp / folder.name)
            src = tmp
        try:
            reports = ingest_folder(service, tenant_id, src, typer.echo)
        finally:
            if tmp:
                shutil.rmtree(tmp, ignore_errors=True)
            service.store.close()
        typer.echo(f"{tenant_id}: {len(reports)} documents, {sum(r['chunks'] for r in reports)} chunks "
                   f"({service.store.name} store)")

    @cloud.command("ask")
    def ask(tenant_id: str, question: str, profile: Optional[str] = _PROFILE,
            no_llm: bool = typer.Option(False, "--no-llm", help="Extractive answer only"),
            config: Optional[Path] = _CONFIG) -> None:
        """Answer a question from the tenant's documents, here (no gateway), as JSON."""
        from hotpath.cloud.models import QueryRequest
        from hotpath.deployments.cloud_wiring import build_service

        s = _settings(config)
        open_tenancy_check(s, tenant_id)
        service = build_service(s, profile, llm=None if no_llm else "auto")
        answer = service.answer(tenant_id, QueryRequest(tenant_id=tenant_id, text=question))
        typer.echo(json.dumps(answer.to_dict(), indent=2))

    @cloud.command("serve")
    def serve(host: str = typer.Option("127.0.0.1"), port: int = typer.Option(18443),
              profile: Optional[str] = _PROFILE, config: Optional[Path] = _CONFIG) -> None:
        """Run the gateway alone under uvicorn (HTTPS when cloud.tls_certfile/tls_keyfile are set)."""
        import uvicorn

        from hotpath.deployments.cloud_asgi import asgi_app
        from hotpath.deployments.cloud_wiring import build_gateway

        s = _settings(config)
        c = s.cloud
        tls = {"ssl_certfile": str(c.tls_certfile), "ssl_keyfile": str(c.tls_keyfile)} if c.tls_certfile else {}
        uvicorn.run(asgi_app(build_gateway(s, profile)), host=host, port=port, log_level="warning", **tls)


def open_tenancy_check(settings, tenant_id: str) -> None:  # noqa: ANN001
    from hotpath.stores.vectors_factory import open_tenancy

    open_tenancy(settings).require(tenant_id)
