"""Evaluation of an intent model on labelled utterances at a routing threshold.

Definitions (``threshold`` = t):
- ``accuracy``: argmax accuracy on in-scope utterances (label other than ``oos``).
- ``accuracy_at_threshold``: in-scope utterances whose argmax is right *and* whose confidence is
  above t (the CLINC150 way of counting: an in-scope utterance rejected as out-of-scope is wrong).
- ``macro_f1``: argmax F1 averaged over the labels present in the data; ``per_intent``: precision,
  recall, F1 and support (gold count) of every label of the model, argmax.
- ``oos_recall`` / ``oos_precision``: an utterance counts as predicted out-of-scope when its top
  intent is ``oos`` or its confidence is <= t.
- ``to_cloud_rate_non_command``: share of ``oos`` + ``GENERAL_QUERY`` that is *not* run locally
  (target >= 0.90); ``command_to_cloud_rate``: share of commands sent to the cloud (target <= 0.03);
  ``command_local_wrong_rate``: commands run locally as the wrong command.
- ``ece``: 15-bin expected calibration error of the calibrated probabilities.
"""

from __future__ import annotations

import numpy as np

from hotpath.intent.calibration import expected_calibration_error
from hotpath.intent.types import COMMAND_INTENTS, OOS_LABEL

__all__ = ["evaluate_probs"]


def evaluate_probs(probs: np.ndarray, labels: list[str], gold: list[str], threshold: float) -> dict[str, object]:
    probs = np.asarray(probs, dtype=np.float64)
    pred_idx = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    pred = [labels[i] for i in pred_idx]
    gold_arr = np.array(gold)
    pred_arr = np.array(pred)
    oos = OOS_LABEL
    commands = {i.value for i in COMMAND_INTENTS}

    in_scope = gold_arr != oos
    accuracy = float((pred_arr[in_scope] == gold_arr[in_scope]).mean()) if in_scope.any() else float("nan")
    seen = set(gold) | set(pred)
    f1s = []
    per_intent: dict[str, dict[str, float | int | None]] = {}
    for name in list(labels) + sorted(set(gold) - set(labels)):
        is_pred, is_gold = pred_arr == name, gold_arr == name
        tp = int((is_pred & is_gold).sum())
        fp = int((is_pred & ~is_gold).sum())
        fn = int((~is_pred & is_gold).sum())
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
        if name in seen and name in labels:
            f1s.append(f1)
        per_intent[name] = {"precision": tp / (tp + fp) if tp + fp else None,
                            "recall": tp / (tp + fn) if tp + fn else None,
                            "f1": f1 if tp + fp + fn else None, "support": int(is_gold.sum())}
    pred_oos = (pred_arr == oos) | (conf <= threshold)
    true_oos = gold_arr == oos
    local = np.array([p in commands for p in pred]) & (conf > threshold)
    is_command = np.isin(gold_arr, list(commands))
    non_command = ~is_command
    label_index = {name: i for i, name in enumerate(labels)}
    gold_idx = np.array([label_index.get(g, -1) for g in gold])

    def rate(num: np.ndarray, den: np.ndarray) -> float | None:
        return float(num.sum() / den.sum()) if den.sum() else None

    confusion: dict[str, dict[str, int]] = {}
    for g, p in zip(gold, pred):
        confusion.setdefault(g, {}).setdefault(p, 0)
        confusion[g][p] += 1
    known = gold_idx >= 0
    return {
        "n": len(gold),
        "threshold": threshold,
        "accuracy": accuracy,
        "accuracy_at_threshold": (float(((pred_arr == gold_arr) & ~pred_oos)[in_scope].mean())
                                  if in_scope.any() else float("nan")),
        "accuracy_all": float((pred_arr == gold_arr).mean()),
        "macro_f1": float(np.mean(f1s)) if f1s else float("nan"),
        "oos_recall": rate(pred_oos & true_oos, true_oos),
        "oos_precision": rate(pred_oos & true_oos, pred_oos),
        "to_cloud_rate_non_command": rate(~local & non_command, non_command),
        "command_to_cloud_rate": rate(~local & is_command, is_command),
        "command_local_wrong_rate": rate(local & is_command & (pred_arr != gold_arr), is_command),
        "ece": expected_calibration_error(probs[known], gold_idx[known]) if known.any() else None,
        "per_intent": per_intent,
        "confusion": confusion,
    }
