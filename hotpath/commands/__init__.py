"""CLI commands, one module per area exposing ``register(root, bench)``; listed in ``hotpath.cli.AREAS``.

Heavy imports (Ray, clients, models) happen inside the command functions, so ``hotpath --help`` is fast.
"""
