"""Latency and throughput of the served intent path (tokenizer + onnxruntime + temperature).

``single``: one utterance per call, tokenization included, as the voice pipeline calls it;
``predict``: the same plus slot extraction and result building; ``batched``: utterances per
second through ``predict_batch`` in batches of ``batch_size``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Optional

import numpy as np
import typer

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


def bench_intent(
    model: Optional[Path] = typer.Option(None, "--model"),
    n: int = typer.Option(3000, min=10, help="Timed calls per measurement."),
    batch_size: int = typer.Option(32, min=1),
    pin: bool = typer.Option(True, help="Pin the process to one CPU core."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Single-utterance p50/p99 (tokenization included, one thread) and batched throughput."""
    from hotpath.config import load_settings
    from hotpath.intent.data import DATA_DIR, load_examples
    from hotpath.intent.model import load_classifier

    clf = load_classifier(load_settings().intent, model)
    texts = [e.text for e in load_examples(DATA_DIR / "test.jsonl")]
    core = sorted(os.sched_getaffinity(0))[-1] if pin and hasattr(os, "sched_getaffinity") else None
    report = run_bench(clf, texts, n=n, batch_size=batch_size, pin_core=core)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    s, p, b = report["single"], report["predict"], report["batched"]
    typer.echo(f"single  p50 {s['p50_us']:.0f} us  p99 {s['p99_us']:.0f} us (tokenize + onnxruntime)")
    typer.echo(f"predict p50 {p['p50_us']:.0f} us  p99 {p['p99_us']:.0f} us (+ slots)")
    typer.echo(f"batched {b['utterances_per_s']:.0f} utterances/s at batch {b['batch_size']}")


def register(bench: typer.Typer) -> None:
    """Add ``hotpath bench intent``."""
    bench.command("intent")(bench_intent)
