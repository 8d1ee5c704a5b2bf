"""``hotpath catalog generate|load`` (``hotpath bench recs`` lives in ``bench/recs.py``)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer

__all__ = ["register"]


def _settings(config: Optional[Path]):
    from hotpath.config import load_settings

    return load_settings(config)


def _progress():
    last = [0.0]

    def report(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] > 0.5 or done >= total:
            last[0] = now
            pct = 100.0 * done / total if total else 100.0
            end = "\n" if done >= total else ""
            typer.echo(f"\r  {stage:<12} {done:>10,}/{total:,} ({pct:5.1f}%)", err=True, nl=False)
            if end:
                typer.echo("", err=True)

    return report


def register(root: typer.Typer, bench: typer.Typer) -> None:
    catalog = typer.Typer(no_args_is_help=True, help="Synthetic catalog: generate and bulk-load.")
    root.add_typer(catalog, name="catalog")

    @catalog.command("generate")
    def generate_cmd(
        out: Path = typer.Option(None, help="Directory for catalog.npz (default: RUNTIME/data/catalog)"),
        masters: int = typer.Option(None, help="Number of masters (up to 5,000,000)"),
        users: int = typer.Option(None, help="Number of users with histories"),
        seed: int = typer.Option(None),
        config: Optional[Path] = typer.Option(None, "--config"),
    ) -> None:
        """Generate a catalog with planted structure and save it."""
        from hotpath.errors import BadInput
        from hotpath.recs.catalog import generate

        s = _settings(config)
        upd = {k: v for k, v in {"masters": masters, "users": users, "seed": seed}.items() if v is not None}
        from pydantic import ValidationError

        try:
            cs = type(s.recs.catalog).model_validate({**s.recs.catalog.model_dump(), **upd})
        except ValidationError as exc:
            problems = "; ".join(f"--{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise BadInput(f"invalid catalog options: {problems}") from exc
        t = time.perf_counter()
        cat = generate(cs)
        path = cat.save(out or s.in_runtime(Path("data/catalog")))
        typer.echo(
            json.dumps(
                {"path": str(path), "masters": cat.n_masters, "pids": cat.n_pids, "leaves": cat.n_leaves,
                 "users": len(cat.user_views), "seconds": round(time.perf_counter() - t, 1)}  # fmt: skip
            )
        )

    @catalog.command("load")
    def load_cmd(
        source: Path = typer.Option(None, "--from", help="A generated catalog (default: RUNTIME/data/catalog)"),
        hot_fraction: float = typer.Option(1.0, min=0.0, max=1.0, help="Share of each leaf's masters mirrored in Redis"),
        config: Optional[Path] = typer.Option(None, "--config"),
    ) -> None:
        """Bulk-load a generated catalog into Redis, the dimension store and the rollup store."""
        from hotpath.errors import NotFound
        from hotpath.recs.catalog import Catalog
        from hotpath.recs.loader import load_catalog
        from hotpath.stores.factory import open_dimension_store, open_hot_cache
        from hotpath.stores.redis_fast import bulk_writer
        from hotpath.stores.rollups import open_rollup_store

        s = _settings(config)
        src = source or s.in_runtime(Path("data/catalog"))
        f = src / "catalog.npz" if src.is_dir() else src
        if not f.exists():
            raise NotFound(f"no catalog at {f}", hint="run `hotpath catalog generate` first")
        cat = Catalog.load(f)
        cache, store, rollups = open_hot_cache(s), open_dimension_store(s), open_rollup_store(s)
        try:
            rep = load_catalog(cat, s.recs, cache, bulk_writer(cache), store, rollups,
                               hot_fraction=hot_fraction, progress=_progress())  # fmt: skip
        finally:
            rollups.close()
            store.close()
            cache.close()
        typer.echo(json.dumps(rep.to_json()))

    recs = typer.Typer(no_args_is_help=True, help="Recommendations: operations (warm-up, promos consumer).")
    root.add_typer(recs, name="recs")

    @recs.command("warm")
    def warm_cmd(config: Optional[Path] = typer.Option(None, "--config")) -> None:
        """Rebuild the Redis hot mirror from the dimension and rollup stores (after Redis lost its data)."""
        from hotpath.recs.loader import warm_hot_mirror
        from hotpath.stores.factory import open_dimension_store, open_hot_cache
        from hotpath.stores.redis_fast import bulk_writer
        from hotpath.stores.rollups import open_rollup_store

        s = _settings(config)
        cache, store, rollups = open_hot_cache(s), open_dimension_store(s), open_rollup_store(s, read_only=True)
        t = time.perf_counter()
        try:
            rep = warm_hot_mirror(s.recs, bulk_writer(cache), store, rollups, progress=_progress())
        finally:
            rollups.close()
            store.close()
            cache.close()
        typer.echo(json.dumps({**rep, "seconds": round(time.perf_counter() - t, 1)}))

    @recs.command("promos")
    def promos_cmd(
        from_start: bool = typer.Option(False, "--from-start", help="Replay the topic from offset 0 (old events are skipped)"),
        once: bool = typer.Option(False, "--once", help="Stop once caught up (2 s idle)"),
        config: Optional[Path] = typer.Option(None, "--config"),
    ) -> None:
        """Consume the promos topic into Redis (each recs replica also does, unless recs.promos_consumer is off)."""
        import asyncio

        from hotpath.deployments.recs import run_promos

        s = _settings(config)
        res = asyncio.run(run_promos(s, from_start=from_start, idle_exit_s=2.0 if once else None,
                                     say=lambda m: typer.echo(m, err=True)))  # fmt: skip
        typer.echo(json.dumps(res))
