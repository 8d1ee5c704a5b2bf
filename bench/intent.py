"""Latency and throughput of the served intent path (tokenizer + onnxruntime + temperature).

``single``: one utterance per call, tokenization included, as the voice pipeline calls it;
``predict``: the same plus slot extraction and result building; ``batched``: utterances per
second through ``predict_batch`` in batches of ``batch_size``.
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np

from hotpath.intent.model import OnnxIntentClassifier

__all__ = ["run_bench"]


def _percentiles(samples: list[float]) -> dict[str, float]:
    arr = np.asarray(samples) * 1e6
    return {"p50_us": float(np.percentile(arr, 50)), "p99_us": float(np.percentile(arr, 99)),
            "mean_us": float(arr.mean()), "max_us": float(arr.max())}


def run_bench(
    clf: OnnxIntentClassifier, texts: list[str], *, n: int = 3000, batch_size: int = 32,
    warmup: int = 200, pin_core: int | None = None,
) -> dict[str, object]:
    if pin_core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {pin_core})
    texts = [t for t in texts if t.strip()] or ["call technician nguyen"]
    for i in range(warmup):
        clf.probabilities([texts[i % len(texts)]])
    single: list[float] = []
    for i in range(n):
        t = texts[i % len(texts)]
        t0 = time.perf_counter()
        clf.probabilities([t])
        single.append(time.perf_counter() - t0)
    full: list[float] = []
    for i in range(n):
        t = texts[i % len(texts)]
        t0 = time.perf_counter()
        clf.predict(t)
        full.append(time.perf_counter() - t0)
    tok: list[float] = []
    for i in range(n):
        t = texts[i % len(texts)]
        t0 = time.perf_counter()
        clf.tokenizer.encode(t)
        tok.append(time.perf_counter() - t0)
    batches = max(1, n // batch_size)
    t0 = time.perf_counter()
    for b in range(batches):
        start = (b * batch_size) % len(texts)
        chunk = (texts * 2)[start:start + batch_size] if len(texts) >= batch_size else (texts * batch_size)[:batch_size]
        clf.predict_batch(chunk)
    elapsed = time.perf_counter() - t0
    return {
        "model": str(clf.model_dir),
        "quantized": bool(clf.meta.raw.get("quantized")),
        "threads": 1,
        "pinned_core": pin_core,
        "cpu": platform.processor() or platform.machine(),
        "n": n,
        "single": _percentiles(single),
        "predict": _percentiles(full),
        "tokenize": _percentiles(tok),
        "batched": {"batch_size": batch_size, "batches": batches,
                    "utterances_per_s": batches * batch_size / elapsed,
                    "ms_per_batch": elapsed / batches * 1e3},
    }
