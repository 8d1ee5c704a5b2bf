"""``hotpath bench ...``: registered into the root CLI through the ``hotpath.commands`` entry point.

A benchmark module exposes ``register(bench: typer.Typer)`` and is listed in ``BENCHES``; it is
imported only when the CLI starts, and it may import anything in ``hotpath`` (it sits above it).
"""

from __future__ import annotations

import importlib

import typer

__all__ = ["BENCHES", "register"]

BENCHES: tuple[str, ...] = (
    "bench.coview",
    "bench.voice",
    "bench.voice_cpu",
    "bench.intent",
    "bench.refresh",
    "bench.druid",
    "bench.ab",
    "bench.recs",
    "bench.coview_quality",
    "bench.cloud",
    "bench.contexts",
    "bench.walk",
)


def register(root: typer.Typer, bench: typer.Typer) -> None:
    for name in BENCHES:
        importlib.import_module(name).register(bench)
