"""The intent replica as a Ray actor: a thin shell over :class:`~hotpath.intent.batching.MicroBatcher`.

Fault tolerance: stateless. The model is read from disk at start (the shipped model unless the
settings name another); nothing is checkpointed. ``predict`` is idempotent, so a caller may retry
on a restarted actor (``max_restarts`` is set by the caller through ``.options``).
Concurrent calls (async actor, ``max_concurrency``) are batched into one model call.
"""

from __future__ import annotations

import ray

from hotpath.intent.replica import IntentReplica
from hotpath.intent.settings import IntentSettings

__all__ = ["IntentActor", "start_intent_actor"]

IntentActor = ray.remote(num_cpus=1, max_concurrency=256)(IntentReplica)


def start_intent_actor(settings: IntentSettings | None = None, *, name: str | None = None, **options):
    """Start (or, with ``name``, get-or-create) the replica in the connected Ray cluster."""
    opts = {"max_restarts": 3, **options}
    if name is not None:
        opts.update(name=name, get_if_exists=True)
    return IntentActor.options(**opts).remote(settings)
