"""Temperature scaling, ECE and the evaluation metrics on hand-made numbers."""

from __future__ import annotations

import numpy as np
import pytest

from hotpath.intent.calibration import expected_calibration_error, fit_temperature, softmax
from hotpath.intent.metrics import evaluate_probs


def test_fit_temperature_recovers_the_generating_temperature() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2.0, (4000, 4))
    labels = np.array([rng.choice(4, p=p) for p in softmax(true_logits)])
    # an over-confident model: logits three times too large
    t = fit_temperature(true_logits * 3.0, labels)
    assert t == pytest.approx(3.0, rel=0.1)
    assert expected_calibration_error(softmax(true_logits * 3.0, t), labels) < expected_calibration_error(
        softmax(true_logits * 3.0), labels
    )


def test_ece_extremes() -> None:
    labels = np.array([0, 1, 2, 0])
    perfect = np.eye(3)[labels]
    assert expected_calibration_error(perfect, labels) == pytest.approx(0.0)
    wrong = np.eye(3)[(labels + 1) % 3]
    assert expected_calibration_error(wrong, labels) == pytest.approx(1.0)


def test_evaluate_probs_threshold_routing_and_confusion() -> None:
    labels = ["DIAL_PERSON", "GENERAL_QUERY", "oos"]
    probs = np.array([
        [0.95, 0.03, 0.02],  # DIAL, confident -> local, correct
        [0.80, 0.10, 0.10],  # DIAL, below threshold -> cloud (a command sent to the cloud)
        [0.10, 0.85, 0.05],  # GQ -> cloud, correct
        [0.90, 0.05, 0.05],  # oos predicted DIAL confidently -> wrongly local
        [0.05, 0.05, 0.90],  # oos -> cloud, correct
    ])
    gold = ["DIAL_PERSON", "DIAL_PERSON", "GENERAL_QUERY", "oos", "oos"]
    m = evaluate_probs(probs, labels, gold, threshold=0.85)
    assert m["accuracy"] == pytest.approx(1.0)  # in-scope argmax: 3 of 3
    assert m["accuracy_all"] == pytest.approx(0.8)
    assert m["command_to_cloud_rate"] == pytest.approx(0.5)
    assert m["to_cloud_rate_non_command"] == pytest.approx(2 / 3)
    # predicted oos at 0.85: rows 1 (conf 0.80), 2 (conf 0.85 <= t) and 4 -> one true oos among three
    assert m["oos_recall"] == pytest.approx(0.5)
    assert m["oos_precision"] == pytest.approx(1 / 3)
    assert m["confusion"] == {"DIAL_PERSON": {"DIAL_PERSON": 2}, "GENERAL_QUERY": {"GENERAL_QUERY": 1},
                              "oos": {"DIAL_PERSON": 1, "oos": 1}}
    f1_dial = 2 * 2 / (2 * 2 + 1 + 0)
    assert m["macro_f1"] == pytest.approx((f1_dial + 1.0 + 2 * 1 / (2 * 1 + 0 + 1)) / 3)
