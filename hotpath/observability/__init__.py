"""Metrics of every app: names and definitions (:mod:`.metrics`), exported through Ray's metrics agent."""
