"""Outbound clients: LLM (OpenAI-compatible) and other HTTP services."""
