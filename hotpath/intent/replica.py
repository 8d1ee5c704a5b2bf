"""The intent replica: batched predictions and routing (a Ray face can wrap it when one is needed).

Concurrent calls up to ``batch_max_size`` within ``batch_wait_ms`` become one model call (the
:class:`~hotpath.intent.batching.MicroBatcher`), run in a worker thread, never on the event loop.
Stateless and idempotent: a request may be retried on another or a restarted replica.
"""

from __future__ import annotations

from hotpath.intent.batching import MicroBatcher
from hotpath.intent.model import load_classifier
from hotpath.intent.settings import IntentSettings
from hotpath.intent.types import IntentResult

__all__ = ["IntentReplica"]


class IntentReplica:
    def __init__(self, settings: IntentSettings | None = None) -> None:
        self._settings = settings or IntentSettings()
        self._batcher = MicroBatcher(
            load_classifier(self._settings),
            max_batch_size=self._settings.batch_max_size,
            wait_ms=self._settings.batch_wait_ms,
        )
        self._local = frozenset(self._settings.local_intents)

    async def predict(self, text: str) -> IntentResult:
        return await self._batcher.predict(text)

    async def route(self, text: str, tenant: str | None = None) -> dict[str, object]:
        """The result plus the tenant's routing decision (``local`` or ``cloud``)."""
        result = await self._batcher.predict(text)
        threshold = self._settings.threshold_for(tenant)
        return {
            **result.to_dict(),
            "threshold": threshold,
            "route": "local" if result.is_local_command(threshold, self._local) else "cloud",
        }

    async def stats(self) -> dict[str, int]:
        return self._batcher.stats.snapshot()
