"""``hotpath intent train|eval|predict|import-clinc`` (``hotpath bench intent``, ``hotpath bench intent-train``:
:mod:`bench.intent`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from hotpath.errors import BadInput

__all__ = ["register"]

intent_app = typer.Typer(no_args_is_help=True, help="Intent model: train, evaluate, predict.")
DEFAULT_TEST = "data/intent/test.jsonl"


def _settings():
    from hotpath.config import load_settings

    return load_settings().intent


def _default_data() -> Path:
    from hotpath.intent.data import DATA_DIR

    return DATA_DIR / "test.jsonl"


DEFAULT_STEP_BUDGET = 4_000
"""Training steps when ``--epochs`` is not given. The industrial set (~1,900 lines, ~100 steps an
epoch) still gets its 20 epochs; a 150-intent set with its paraphrase-noise copies (~30,000 rows,
~940 steps an epoch) gets ~4, which fits the 20-minute budget on 2 cores (docs/intent.md)."""


@intent_app.command()
def train(
    data: Path = typer.Option(..., "--data", help="JSONL of {text, intent} to train on; the label set comes from it."),
    val: Optional[Path] = typer.Option(None, "--val", help="JSONL for calibration/selection (default: hold out 15% of --data)."),
    out: Path = typer.Option(..., "--out", help="Model directory to write."),
    epochs: Optional[int] = typer.Option(None, min=1, help="Passes over the data (default: 20, but at most "
                                         f"{DEFAULT_STEP_BUDGET:,} steps in all, so a 150-intent set trains in ~4 epochs)"),
    batch_size: int = typer.Option(32, min=1),
    lr: float = typer.Option(1e-3, min=0.0),
    hidden: int = typer.Option(128, min=8),
    layers: int = typer.Option(2, min=1),
    heads: int = typer.Option(2, min=1),
    intermediate: int = typer.Option(512, min=8),
    max_length: int = typer.Option(32, min=4, max=128),
    teacher: str = typer.Option("auto", help="MiniLM distillation: auto (when installed), yes, no."),
    max_steps: Optional[int] = typer.Option(None, min=1, help="Stop after this many steps (smoke runs)."),
    quantize: bool = typer.Option(True, help="Ship int8 when it holds validation accuracy."),
    int8_scope: str = typer.Option("embeddings", help="int8 for: embeddings (batch-invariant) or all (also MatMuls)."),
    keep_fp32: bool = typer.Option(False, help="Also keep model.fp32.onnx."),
    seed: int = typer.Option(0),
) -> None:
    """Train BERT-Tiny on FILE.jsonl, export ONNX (int8 if it holds), calibrate, write --out."""
    from hotpath.intent.artifact import train_and_export
    from hotpath.intent.data import load_examples
    from hotpath.intent.train import TrainConfig

    if teacher not in {"auto", "yes", "no"}:
        raise BadInput(f"--teacher must be auto, yes or no, got {teacher!r}", field="teacher")
    if int8_scope not in {"embeddings", "all"}:
        raise BadInput(f"--int8-scope must be embeddings or all, got {int8_scope!r}", field="int8_scope")
    if hidden % heads:
        raise BadInput(f"--hidden {hidden} must be divisible by --heads {heads}", field="heads")
    if epochs is None:  # the default: 20 epochs of a small set, a step budget for a large one
        epochs, max_steps = 20, max_steps or DEFAULT_STEP_BUDGET
    cfg = TrainConfig(hidden=hidden, layers=layers, heads=heads, intermediate=intermediate, max_length=max_length,
                      epochs=epochs, batch_size=batch_size, lr=lr, teacher=teacher, max_steps=max_steps, seed=seed)
    train_examples = load_examples(data)
    val_examples = load_examples(val) if val is not None else None
    meta = train_and_export(train_examples, val_examples, out, cfg, quantize=quantize, int8_scope=int8_scope, keep_fp32=keep_fp32,
                            threshold=_settings().threshold, log=lambda line: typer.echo(line))
    typer.echo(f"wrote {out} ({'int8' if meta['quantized'] else 'fp32'}, temperature {meta['temperature']:.3f})")


@intent_app.command("eval")
def evaluate(
    model: Optional[Path] = typer.Option(None, "--model", help="Model directory (default: the configured/shipped one)."),
    data: Optional[Path] = typer.Option(None, "--data", help=f"Labelled JSONL (default: {DEFAULT_TEST})."),
    threshold: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="Routing threshold (default: the tenant's)."),
    tenant: Optional[str] = typer.Option(None, help="Tenant whose threshold applies."),
    model_file: str = typer.Option("model.onnx", help="Graph inside the model directory."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Accuracy, per-intent and macro F1, oos recall/precision at the threshold, ECE and confusion on a labelled file."""
    from hotpath.intent.artifact import evaluate_dir
    from hotpath.intent.data import load_examples

    settings = _settings()
    examples = load_examples(data or _default_data())
    t = threshold if threshold is not None else settings.threshold_for(tenant)
    report = evaluate_dir(model or settings.resolved_model_dir(), examples, t, model_file)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    for key in ("n", "threshold", "accuracy", "accuracy_at_threshold", "macro_f1", "oos_recall", "oos_precision",
                "to_cloud_rate_non_command", "command_to_cloud_rate", "command_local_wrong_rate", "ece"):
        value = report[key]
        typer.echo(f"{key:28s} {value:.4f}" if isinstance(value, float) else f"{key:28s} {value}")
    typer.echo("")
    typer.echo(f"{'per intent':32s} {'precision':>9s} {'recall':>7s} {'f1':>7s} {'support':>7s}")

    def cell(v: object) -> str:
        return f"{v:.3f}" if isinstance(v, float) else "-"

    for name, row in report["per_intent"].items():  # type: ignore[union-attr]
        typer.echo(f"{name[:32]:32s} {cell(row['precision']):>9s} {cell(row['recall']):>7s} {cell(row['f1']):>7s} "
                   f"{row['support']:>7d}")


@intent_app.command()
def predict(
    text: str = typer.Argument(..., help="A transcript."),
    model: Optional[Path] = typer.Option(None, "--model"),
    tenant: Optional[str] = typer.Option(None, help="Tenant whose threshold applies."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Intent, confidence, slots and the routing decision (local command or cloud) for TEXT."""
    from hotpath.intent.model import load_classifier

    settings = _settings()
    result = load_classifier(settings, model).predict(text)
    threshold = settings.threshold_for(tenant)
    route = "local" if result.is_local_command(threshold, set(settings.local_intents)) else "cloud"
    if as_json:
        typer.echo(json.dumps({**result.to_dict(), "threshold": threshold, "route": route}, indent=2))
        return
    slots = ", ".join(f"{k}={v}" for k, v in result.to_dict()["slots"].items() if v) or "none"  # type: ignore[union-attr]
    typer.echo(f"intent      {result.intent.value}")
    typer.echo(f"confidence  {result.confidence:.3f}")
    typer.echo(f"slots       {slots}")
    typer.echo(f"route       {route} (threshold {threshold:g})")
    if result.reason:
        typer.echo(f"reason      {result.reason}")


@intent_app.command("import-clinc")
def import_clinc(
    file: Path = typer.Argument(..., help="CLINC150's data_full.json (or data_small/imbalanced/oos_plus.json)."),
    out: Path = typer.Option(..., "--out", help="Directory for train.jsonl, val.jsonl, test.jsonl."),
) -> None:
    """Convert a CLINC150 release file (150 intents + oos) into train/val/test JSONL for `intent train`."""
    from hotpath.intent.clinc import convert_clinc

    counts = convert_clinc(file, out)
    for split, n in counts.items():
        typer.echo(f"{out / (split + '.jsonl')}: {n} lines")


def register(root: typer.Typer, bench: typer.Typer) -> None:
    root.add_typer(intent_app, name="intent")
