"""``hotpath ab ...`` end to end in a subprocess: check, report (JSON + PNG) from a real event log,
export to a local Amplitude, simulate."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from hotpath.ab.events import Exposure, Outcome, append_events
from hotpath.config import load_settings
from hotpath.streams.embedded_log import EmbeddedEventLog

from .test_amplitude import KEY, FakeAmplitude


def hp(*args: str, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("HOTPATH_")}
    return subprocess.run([sys.executable, "-m", "hotpath.cli", *args], capture_output=True, text=True,
                          env={**base, **(env or {})}, timeout=timeout)  # fmt: skip


@pytest.fixture(scope="module")
def runtime(tmp_path_factory) -> Path:
    """A runtime dir with an experiments file and an event log holding a finished experiment."""
    tmp = tmp_path_factory.mktemp("ab-cli")
    (tmp / "experiments.yaml").write_text(yaml.safe_dump({"experiments": [
        {"name": "decay", "stop": "2025-12-09T00:00:00Z", "variants": [{"name": "control"}, {"name": "fast_decay", "overrides": {"recent_view_decay": 0.5}}]},
    ]}))  # fmt: skip
    rng = np.random.default_rng(9)
    t0 = 1_764_547_200_000
    exps, outs = [], []
    for u in range(3000):
        v = "control" if u % 2 else "fast_decay"
        ts = t0 + int(rng.random() * 6 * 86400_000)
        exps.append(Exposure(f"user{u}", ts, "homepage", "decay", v))
        if rng.random() < (0.2 if v == "control" else 0.3):
            outs.append(Outcome("click", f"user{u}", ts + 3000, widget="homepage"))
            outs.append(Outcome("order", f"user{u}", ts + 9000, revenue=20.0))
    s = load_settings(runtime_dir=tmp)

    async def write() -> None:
        log = EmbeddedEventLog(s)
        await append_events(log, s.ab.exposure_topic, exps)
        await append_events(log, s.ab.outcome_topic, outs)
        await log.close()

    asyncio.run(write())
    return tmp


def test_check_names_the_problem_in_one_line(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"experiments": [{"name": "x", "traffic": 2, "variants": [{"name": "a"}, {"name": "b"}]}]}))
    out = hp("ab", "check", str(bad))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "traffic" in lines[0]


def test_report_json_and_png(runtime, tmp_path) -> None:
    env = {"HOTPATH_RUNTIME_DIR": str(runtime), "HOTPATH_AB__EXPERIMENTS_FILE": "experiments.yaml"}
    png = tmp_path / "decay.png"
    out = hp("ab", "report", "decay", "--json", "--png", str(png), env=env)
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout)
    assert rep["groups"]["control"]["users"] == 1500 and rep["groups"]["fast_decay"]["exposures"] == 1500
    ctr = rep["comparisons"]["fast_decay"]["ctr"]
    assert ctr["significant"] and ctr["lift"] > 0.2
    assert png.read_bytes()[:4] == b"\x89PNG"
    text = hp("ab", "report", "decay", env=env)
    assert text.returncode == 0 and "fast_decay vs control ctr" in text.stdout
    missing = hp("ab", "report", "nope", env=env)
    assert missing.returncode == 2 and "no experiment named 'nope'" in missing.stderr


def test_export_sends_new_events_once(runtime) -> None:
    f = FakeAmplitude()
    env = {"HOTPATH_RUNTIME_DIR": str(runtime), "AMPLITUDE_API_KEY": KEY, "HOTPATH_AB__AMPLITUDE__URL": f.url}
    try:
        first = hp("ab", "export", env=env)
        again = hp("ab", "export", env=env)
    finally:
        f.close()
    assert first.returncode == 0, first.stderr
    sent = json.loads(first.stdout)
    n = 3000 + 2 * sum(1 for e in f.ingested.values() if e["event_type"] == "recs_click")
    assert sent["sent"] == len(f.ingested) == n
    assert json.loads(again.stdout)["sent"] == 0 and "queued 0 new events" in again.stderr
    orders = [e for e in f.ingested.values() if e["event_type"] == "order"]
    assert orders and all(e["event_properties"]["experiment"] == "decay" and e["revenue"] == 20.0 for e in orders)
    no_key = hp("ab", "export", env={"HOTPATH_RUNTIME_DIR": str(runtime)})
    assert no_key.returncode == 2 and "AMPLITUDE_API_KEY" in no_key.stderr


@pytest.mark.slow
def test_simulate_detects_a_large_planted_lift_through_the_serving_path(tmp_path) -> None:
    png = tmp_path / "sim.png"
    out = hp("ab", "simulate", "--users", "800", "--lift", "0.5", "--aa-tests", "20", "--json", "--png", str(png), timeout=900)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["planted_lift_detected"] and r["planted_lift_sign_ok"]
    assert r["requests"] == r["responses_naming_variant"] == r["exposures_written"] and r["exposures_dropped"] == 0
    assert r["srm_flagged"] and not r["srm_flagged_on_clean_run"]
    assert 0.0 <= r["aa_false_positive_rate"] <= 0.3
    assert png.stat().st_size > 30_000
