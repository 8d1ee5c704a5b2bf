"""CLI command modules of the newer areas: each exposes ``register(root, bench)`` (listed in hotpath.cli.AREAS)."""
