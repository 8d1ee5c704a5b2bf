"""Cloud queries the assistant could not take, kept for a later try; and the port the pipeline asks.

The HTTP implementation of :class:`CloudPort` is :class:`hotpath.clients.cloud.CloudClient`.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Awaitable, Callable, Protocol

from hotpath.errors import ServiceUnavailable
from hotpath.voice.messages import CloudAnswer, CloudQuery

__all__ = ["CloudPort", "RetryQueue", "Pending"]


class CloudPort(Protocol):
    """The cloud assistant: ``ask`` raises :class:`~hotpath.errors.ServiceUnavailable` on any failure."""

    endpoint: str | None

    async def ask(self, query: CloudQuery) -> CloudAnswer: ...

    async def close(self) -> None: ...


@dataclass
class Pending:
    query: CloudQuery
    attempts: int = 1
    queued_at: float = 0.0


class RetryQueue:
    """Queries the cloud could not take, retried later; bounded (the oldest is dropped and counted)."""

    def __init__(self, maxlen: int = 100, max_attempts: int = 5) -> None:
        self.items: deque[Pending] = deque()
        self.maxlen = maxlen
        self.max_attempts = max_attempts
        self.dropped = 0
        self.delivered = 0

    def __len__(self) -> int:
        return len(self.items)

    def put(self, query: CloudQuery) -> None:
        if self.maxlen == 0:
            self.dropped += 1
            return
        if len(self.items) >= self.maxlen:
            self.items.popleft()
            self.dropped += 1
        self.items.append(Pending(query, 1, time.time()))

    async def retry(self, client: CloudPort, deliver: Callable[[CloudQuery, CloudAnswer], Awaitable[None]]) -> int:
        """One pass over the queue; returns how many were answered (and delivered)."""
        done = 0
        for _ in range(len(self.items)):
            item = self.items.popleft()
            try:
                answer = await client.ask(item.query)
            except ServiceUnavailable:
                item.attempts += 1
                if item.attempts <= self.max_attempts:
                    self.items.append(item)
                else:
                    self.dropped += 1
                continue
            await deliver(item.query, answer)
            done += 1
        self.delivered += done
        return done
