"""Micro-batching of concurrent predict calls: one model call per batch, off the event loop.

Callers ``await batcher.predict(text)``; the first request of a batch waits at most
``wait_ms`` for others (up to ``max_batch_size``), then the batch runs in a worker thread via
``asyncio.to_thread`` so the loop keeps accepting requests. A failing batch fails every request
in it with the same error; the batcher itself goes on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hotpath.errors import BadInput
from hotpath.intent.types import IntentClassifier, IntentResult

__all__ = ["MicroBatcher", "BatchStats"]


@dataclass
class BatchStats:
    requests: int = 0
    batches: int = 0
    largest_batch: int = 0

    def snapshot(self) -> dict[str, int]:
        return {"requests": self.requests, "batches": self.batches, "largest_batch": self.largest_batch}


class MicroBatcher:
    def __init__(self, classifier: IntentClassifier, *, max_batch_size: int = 32, wait_ms: float = 2.0) -> None:
        self._clf = classifier
        self._max = max_batch_size
        self._wait = wait_ms / 1000.0
        self._queue: asyncio.Queue[tuple[str, asyncio.Future[IntentResult]]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self.stats = BatchStats()

    async def predict(self, text: str) -> IntentResult:
        if not isinstance(text, str):  # refused here, so it cannot fail its batch-mates
            raise BadInput(f"transcript must be a string, got {type(text).__name__}", field="text")
        if self._queue is None:
            self._queue = asyncio.Queue()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run())
        future: asyncio.Future[IntentResult] = asyncio.get_running_loop().create_future()
        await self._queue.put((text, future))
        return await future

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            items = [await self._queue.get()]
            deadline = loop.time() + self._wait
            while len(items) < self._max:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    items.append(await asyncio.wait_for(self._queue.get(), timeout))
                except asyncio.TimeoutError:
                    break
            self.stats.requests += len(items)
            self.stats.batches += 1
            self.stats.largest_batch = max(self.stats.largest_batch, len(items))
            texts = [t for t, _ in items]
            try:
                results = await asyncio.to_thread(self._clf.predict_batch, texts)
            except Exception as exc:  # delivered to every waiting caller; the loop goes on
                for _, fut in items:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), result in zip(items, results):
                if not fut.done():
                    fut.set_result(result)
