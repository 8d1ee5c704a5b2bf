"""Labelled utterance files: JSON lines of ``{"text": ..., "intent": ...}``.

``intent`` is one of the :class:`~hotpath.intent.types.Intent` wire values (``oos`` for
out-of-scope chatter); other keys (``source``) are ignored. Every problem is reported as
:class:`~hotpath.errors.BadInput` naming the file and line.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from hotpath.errors import BadInput
from hotpath.intent.types import Intent

__all__ = ["Example", "load_examples", "stratified_split", "LABEL_ORDER", "parse_intent", "DATA_DIR"]

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "intent"
LABEL_ORDER: tuple[Intent, ...] = tuple(Intent)
_BY_VALUE = {i.value.lower(): i for i in Intent}


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    intent: Intent


def parse_intent(value: object) -> Intent | None:
    return _BY_VALUE.get(value.strip().lower()) if isinstance(value, str) else None


def load_examples(path: Path | str) -> list[Example]:
    """Read a JSONL file of labelled utterances; raise BadInput naming the first bad line."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"data file {path} does not exist", field="data")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path} is not UTF-8 text: {exc}", field="data") from exc
    examples: list[Example] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{where}: not valid JSON ({exc.msg})", field="data") from exc
        if not isinstance(row, dict):
            raise BadInput(f"{where}: expected an object with 'text' and 'intent'", field="data")
        text, label = row.get("text"), row.get("intent")
        if not isinstance(text, str) or not text.strip():
            raise BadInput(f"{where}: 'text' must be a non-empty string", field="data")
        intent = parse_intent(label)
        if intent is None:
            known = ", ".join(i.value for i in Intent)
            raise BadInput(f"{where}: unknown intent {label!r} (known: {known})", field="data")
        examples.append(Example(text.strip(), intent))
    if not examples:
        raise BadInput(f"{path} holds no labelled utterances", field="data")
    return examples


def stratified_split(
    examples: list[Example], fraction: float, seed: int = 0
) -> tuple[list[Example], list[Example]]:
    """Split off about ``fraction`` of each intent (at least one where an intent has two or more)."""
    rng = random.Random(seed)
    keep: list[Example] = []
    held: list[Example] = []
    for intent in LABEL_ORDER:
        group = [e for e in examples if e.intent is intent]
        rng.shuffle(group)
        n = round(len(group) * fraction)
        if n == 0 and len(group) >= 2:
            n = 1
        held += group[:n]
        keep += group[n:]
    return keep, held
