"""CLI command groups, one module per area, each exposing ``register(root, bench)``."""
