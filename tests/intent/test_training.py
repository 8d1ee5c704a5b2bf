"""CI trains a tiny BERT for a few steps through the CLI: the exported ONNX matches the JAX forward
on the same weights, int8 stays close, and train -> eval -> predict runs end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from hotpath.intent.bert import BertConfig, param_shapes
from hotpath.intent.data import Example
from hotpath.intent.export import quantize_int8
from hotpath.intent.model import OnnxIntentClassifier
from hotpath.intent.train import TrainedModel, predict_logits
from hotpath.intent.types import Intent

TEXTS = {
    Intent.DIAL_PERSON: ["call john", "dial the safety officer", "ring maria", "phone tran"],
    Intent.SUMMON_TEAM: ["send security to gate 2", "need a supervisor at dock 4", "summon cleaning crew"],
    Intent.EMERGENCY: ["help", "fire in aisle 5", "man down"],
    Intent.CANCEL: ["cancel", "never mind", "scratch that"],
    Intent.GENERAL_QUERY: ["what is the ppe policy", "how do i report a broken scanner"],
    Intent.OOS: ["tell me a joke", "what's the weather"],
}
EXAMPLES = [Example(t, i) for i, texts in TEXTS.items() for t in texts]


def _session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def tiny(intent_cli, tmp_path_factory):
    """One tiny CLI training run (2 layers, hidden 32, 3 steps, no teacher), fp32 graph kept."""
    runner, app = intent_cli
    tmp = tmp_path_factory.mktemp("tiny")
    data = tmp / "tenant.jsonl"
    data.write_text("".join(json.dumps({"text": e.text, "intent": e.intent.value}) + "\n" for e in EXAMPLES * 2))
    out = tmp / "model"
    res = runner.invoke(app, ["intent", "train", "--data", str(data), "--out", str(out), "--epochs", "1",
                              "--max-steps", "3", "--hidden", "32", "--heads", "2", "--intermediate", "64",
                              "--max-length", "16", "--teacher", "no", "--batch-size", "8", "--keep-fp32",
                              "--lr", "0.005"])
    assert res.exit_code == 0, res.output
    return out, data, res.output


def _trained_from_onnx(out: Path) -> TrainedModel:
    """The JAX model holding exactly the weights written into the fp32 graph."""
    meta = json.loads((out / "meta.json").read_text())
    bert = BertConfig(**meta["bert"])
    inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(out / "model.fp32.onnx")).graph.initializer}
    params = {name: inits[name] for name in param_shapes(bert) if not name.startswith("dist_")}
    for name, shape in param_shapes(bert).items():
        if not name.startswith("dist_"):
            assert params[name].shape == shape
    return TrainedModel(params, bert, meta["labels"], teacher_used=False)


def test_training_reports_progress_and_writes_the_artifact(tiny) -> None:
    out, _, output = tiny
    assert "no --val given: held out" in output
    assert "epoch 1/1 loss" in output and "val_acc" in output and f"wrote {out}" in output
    assert {p.name for p in out.iterdir()} >= {"model.onnx", "model.fp32.onnx", "vocab.txt", "meta.json", "MODEL_CARD.md"}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["labels"] == [i.value for i in Intent] and meta["max_length"] == 16
    assert meta["temperature"] > 0 and np.isfinite(meta["history"][-1]["loss"])
    assert meta["bert"]["hidden"] == 32 and meta["bert"]["layers"] == 2


def test_exported_onnx_matches_jax_forward(tiny, tmp_path: Path) -> None:
    out, _, _ = tiny
    model = _trained_from_onnx(out)
    clf = OnnxIntentClassifier(out, model_file="model.fp32.onnx")
    texts = ["call technician nguyen at loading dock four please", "help", "", "Gọi Nguyễn 911 " * 10]
    ids, mask = clf.tokenizer.encode_batch(texts)  # padded: exercises the attention mask and pooling
    assert ids.shape == (4, 16)
    reference = predict_logits(model, ids, mask)
    got = clf.logits(texts)
    assert got.shape == (4, 6)
    assert np.abs(reference).max() > 1e-3  # trained weights, not an all-zero output
    np.testing.assert_allclose(got, reference, atol=1e-4, rtol=1e-4)
    alone = clf.logits([texts[1]])  # unpadded single text == its padded batch row
    np.testing.assert_allclose(alone[0], got[1], atol=1e-5)
    q = quantize_int8(out / "model.fp32.onnx", tmp_path / "m8.onnx")
    assert q.stat().st_size < (out / "model.fp32.onnx").stat().st_size / 2.5
    q_logits = _session(q).run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
    assert np.abs(q_logits - reference).max() < 0.05 * max(1.0, np.abs(reference).max())


def test_eval_and_predict_on_the_trained_model(intent_cli, tiny) -> None:
    runner, app = intent_cli
    out, data, _ = tiny
    res = runner.invoke(app, ["intent", "eval", "--model", str(out), "--data", str(data), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    for key in ("accuracy", "macro_f1", "oos_recall", "oos_precision", "ece", "confusion"):
        assert key in report
    assert sum(sum(row.values()) for row in report["confusion"].values()) == len(EXAMPLES) * 2

    res = runner.invoke(app, ["intent", "predict", "--model", str(out), "--json", "call john"])
    assert res.exit_code == 0, res.output
    answer = json.loads(res.output)
    assert answer["intent"] in {i.value for i in Intent} and answer["route"] in {"local", "cloud"}
    assert OnnxIntentClassifier(out).predict("call john").intent.value == answer["intent"]
