"""The shipped model: accuracy targets on the test split, calibrated confidences, clear answers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hotpath.errors import BadInput, ModelError
from hotpath.intent.artifact import evaluate_dir
from hotpath.intent.model import EMPTY_REASON, OnnxIntentClassifier, load_classifier
from hotpath.intent.settings import SHIPPED_MODEL_DIR, IntentSettings
from hotpath.intent.types import Intent, IntentClassifier


def test_shipped_model_meets_the_targets_on_the_test_split(test_split) -> None:
    m = evaluate_dir(SHIPPED_MODEL_DIR, test_split, threshold=0.85)
    assert m["n"] == len(test_split) >= 300
    assert m["accuracy"] >= 0.97, m  # in-scope accuracy
    assert m["to_cloud_rate_non_command"] >= 0.90, m  # oos + GENERAL_QUERY routed to the cloud
    assert m["command_to_cloud_rate"] <= 0.03, m  # commands wrongly sent to the cloud
    assert m["ece"] < 0.05, m


def test_shipped_artifact_is_small_int8_and_documented() -> None:
    files = {p.name: p.stat().st_size for p in SHIPPED_MODEL_DIR.iterdir()}
    assert {"model.onnx", "vocab.txt", "meta.json", "MODEL_CARD.md"} <= set(files)
    assert sum(files.values()) < 8_000_000
    meta = json.loads((SHIPPED_MODEL_DIR / "meta.json").read_text())
    assert meta["quantized"] is True and meta["int8_scope"] == "embeddings"
    assert meta["bert"]["layers"] == 2 and meta["bert"]["hidden"] == 128 and meta["bert"]["heads"] == 2
    assert meta["labels"] == [i.value for i in Intent]


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Call technician Nguyen", Intent.DIAL_PERSON),
        ("Dial the safety officer", Intent.DIAL_PERSON),
        ("Need a supervisor at loading dock 4", Intent.SUMMON_TEAM),
        ("Summon cleaning crew to aisle 5", Intent.SUMMON_TEAM),
        ("Get the floor lead here now", Intent.SUMMON_TEAM),
        ("What is the PPE policy for zone B?", Intent.GENERAL_QUERY),
        ("How do I report a broken scanner?", Intent.GENERAL_QUERY),
        ("man down at dock 3", Intent.EMERGENCY),
        ("never mind", Intent.CANCEL),
        ("tell me a joke", Intent.OOS),
    ],
)
def test_design_note_examples(shipped: OnnxIntentClassifier, text: str, intent: Intent) -> None:
    assert shipped.predict(text).intent is intent


def test_result_carries_calibrated_scores_and_slots(shipped: OnnxIntentClassifier) -> None:
    r = shipped.predict("need a supervisor at loading dock four")
    assert r.intent is Intent.SUMMON_TEAM and r.reason is None
    assert sum(r.scores.values()) == pytest.approx(1.0, abs=1e-6)
    assert r.confidence == pytest.approx(max(r.scores.values()))
    assert r.slots.team == "supervisor" and r.slots.location == "dock 4"
    assert r.is_local_command(0.85) == (r.confidence > 0.85)
    d = shipped.predict("call technician nguyen").to_dict()
    assert d["intent"] == "DIAL_PERSON" and d["slots"]["person"] == "technician nguyen"


def test_empty_text_is_answered_not_raised(shipped: OnnxIntentClassifier) -> None:
    for text in ["", "   ", "\n\t"]:
        r = shipped.predict(text)
        assert r.intent is Intent.OOS and r.confidence == 1.0 and r.reason == EMPTY_REASON
        assert not r.is_local_command(0.0)
    batch = shipped.predict_batch(["", "call john", " "])
    assert [r.reason for r in batch] == [EMPTY_REASON, None, EMPTY_REASON]
    assert batch[1].intent is Intent.DIAL_PERSON


def test_odd_inputs(shipped: OnnxIntentClassifier) -> None:
    long = shipped.predict("please call technician nguyen " * 200)
    assert long.intent is Intent.DIAL_PERSON
    emoji = shipped.predict("🔥🔥🔥")  # all unknown to the vocab: an answer, never an exception
    assert emoji.reason is None and 0.0 < emoji.confidence <= 1.0
    assert shipped.predict("Gọi kỹ thuật viên Nguyễn").intent is Intent.DIAL_PERSON
    with pytest.raises(BadInput):
        shipped.predict_batch([None])  # type: ignore[list-item]


def test_batch_equals_single(shipped: OnnxIntentClassifier, test_split) -> None:
    texts = [e.text for e in test_split[:60]]
    batch = shipped.predict_batch(texts)
    for text, b in zip(texts, batch):
        s = shipped.predict(text)
        # padding is masked out exactly and only the embedding table is int8, so batch-mates
        # do not move an utterance's confidence (int8 MatMuls would, by up to ~0.02)
        assert s.intent is b.intent and s.confidence == pytest.approx(b.confidence, abs=1e-5)


def test_tenant_thresholds_route_differently(shipped: OnnxIntentClassifier) -> None:
    settings = IntentSettings(threshold=0.85, tenant_thresholds={"strict": 0.999999, "lax": 0.2})
    r = shipped.predict("call technician nguyen")
    assert r.is_local_command(settings.threshold_for(None))
    assert r.is_local_command(settings.threshold_for("unknown-tenant"))
    assert not r.is_local_command(settings.threshold_for("strict"))
    assert not shipped.predict("what is the ppe policy").is_local_command(settings.threshold_for("lax"))
    with pytest.raises(ValueError):
        IntentSettings(tenant_thresholds={"x": 1.5})


def test_settings_pick_the_model_dir(tmp_path: Path) -> None:
    assert IntentSettings().resolved_model_dir() == SHIPPED_MODEL_DIR
    assert isinstance(load_classifier(IntentSettings()), IntentClassifier)
    with pytest.raises(ModelError, match="does not exist"):
        load_classifier(IntentSettings(model_dir=tmp_path / "missing"))


def test_broken_model_dirs_are_model_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no meta.json"):
        OnnxIntentClassifier(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(SHIPPED_MODEL_DIR, broken)
    (broken / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load"):
        OnnxIntentClassifier(broken)
    meta = json.loads((broken / "meta.json").read_text())
    for labels, message in [(["DIAL_PERSON", " "], "bad label ' '"), (["oos", "oos"], "a label twice"),
                            (["PIZZA"], "at least two labels")]:
        (broken / "meta.json").write_text(json.dumps({**meta, "labels": labels}))
        with pytest.raises(ModelError, match=message):
            OnnxIntentClassifier(broken)
    # any label set loads, but its size must match the graph's outputs
    shutil.copyfile(SHIPPED_MODEL_DIR / "model.onnx", broken / "model.onnx")
    (broken / "meta.json").write_text(json.dumps({**meta, "labels": ["DIAL_PERSON", "PIZZA"]}))
    with pytest.raises(ModelError, match="has 6 outputs but meta.json names 2 labels"):
        OnnxIntentClassifier(broken)

