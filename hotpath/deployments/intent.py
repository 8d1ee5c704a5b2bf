"""The intent replica as a Ray Serve deployment that batches concurrent calls.

``app = IntentDeployment.bind()``; other deployments call ``await handle.predict.remote(text)``.
Batching is the :class:`~hotpath.intent.batching.MicroBatcher` shared with the Ray actor (not
``@serve.batch``, which only runs inside a live replica): concurrent calls up to
``batch_max_size`` within ``batch_wait_ms`` become one model call, run in a worker thread
(``asyncio.to_thread``), never on the replica's event loop. Stateless and idempotent: a request
may be retried on another replica.
"""

from __future__ import annotations

from ray import serve

from hotpath.intent.batching import MicroBatcher
from hotpath.intent.model import load_classifier
from hotpath.intent.settings import IntentSettings
from hotpath.intent.types import IntentResult

__all__ = ["IntentDeployment", "app"]


@serve.deployment(name="intent", ray_actor_options={"num_cpus": 1}, max_ongoing_requests=256)
class IntentDeployment:
    def __init__(self, settings: IntentSettings | None = None) -> None:
        self._settings = settings or IntentSettings()
        self._batcher = MicroBatcher(
            load_classifier(self._settings),
            max_batch_size=self._settings.batch_max_size,
            wait_ms=self._settings.batch_wait_ms,
        )

    async def predict(self, text: str) -> IntentResult:
        return await self._batcher.predict(text)

    async def route(self, text: str, tenant: str | None = None) -> dict[str, object]:
        """The result plus the tenant's routing decision (``local`` or ``cloud``)."""
        result = await self._batcher.predict(text)
        threshold = self._settings.threshold_for(tenant)
        return {**result.to_dict(), "threshold": threshold,
                "route": "local" if result.is_local_command(threshold) else "cloud"}

    async def stats(self) -> dict[str, int]:
        return self._batcher.stats.snapshot()


app = IntentDeployment.bind()
