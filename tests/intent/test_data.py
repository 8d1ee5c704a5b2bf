"""Labelled files: clear errors naming the line; the shipped dataset's size, labels and splits."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hotpath.errors import BadInput
from hotpath.intent.data import DATA_DIR, Example, load_examples, stratified_split
from hotpath.intent.types import Intent


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_loads_and_ignores_blank_lines_and_extra_keys(tmp_path: Path) -> None:
    path = _write(tmp_path, ['{"text": "call john", "intent": "DIAL_PERSON", "source": "x"}', "",
                             '{"text": " chat ", "intent": "OOS"}'])
    assert load_examples(path) == [Example("call john", Intent.DIAL_PERSON), Example("chat", Intent.OOS)]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "not valid JSON"),
        ('["call john", "DIAL_PERSON"]', "expected an object"),
        ('{"text": "", "intent": "CANCEL"}', "'text' must be a non-empty string"),
        ('{"text": 5, "intent": "CANCEL"}', "'text' must be a non-empty string"),
        ('{"text": "call john", "intent": 3}', "label must be a string, got 3"),
        ('{"text": "call john", "intent": null}', "label must be a string, got null"),
        ('{"text": "call john", "intent": "  "}', "label is empty"),
        ('{"text": "call john", "intent": "a\\u0007b"}', "holds a control character"),
        ('{"text": "call john", "intent": "' + "x" * 101 + '"}', "longer than 100 characters"),
        ('{"text": "call john", "intent": "CANCEL", "label": "cancel"}', "'intent' 'CANCEL' and 'label' 'cancel' disagree"),
        ('{"text": "call john"}', "no 'intent' (or 'label') field"),
    ],
)
def test_bad_line_is_named(tmp_path: Path, bad: str, message: str) -> None:
    path = _write(tmp_path, ['{"text": "call john", "intent": "DIAL_PERSON"}', bad])
    with pytest.raises(BadInput) as info:
        load_examples(path)
    assert f"{path}:2:" in info.value.message and message in info.value.message


def test_missing_empty_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="does not exist"):
        load_examples(tmp_path / "nope.jsonl")
    empty = _write(tmp_path, [""])
    with pytest.raises(BadInput, match="no labelled utterances"):
        load_examples(empty)
    binary = tmp_path / "b.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(BadInput, match="not UTF-8"):
        load_examples(binary)


def test_stratified_split_keeps_every_intent() -> None:
    examples = [Example(f"t{i}", intent) for intent in Intent for i in range(10)]
    keep, held = stratified_split(examples, 0.2, seed=1)
    assert len(held) == 12 and len(keep) == 48
    assert {e.intent for e in held} == set(Intent)
    assert not {e.text + e.intent.value for e in held} & {e.text + e.intent.value for e in keep}


def test_shipped_dataset_size_labels_and_disjoint_splits() -> None:
    splits = {name: load_examples(DATA_DIR / f"{name}.jsonl") for name in ("train", "val", "test")}
    total = sum(len(v) for v in splits.values())
    assert total >= 2000
    for examples in splits.values():
        assert {e.intent for e in examples} == set(Intent)

    def key(text: str) -> str:
        return re.sub(r"[^\w ]+", "", text.lower()).strip()

    keys = {name: {key(e.text) for e in v} for name, v in splits.items()}
    assert not keys["train"] & keys["test"]
    assert not keys["train"] & keys["val"]
    assert not keys["val"] & keys["test"]
    # hand-written seeds are part of the data, and every row names its source
    rows = [json.loads(line) for line in (DATA_DIR / "train.jsonl").read_text().splitlines()]
    assert {r["source"] for r in rows} == {"seed", "template"}
