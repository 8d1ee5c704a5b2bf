"""An aiomqtt publisher shared by the voice actors (the Publisher port of the pipeline)."""

from __future__ import annotations

import asyncio
import uuid

import aiomqtt

from hotpath.errors import ServiceUnavailable
from hotpath.streams.mqtt_login import client_login

__all__ = ["MqttPublisher"]


class MqttPublisher:
    """One MQTT connection, opened on first use and reopened once when it drops."""

    def __init__(self, host: str, port: int, *, name: str = "voice") -> None:
        self.host, self.port = host, port
        self.identifier = f"hotpath-{name}-{uuid.uuid4().hex[:8]}"
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()

    async def _connect(self) -> aiomqtt.Client:
        async with self._lock:
            if self._client is None:
                client = aiomqtt.Client(self.host, self.port, identifier=self.identifier, timeout=5, **client_login())
                try:
                    await client.__aenter__()
                except aiomqtt.MqttError as exc:
                    raise ServiceUnavailable(f"MQTT broker {self.host}:{self.port} unreachable: {exc}",
                                             hint="start it with hotpath services up") from exc
                self._client = client
            return self._client

    async def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        for attempt in (1, 2):
            client = await self._connect()
            try:
                await client.publish(topic, payload, qos=qos)
                return
            except aiomqtt.MqttError as exc:
                await self._drop()
                if attempt == 2:
                    raise ServiceUnavailable(f"MQTT publish to {topic} failed: {exc}") from exc

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.__aexit__(None, None, None)
            except Exception:
                pass

    async def close(self) -> None:
        await self._drop()
