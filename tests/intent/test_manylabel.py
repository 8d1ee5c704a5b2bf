"""Any label set trains: labels come from the data, the artifact and the runtime use them, eval reports
per-intent F1; CI trains a tiny slice of the synthetic many-label set (data/intent/manylabel.py)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.intent import _manylabel, synthetic_splits
from hotpath.errors import BadInput
from hotpath.intent.artifact import evaluate_dir
from hotpath.intent.clinc import convert_clinc
from hotpath.intent.data import Example, label_order, load_examples, stratified_split
from hotpath.intent.model import OnnxIntentClassifier
from hotpath.intent.replica import IntentReplica
from hotpath.intent.settings import IntentSettings
from hotpath.intent.types import COMMAND_INTENTS, Intent, IntentResult, Label, label_of

GEN = _manylabel()


def test_generator_is_deterministic_and_shaped_like_clinc150() -> None:
    a, b = GEN.generate(), GEN.generate()
    assert a == b
    labels = {r["intent"] for r in a["train"]}
    assert len(labels) == 151 and "oos" in labels  # 150 intents + oos
    counts = {s: {} for s in a}
    for s, rows in a.items():
        for r in rows:
            counts[s][r["intent"]] = counts[s].get(r["intent"], 0) + 1
    assert set(counts["train"].values()) == {100} and counts["val"]["oos"] == 100 and counts["test"]["oos"] == 1000
    assert {v for k, v in counts["test"].items() if k != "oos"} == {30}
    assert len(a["train"]) == 15_100
    texts = {s: {r["text"] for r in rows} for s, rows in a.items()}
    assert not texts["train"] & texts["test"] and not texts["train"] & texts["val"] and not texts["val"] & texts["test"]
    assert {r["source"] for rows in a.values() for r in rows} == {GEN.SOURCE}  # every line says it is synthetic
    # held-out phrasings: the held-out frames of an action never occur in training
    frame = GEN.ACTIONS["check"][8].split("{o}")[0].strip()  # "give me the status of my"
    assert not any(frame in t for t in texts["train"]) and any(frame in t for t in texts["test"])


def test_any_label_loads_and_orders(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"text": "book me a flight", "intent": "book_flight"},
        {"text": "never mind", "label": "cancel"},  # 'label' is an alias; lower-case 'cancel' is not CANCEL
        {"text": "call john", "intent": "DIAL_PERSON", "label": "DIAL_PERSON"},
        {"text": "tell me a joke", "intent": "OOS"},
        {"text": "translate hello", "intent": "translate", "source": "x"},
    ]) + "\n")
    examples = load_examples(path)
    assert [e.label for e in examples] == ["book_flight", "cancel", "DIAL_PERSON", "oos", "translate"]
    assert isinstance(examples[0].intent, Label) and examples[2].intent is Intent.DIAL_PERSON
    assert examples[3].intent is Intent.OOS and examples[1].intent not in COMMAND_INTENTS
    assert examples[0].where == f"{path}:1"
    assert label_order(examples) == ["DIAL_PERSON", "book_flight", "cancel", "translate", "oos"]
    assert label_order([Example("x", i) for i in reversed(Intent)]) == [i.value for i in Intent]
    assert label_of("book_flight").value == "book_flight" and label_of("oOs") is Intent.OOS
    r = IntentResult("book", label_of("book_flight"), 0.99)
    assert r.to_dict()["intent"] == "book_flight" and r.label == "book_flight"
    assert not r.is_local_command(0.5) and r.is_local_command(0.5, {"book_flight"})
    keep, held = stratified_split(examples * 4, 0.25)
    assert {e.label for e in held} == {e.label for e in examples} and len(held) == 5


def test_validation_label_missing_from_training_is_named(tmp_path: Path, intent_cli) -> None:
    runner, app = intent_cli
    train, val = tmp_path / "t.jsonl", tmp_path / "v.jsonl"
    train.write_text('{"text": "a", "intent": "x"}\n{"text": "b", "intent": "y"}\n')
    val.write_text('{"text": "a", "intent": "x"}\n{"text": "c", "intent": "z"}\n')
    res = runner.invoke(app, ["intent", "train", "--data", str(train), "--val", str(val), "--out", str(tmp_path / "m"),
                              "--teacher", "no", "--max-steps", "1"])
    assert res.exit_code != 0 and isinstance(res.exception, BadInput)
    assert f"{val}:2: validation label 'z' does not occur in the training data" in res.exception.message


@pytest.fixture(scope="module")
def slice_model(intent_cli, tmp_path_factory):
    """The CI slice: 20 intents of the synthetic set (12 training lines each + oos), trained briefly."""
    runner, app = intent_cli
    tmp = tmp_path_factory.mktemp("manylabel")
    paths = synthetic_splits(tmp, n_intents=20, n_train=12)
    out = tmp / "model"
    res = runner.invoke(app, ["intent", "train", "--data", str(paths["train"]), "--val", str(paths["val"]),
                              "--out", str(out), "--epochs", "12", "--hidden", "64", "--heads", "2",
                              "--intermediate", "128", "--max-length", "24", "--teacher", "no", "--batch-size", "16",
                              "--lr", "0.003", "--no-quantize"])
    assert res.exit_code == 0, res.output
    return out, paths, res.output


def test_slice_trains_with_its_own_label_set(slice_model) -> None:
    out, paths, output = slice_model
    assert "label set: 21 labels from the data" in output and "epoch 12/12" in output
    meta = json.loads((out / "meta.json").read_text())
    train = load_examples(paths["train"])
    assert meta["labels"] == label_order(train) and len(meta["labels"]) == 21 and meta["labels"][-1] == "oos"
    assert meta["bert"]["n_labels"] == 21
    clf = OnnxIntentClassifier(out)
    assert clf.logits(["book a flight", "x"]).shape == (2, 21)
    assert [i.value for i in clf.meta.intents] == meta["labels"]


def test_slice_model_learns_and_eval_reports_per_intent(slice_model, intent_cli) -> None:
    runner, app = intent_cli
    out, paths, _ = slice_model
    train = load_examples(paths["train"])
    fit = evaluate_dir(out, train, threshold=0.5)
    assert fit["accuracy"] > 0.9, fit["accuracy"]  # chance is 1/21: the label set was learned (1.0 when written)
    test = load_examples(paths["test"])
    report = evaluate_dir(out, test, threshold=0.5)
    assert report["accuracy"] > 0.4 and set(report["per_intent"]) == set(json.loads((out / "meta.json").read_text())["labels"])
    row = report["per_intent"]["oos"]
    assert row["support"] == sum(e.label == "oos" for e in test) and 0.0 <= (row["f1"] or 0.0) <= 1.0
    assert report["accuracy_at_threshold"] <= report["accuracy"]
    res = runner.invoke(app, ["intent", "eval", "--model", str(out), "--data", str(paths["test"]), "--threshold", "0.5"])
    assert res.exit_code == 0, res.output
    assert re.search(r"^per intent\s+precision\s+recall\s+f1\s+support$", res.output, re.M)
    assert re.search(r"^oos\s+[\d.-]+\s+[\d.-]+\s+[\d.-]+\s+\d+$", res.output, re.M), res.output
    assert len([ln for ln in res.output.splitlines() if re.match(r"^\S+\s+([\d.]+|-)\s+([\d.]+|-)\s+([\d.]+|-)\s+\d+$", ln)]) == 21


def test_replica_answers_custom_labels_and_routes_them_by_settings(slice_model) -> None:
    out, paths, _ = slice_model
    label = next(e for e in load_examples(paths["train"]) if e.label != "oos")

    async def run(settings: IntentSettings):
        replica = IntentReplica(settings)
        return await replica.route(label.text)

    answer = asyncio.run(run(IntentSettings(model_dir=out, threshold=0.0)))
    assert answer["intent"] in json.loads((out / "meta.json").read_text())["labels"]
    assert answer["route"] == "cloud"  # custom labels go to the cloud unless named local
    if answer["intent"] != "oos":
        local = asyncio.run(run(IntentSettings(model_dir=out, threshold=0.0, local_intents=[answer["intent"]])))
        assert local["route"] == "local"
    assert np.isclose(sum(answer["scores"].values()), 1.0)


def test_import_clinc_converts_the_release_format(tmp_path: Path, intent_cli) -> None:
    runner, app = intent_cli
    raw = {"train": [["book me a flight to paris", "book_flight"], ["what's my balance", "balance"]],
           "val": [["i need a flight", "book_flight"]], "test": [["how much money do i have", "balance"]],
           "oos_train": [["what is the tallest tree", "oos"]], "oos_val": [["sing", "oos"]], "oos_test": [["hi bob", "oos"]]}
    src = tmp_path / "data_full.json"
    src.write_text(json.dumps(raw))
    res = runner.invoke(app, ["intent", "import-clinc", str(src), "--out", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    train = load_examples(tmp_path / "c" / "train.jsonl")
    assert [e.label for e in train] == ["book_flight", "balance", "oos"]
    assert len(load_examples(tmp_path / "c" / "test.jsonl")) == 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**raw, "val": [["text only"]]}))
    with pytest.raises(BadInput, match=r"val\[0\] is not a \[text, label\] pair"):
        convert_clinc(bad, tmp_path / "d")
    del raw["oos_test"]
    bad.write_text(json.dumps(raw))
    out = subprocess.run([sys.executable, "-m", "hotpath.cli", "intent", "import-clinc", str(bad), "--out", str(tmp_path / "e")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr and "no 'oos_test' list" in out.stderr


def test_bench_intent_train_smoke(intent_cli, tmp_path: Path) -> None:
    runner, app = intent_cli
    res = runner.invoke(app, ["bench", "intent-train", "--intents", "4", "--per-intent", "6", "--teacher", "no",
                              "--max-steps", "2", "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["dataset"]["source"].startswith("SYNTHETIC")
    (run,) = report["runs"]
    assert run["teacher"] is None and run["seconds_total"] > 0 and run["cpu_seconds"] > 0
    assert [s["threshold"] for s in run["sweep"]] == [0.3, 0.5, 0.7, 0.85, 0.9, 0.95]
    assert 0.0 <= run["test"]["oos_recall"] <= 1.0 and len(run["worst_intents"]) <= 5


def test_long_epochs_print_progress_inside_the_epoch(intent_cli, tmp_path: Path) -> None:
    runner, app = intent_cli
    paths = synthetic_splits(tmp_path, n_intents=10, n_train=20)  # 200 + 10 oos lines
    res = runner.invoke(app, ["intent", "train", "--data", str(paths["train"]), "--val", str(paths["val"]),
                              "--out", str(tmp_path / "m"), "--epochs", "1", "--batch-size", "1", "--max-steps", "120",
                              "--hidden", "16", "--heads", "2", "--intermediate", "32", "--max-length", "16",
                              "--teacher", "no", "--no-quantize"])
    assert res.exit_code == 0, res.output
    assert re.search(r"^  epoch 1: step 52/210 loss \d+\.\d+ \(\d+s\)$", res.output, re.M), res.output
