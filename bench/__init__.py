"""Benchmarks, simulators and test oracles: outside the ``hotpath`` package, run as ``hotpath bench ...``.

``bench.cli:register`` is the ``hotpath.commands`` entry point (pyproject.toml); each benchmark module
listed in ``bench.cli.BENCHES`` exposes ``register(bench: typer.Typer)`` adding its command.
"""
