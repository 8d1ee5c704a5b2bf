"""The intent replica as a Ray actor: a thin shell over :class:`~hotpath.intent.batching.MicroBatcher`.

Fault tolerance: stateless. The model is read from disk at start (the shipped model unless the
settings name another); nothing is checkpointed. ``predict`` is idempotent, so a caller may retry
on a restarted actor (``max_restarts`` is set by the caller through ``.options``).
Concurrent calls (async actor, ``max_concurrency``) are batched into one model call.
"""

from __future__ import annotations

import ray

from hotpath.intent.batching import MicroBatcher
from hotpath.intent.model import load_classifier
from hotpath.intent.settings import IntentSettings
from hotpath.intent.types import IntentResult

__all__ = ["IntentActor", "start_intent_actor"]


@ray.remote(num_cpus=1, max_concurrency=256)
class IntentActor:
    def __init__(self, settings: IntentSettings | None = None) -> None:
        self._settings = settings or IntentSettings()
        self._clf = load_classifier(self._settings)
        self._batcher = MicroBatcher(
            self._clf, max_batch_size=self._settings.batch_max_size, wait_ms=self._settings.batch_wait_ms
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


def start_intent_actor(settings: IntentSettings | None = None, *, name: str | None = None, **options):
    """Start (or, with ``name``, get-or-create) the replica in the connected Ray cluster."""
    opts = {"max_restarts": 3, **options}
    if name is not None:
        opts.update(name=name, get_if_exists=True)
    return IntentActor.options(**opts).remote(settings)
