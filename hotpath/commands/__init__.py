"""CLI command modules of the newer areas: each exposes ``register(root, bench)`` and is listed in
``hotpath.cli.AREAS``."""
