"""Outbound clients (HTTP APIs): adapters that open connections; domain code never imports them."""
