"""`hotpath intent predict|eval` and `hotpath bench intent` on the shipped model; errors are one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_predict_prints_intent_confidence_slots_route(intent_cli) -> None:
    runner, app = intent_cli
    res = runner.invoke(app, ["intent", "predict", "Need a supervisor at loading dock four"])
    assert res.exit_code == 0, res.output
    assert "intent      SUMMON_TEAM" in res.output
    assert "team=supervisor" in res.output and "location=dock 4" in res.output
    assert "route       local (threshold 0.85)" in res.output, res.output
    res = runner.invoke(app, ["intent", "predict", "What is the PPE policy for zone B?"])
    assert "GENERAL_QUERY" in res.output and "route       cloud" in res.output


def test_predict_empty_text_gives_a_reason(intent_cli) -> None:
    runner, app = intent_cli
    res = runner.invoke(app, ["intent", "predict", "--json", ""])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["intent"] == "oos" and out["reason"] == "empty transcript" and out["route"] == "cloud"


def test_eval_defaults_to_shipped_model_and_test_split(intent_cli) -> None:
    runner, app = intent_cli
    res = runner.invoke(app, ["intent", "eval", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["accuracy"] >= 0.97 and report["threshold"] == 0.85
    assert set(report["confusion"]) == {"DIAL_PERSON", "SUMMON_TEAM", "EMERGENCY", "CANCEL", "GENERAL_QUERY", "oos"}


def test_bench_runs_and_reports_percentiles(intent_cli) -> None:
    runner, app = intent_cli
    res = runner.invoke(app, ["bench", "intent", "--n", "50", "--batch-size", "8", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["single"]["p99_us"] >= report["single"]["p50_us"] > 0
    assert report["batched"]["utterances_per_s"] > 0 and report["batched"]["batch_size"] == 8


def test_bad_data_line_is_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "call john", "intent": "DIAL_PERSON"}\n{"text": "x", "intent": 7}\n')
    out = subprocess.run([sys.executable, "-m", "hotpath.cli", "intent", "eval", "--data", str(bad)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert f"{bad}:2: label must be a string, got 7" in out.stderr
