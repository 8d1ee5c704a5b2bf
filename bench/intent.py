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




# --- many-label training benchmark ---------------------------------------------------------------

SWEEP = (0.3, 0.5, 0.7, 0.85, 0.9, 0.95)


def _manylabel():
    """The synthetic many-label generator of data/intent/manylabel.py (a script, not a package)."""
    import importlib.util

    from hotpath.intent.data import DATA_DIR

    spec = importlib.util.spec_from_file_location("hotpath_manylabel", DATA_DIR / "manylabel.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def synthetic_splits(out: Path, n_intents: int = 150, n_train: int = 100, seed: int = 0) -> dict[str, Path]:
    """Write (or reuse) the synthetic many-label splits under ``out``."""
    gen = _manylabel()
    out = out / f"{gen.SOURCE}-i{n_intents}-n{n_train}-s{seed}"
    if all((out / f"{s}.jsonl").is_file() for s in ("train", "val", "test")):
        return {s: out / f"{s}.jsonl" for s in ("train", "val", "test")}
    oos = (100, 100, 1000) if n_intents >= 150 else (max(10, n_intents), max(10, n_intents), max(20, 6 * n_intents))
    return gen.write(out, gen.generate(n_intents, n_train, max(2, n_train // 5), max(3, (3 * n_train) // 10), oos, seed))


def train_run(paths: dict[str, Path], out: Path, teacher: str, *, epochs: int, batch_size: int, lr: float,
              max_steps: int | None, threshold: float, log, **options) -> dict[str, object]:
    """Train on paths["train"] (calibrate on "val"), evaluate on "test": timings and test metrics."""
    from hotpath.intent.artifact import train_and_export
    from hotpath.intent.data import load_examples
    from hotpath.intent.metrics import evaluate_probs
    from hotpath.intent.train import TrainConfig

    train, val, test = (load_examples(paths[s]) for s in ("train", "val", "test"))
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, teacher=teacher, max_steps=max_steps,
                      **{k: v for k, v in options.items() if v is not None})
    import resource

    def cpu() -> float:
        u = resource.getrusage(resource.RUSAGE_SELF)
        return u.ru_utime + u.ru_stime

    marks: dict[str, float] = {}
    t0, c0 = time.perf_counter(), cpu()

    def tap(line: str) -> None:
        if line.startswith("training ") and "loop" not in marks:
            marks["loop"] = time.perf_counter()
        if line.startswith(("fp32:", "int8:")) and "export" not in marks:
            marks["export"] = time.perf_counter()
        log(line)

    meta = train_and_export(train, val, out, cfg, threshold=threshold, log=tap)
    total, cpu_s = time.perf_counter() - t0, cpu() - c0
    t1 = time.perf_counter()
    clf = OnnxIntentClassifier(out)
    texts, gold = [e.text for e in test], [e.label for e in test]
    probs = np.concatenate([clf.probabilities(texts[i:i + 256]) for i in range(0, len(texts), 256)])
    report = evaluate_probs(probs, clf.labels, gold, threshold)
    eval_s = time.perf_counter() - t1
    keys = ("threshold", "accuracy_at_threshold", "oos_recall", "oos_precision")
    sweep = [{k: v for k, v in evaluate_probs(probs, clf.labels, gold, t).items() if k in keys} for t in SWEEP]
    loop = marks.get("loop", t0)
    history = meta["history"]
    return {
        "teacher": meta["teacher"],
        "train_config": cfg.to_dict(),
        "epochs": len(history),
        "seconds_total": total,
        "cpu_seconds": cpu_s,
        "seconds_setup_and_teacher": loop - t0,
        "seconds_training_loop": sum(h["seconds"] for h in history),
        "seconds_export_calibrate": total - (marks.get("export", loop) - t0) if "export" in marks else None,
        "seconds_eval_test": eval_s,
        "model": str(out),
        "quantized": meta["quantized"],
        "test": {k: report[k] for k in ("n", "threshold", "accuracy", "accuracy_at_threshold", "macro_f1",
                                         "oos_recall", "oos_precision", "ece")},
        "worst_intents": sorted(((name, row["f1"]) for name, row in report["per_intent"].items() if row["f1"] is not None),
                                key=lambda x: x[1])[:5],
        "sweep": sweep,
    }


def bench_intent_train(
    data: Optional[Path] = typer.Option(None, "--data", help="Directory with train/val/test.jsonl (e.g. from `hotpath intent import-clinc`); default: the SYNTHETIC many-label set."),
    intents: int = typer.Option(150, min=2, max=150, help="Synthetic set: number of intents."),
    per_intent: int = typer.Option(100, min=5, help="Synthetic set: training utterances per intent."),
    teacher: str = typer.Option("both", help="auto, yes, no, or both (one run with the MiniLM teacher, one without)."),
    epochs: int = typer.Option(20, min=1),
    batch_size: int = typer.Option(32, min=1),
    lr: float = typer.Option(1e-3, min=0.0),
    max_steps: Optional[int] = typer.Option(None, min=1, help="Stop each run after this many steps (smoke runs)."),
    augment: Optional[int] = typer.Option(None, min=0, help="Paraphrase-noise copies per training line (teacher runs; default: TrainConfig's)."),
    soft_weight: Optional[float] = typer.Option(None, min=0.0, help="Weight of the teacher head's soft labels (default: TrainConfig's)."),
    label_smoothing: Optional[float] = typer.Option(None, min=0.0, max=0.5, help="Label smoothing (default: TrainConfig's)."),
    threshold: float = typer.Option(0.85, min=0.0, max=1.0),
    out: Optional[Path] = typer.Option(None, "--out", help="Where models go (default: <runtime_dir>/intent/bench)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Train on a many-label set (150 intents + oos by default) and report training time, in-scope
    accuracy, OOS recall at the threshold (and a threshold sweep) on the held-out test split."""
    from hotpath.config import load_settings
    from hotpath.errors import BadInput

    if teacher not in {"auto", "yes", "no", "both"}:
        raise BadInput(f"--teacher must be auto, yes, no or both, got {teacher!r}", field="teacher")
    root = out or load_settings().runtime_dir / "intent" / "bench"
    if data is not None:
        paths = {s: data / f"{s}.jsonl" for s in ("train", "val", "test")}
        source = f"files under {data}"
    else:
        paths = synthetic_splits(root / "data", intents, per_intent)
        source = "SYNTHETIC (data/intent/manylabel.py), not a public benchmark"
    log = (lambda line: typer.echo(line, err=True)) if as_json else typer.echo
    log(f"dataset: {source}: {paths['train'].parent}")
    runs = []
    for t in (["yes", "no"] if teacher == "both" else [teacher]):
        log(f"--- run with teacher={t}")
        runs.append(train_run(paths, root / f"model-teacher-{t}", t, epochs=epochs, batch_size=batch_size, lr=lr,
                              max_steps=max_steps, threshold=threshold, log=log, augment=augment,
                              soft_weight=soft_weight, label_smoothing=label_smoothing))
    report = {
        "dataset": {"source": source, "dir": str(paths["train"].parent),
                    **{s: sum(1 for line in p.read_text().splitlines() if line.strip()) for s, p in paths.items()}},
        "machine": {"cpus": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
                    "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
                    "note": "timings are of this machine under whatever else ran on it; see load_average_1m"},
        "runs": runs,
    }
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    for r in runs:
        m = r["test"]
        typer.echo(f"teacher {r['teacher'] or 'none'}: {r['seconds_total']:.0f} s total, {r['cpu_seconds']:.0f} CPU-s "
                   f"({r['seconds_setup_and_teacher']:.0f} s setup+teacher, {r['seconds_training_loop']:.0f} s loop); "
                   f"test in-scope accuracy {m['accuracy']:.4f} (at t={threshold:g}: {m['accuracy_at_threshold']:.4f}), "
                   f"oos recall {m['oos_recall']:.4f}, macro F1 {m['macro_f1']:.4f}")


def register(bench: typer.Typer) -> None:
    """Add ``hotpath bench intent`` and ``hotpath bench intent-train``."""
    bench.command("intent")(bench_intent)
    bench.command("intent-train")(bench_intent_train)
