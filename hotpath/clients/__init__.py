"""Outbound clients (adapters that open a connection): STT gRPC, cloud HTTP, webhook, SIP."""
