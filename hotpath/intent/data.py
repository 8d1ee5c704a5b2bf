"""Labelled utterance files: JSON lines of ``{"text": ..., "intent": ...}``.

The format (one JSON object per line, blank lines skipped, UTF-8):

- ``text`` (required): the utterance, a non-empty string.
- ``intent`` (required; ``label`` is accepted as its alias): the label, any non-empty string of at
  most 100 characters without control characters. The label set of a model comes from its
  training data: the six built-in :class:`~hotpath.intent.types.Intent` values of the industrial
  edge, a tenant's own commands, or a benchmark's 150 intents. ``oos`` (any case) is the
  out-of-scope label; a built-in value matches exactly (``DIAL_PERSON``), other labels are kept as
  written (``book_flight``).
- other keys (``source``, ``split``, ...) are ignored.

Every problem is reported as :class:`~hotpath.errors.BadInput` naming the file, the line and the
problem, before anything is trained.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from hotpath.errors import BadInput
from hotpath.intent.types import OOS_LABEL, Intent, IntentLabel, Label, label_of

__all__ = ["Example", "load_examples", "stratified_split", "LABEL_ORDER", "parse_intent", "parse_label",
           "label_order", "check_labels_known", "DATA_DIR", "MAX_LABEL_LENGTH"]

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "intent"
LABEL_ORDER: tuple[Intent, ...] = tuple(Intent)
"""The built-in labels in output order (the industrial model's)."""
MAX_LABEL_LENGTH = 100
_BY_VALUE = {i.value.lower(): i for i in Intent}


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    intent: IntentLabel
    where: str | None = field(default=None, compare=False)
    """``file:line`` it was read from (for error messages); not part of equality."""

    @property
    def label(self) -> str:
        return self.intent.value


def parse_intent(value: object) -> Intent | None:
    """A built-in :class:`Intent` by its wire value, case-insensitively; None for anything else."""
    return _BY_VALUE.get(value.strip().lower()) if isinstance(value, str) else None


def parse_label(value: object) -> IntentLabel | str:
    """The canonical label of ``value``, or a string saying what is wrong with it."""
    if not isinstance(value, str):
        return f"label must be a string, got {json.dumps(value)}"
    name = value.strip()
    if not name:
        return "label is empty"
    if len(name) > MAX_LABEL_LENGTH:
        return f"label is longer than {MAX_LABEL_LENGTH} characters"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return f"label {name!r} holds a control character"
    return label_of(name)


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
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            raise BadInput(f"{where}: 'text' must be a non-empty string", field="data")
        if "intent" in row and "label" in row and row["intent"] != row["label"]:
            raise BadInput(f"{where}: 'intent' {row['intent']!r} and 'label' {row['label']!r} disagree", field="data")
        if "intent" not in row and "label" not in row:
            raise BadInput(f"{where}: no 'intent' (or 'label') field", field="data")
        label = parse_label(row["intent"] if "intent" in row else row["label"])
        if not isinstance(label, (Intent, Label)):
            raise BadInput(f"{where}: {label}", field="data")
        examples.append(Example(text.strip(), label, where))
    if not examples:
        raise BadInput(f"{path} holds no labelled utterances", field="data")
    return examples


def label_order(examples: Iterable[Example]) -> list[str]:
    """The output order of a label set: the built-in commands and queries in :class:`Intent` order,
    then the other labels sorted, then ``oos`` last. For the six built-in labels this is
    ``[i.value for i in Intent]``, the shipped model's order."""
    present = {e.label for e in examples}
    builtin = [i.value for i in LABEL_ORDER if i is not Intent.OOS and i.value in present]
    custom = sorted(present - set(builtin) - {OOS_LABEL})
    return builtin + custom + ([OOS_LABEL] if OOS_LABEL in present else [])


def check_labels_known(examples: Iterable[Example], labels: Iterable[str], what: str = "validation") -> None:
    """Raise BadInput at the first example whose label is not in ``labels`` (e.g. a validation line
    whose intent never occurs in the training data)."""
    known = set(labels)
    for e in examples:
        if e.label not in known:
            where = f"{e.where}: " if e.where else ""
            raise BadInput(f"{where}{what} label {e.label!r} does not occur in the training data", field="val")


def stratified_split(
    examples: list[Example], fraction: float, seed: int = 0
) -> tuple[list[Example], list[Example]]:
    """Split off about ``fraction`` of each intent (at least one where an intent has two or more)."""
    rng = random.Random(seed)
    keep: list[Example] = []
    held: list[Example] = []
    groups: dict[str, list[Example]] = {}
    for e in examples:
        groups.setdefault(e.label, []).append(e)
    for name in label_order(examples):
        group = groups[name]
        rng.shuffle(group)
        n = round(len(group) * fraction)
        if n == 0 and len(group) >= 2:
            n = 1
        held += group[:n]
        keep += group[n:]
    return keep, held
