"""Convert CLINC150's ``data_full.json`` (the "oos eval" release) into this project's JSONL splits.

The file is a JSON object of lists of ``[text, label]`` pairs: ``train``, ``val``, ``test`` (150
intents) and ``oos_train``, ``oos_val``, ``oos_test`` (label ``oos``). The variants
(``data_small.json``, ``data_imbalanced.json``, ``data_oos_plus.json``) have the same keys. The
dataset does not ship in any package on the registries this project reaches, so nothing here
downloads it: a user who has the file converts it with ``hotpath intent import-clinc FILE --out DIR``.
"""

from __future__ import annotations

import json
from pathlib import Path

from hotpath.errors import BadInput

__all__ = ["convert_clinc", "SPLITS"]

SPLITS = {"train": ("train", "oos_train"), "val": ("val", "oos_val"), "test": ("test", "oos_test")}


def convert_clinc(path: Path, out_dir: Path) -> dict[str, int]:
    """Write ``train.jsonl``, ``val.jsonl``, ``test.jsonl`` under ``out_dir``; lines per split."""
    if not path.is_file():
        raise BadInput(f"CLINC file {path} does not exist", field="file")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"{path} is not a JSON file: {exc}", field="file") from exc
    if not isinstance(raw, dict):
        raise BadInput(f"{path}: expected a JSON object with train/val/test lists", field="file")
    rows: dict[str, list[dict[str, str]]] = {}
    for split, keys in SPLITS.items():
        rows[split] = []
        for key in keys:
            if key not in raw:
                raise BadInput(f"{path}: no {key!r} list (is this CLINC150's data_full.json?)", field="file")
            items = raw[key]
            if not isinstance(items, list):
                raise BadInput(f"{path}: {key!r} is not a list", field="file")
            for i, item in enumerate(items):
                if (not isinstance(item, list) or len(item) != 2 or not all(isinstance(x, str) for x in item)
                        or not item[0].strip() or not item[1].strip()):
                    raise BadInput(f"{path}: {key}[{i}] is not a [text, label] pair of strings", field="file")
                rows[split].append({"text": item[0], "intent": item[1], "source": f"clinc150:{key}"})
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, items in rows.items():
        (out_dir / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items), encoding="utf-8")
    return {split: len(items) for split, items in rows.items()}
