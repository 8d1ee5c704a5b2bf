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

from hotpath.intent.replica import IntentReplica

__all__ = ["IntentDeployment", "app"]

IntentDeployment = serve.deployment(
    name="intent", ray_actor_options={"num_cpus": 1}, max_ongoing_requests=256
)(IntentReplica)

app = IntentDeployment.bind()
