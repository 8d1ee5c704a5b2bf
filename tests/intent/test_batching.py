"""The micro-batcher merges concurrent calls into one model call and survives a failing batch."""

from __future__ import annotations

import asyncio
import threading

import pytest

from hotpath.errors import BadInput, ModelError
from hotpath.intent.batching import MicroBatcher
from hotpath.intent.types import Intent, IntentClassifier, IntentResult


class Recording(IntentClassifier):
    """A real classifier implementation (keyword rule) that records the batches it gets."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.threads: set[int] = set()

    def predict(self, text: str) -> IntentResult:
        if text == "boom":
            raise ModelError("boom")
        intent = Intent.CANCEL if "cancel" in text else Intent.OOS
        return IntentResult(text, intent, 0.9)

    def predict_batch(self, texts: list[str]) -> list[IntentResult]:
        self.batches.append(list(texts))
        self.threads.add(threading.get_ident())
        return [self.predict(t) for t in texts]


async def test_concurrent_calls_share_batches_in_order() -> None:
    clf = Recording()
    batcher = MicroBatcher(clf, max_batch_size=8, wait_ms=20)
    texts = [f"cancel {i}" if i % 2 else f"chat {i}" for i in range(20)]
    results = await asyncio.gather(*(batcher.predict(t) for t in texts))
    await batcher.close()
    assert [r.text for r in results] == texts
    assert [r.intent for r in results] == [Intent.CANCEL if i % 2 else Intent.OOS for i in range(20)]
    assert len(clf.batches) < 20 and max(len(b) for b in clf.batches) == 8
    assert batcher.stats.snapshot() == {"requests": 20, "batches": len(clf.batches), "largest_batch": 8}
    assert threading.get_ident() not in clf.threads  # the model ran off the event loop


async def test_failing_batch_fails_its_callers_and_the_batcher_goes_on() -> None:
    batcher = MicroBatcher(Recording(), max_batch_size=4, wait_ms=5)
    with pytest.raises(ModelError):
        await batcher.predict("boom")
    assert (await batcher.predict("cancel it")).intent is Intent.CANCEL
    # a bad request is refused alone, its batch-mates are answered
    good, bad = await asyncio.gather(batcher.predict("cancel"), batcher.predict(None), return_exceptions=True)  # type: ignore[arg-type]
    assert isinstance(good, IntentResult) and isinstance(bad, BadInput)
    await batcher.close()
