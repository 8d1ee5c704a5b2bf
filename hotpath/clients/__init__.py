"""Outbound clients (HTTP and the like): adapters that open connections to other services."""
