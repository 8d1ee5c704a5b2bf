"""The attribution join and the report: hand-made events with known answers; the PNG is written."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from hotpath.ab.analysis import build_report, join, summary_lines
from hotpath.ab.events import Exposure, Outcome
from hotpath.ab.experiments import parse_experiments
from hotpath.ab.plot import render_png
from hotpath.ab.settings import AbSettings

AB = AbSettings(attribution_window_s=600, session_gap_s=1800)
S = 1000  # ms per second


def experiment(recs_settings, **kw):
    doc = {"name": "e", "variants": [{"name": "control"}, {"name": "treatment"}], **kw}
    return parse_experiments({"experiments": [doc]}, recs_settings).experiments[0]


def test_join_attributes_by_user_time_window_and_widget(recs_settings) -> None:
    e = experiment(recs_settings)
    ev = [
        Exposure("u1", 0, "homepage", "e", "control", "x1"),
        Exposure("u1", 60 * S, "pdp_related", "e", "control", "x2"),
        Outcome("click", "u1", 70 * S, widget="homepage", id="c1"),  # the homepage exposure at 0, not the later one
        Outcome("click", "u1", 75 * S, widget="homepage", id="c1"),  # a duplicate id: counted once
        Outcome("order", "u1", 200 * S, revenue=30.0, id="o1"),  # session 1
        Exposure("u1", 4000 * S, "homepage", "e", "control", "x3"),  # > 30 min later: session 2
        Outcome("click", "u1", 4000 * S + 601 * S, widget="homepage", id="c2"),  # outside the 600 s window
        Exposure("u2", 0, "homepage", "e", "treatment", "x4"),
        Outcome("click", "u2", 5 * S, id="c3"),  # no widget: the latest exposure
        Outcome("add_to_cart", "u2", 6 * S, id="k1"),
        Outcome("order", "u2", 7 * S, revenue=10.0, id="o2"),
        Outcome("order", "u2", 8 * S, revenue=5.0, id="o3"),
        Outcome("click", "u3", 5 * S, id="c4"),  # never exposed
        Exposure("u4", 0, "homepage", "e", "control", "x5"),
        Exposure("u4", 10 * S, "homepage", "e", "treatment", "x6"),  # two variants: left out
        Exposure("u5", 0, "homepage", "other", "a", "x7"),  # another experiment
    ]
    groups, info = join(e, ev, AB)
    c, t = groups["control"], groups["treatment"]
    assert (c.users, len(c.exp_ts), len(c.sess_ts)) == (1, 3, 2)
    assert c.clicked == [True, False, False]
    assert c.converted == [True, False] and c.revenue == [30.0, 0.0]
    assert (t.users, t.clicked, t.carted, t.converted, t.revenue) == (1, [True], [True], [True], [15.0])
    assert info == {"mixed_users": 1, "unattributed_outcomes": 1, "duplicate_events": 1}


def synthetic(rng, n_users: int, ctr: dict[str, float], t0_ms: int) -> list:
    ev = []
    for u in range(n_users):
        v = "control" if u % 2 else "treatment"
        t = t0_ms + int(rng.random() * 7 * 86400 * S)
        for k in range(3):
            ts = t + k * 60 * S
            ev.append(Exposure(f"u{u}", ts, "homepage", "e", v, f"x{u}-{k}"))
            if rng.random() < ctr[v]:
                ev.append(Outcome("click", f"u{u}", ts + 5 * S, widget="homepage", id=f"c{u}-{k}"))
                if rng.random() < 0.2:
                    ev.append(Outcome("order", f"u{u}", ts + 30 * S, revenue=float(rng.lognormal(3, 0.5)), id=f"o{u}-{k}"))
    return ev


def test_report_finds_a_real_lift_and_writes_a_readable_png(recs_settings, tmp_path) -> None:
    rng = np.random.default_rng(3)
    t0 = 1_764_547_200_000
    e = experiment(recs_settings, stop="2025-12-09T00:00:00Z")
    ev = synthetic(rng, 12000, {"control": 0.20, "treatment": 0.23}, t0)
    rep = build_report(e, ev, AB, now=datetime(2025, 12, 10, tzinfo=timezone.utc))
    ctr = rep["comparisons"]["treatment"]["ctr"]
    assert ctr["significant"] and ctr["lift"] == pytest.approx(0.15, abs=0.05)
    assert ctr["p_sequential"] < 0.05
    assert rep["groups"]["treatment"]["ctr"]["ci_low"] > rep["groups"]["control"]["ctr"]["ci_low"]
    assert not rep["srm"]["flagged"] and not rep["running"]
    assert rep["warnings"] == []
    assert len(rep["timeline"]["t_ms"]) == 24 and rep["timeline"]["groups"]["control"]["exposures"][-1] == 18000
    assert any("lift" in line for line in summary_lines(rep))
    png = render_png(rep, tmp_path / "report.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 30_000
    keep = Path(__file__).resolve().parents[2] / ".hotpath" / "test-artifacts"
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copy(png, keep / "ab-report.png")  # looked at by a person: see docs/experiments.md


def test_report_warns_on_srm_and_while_running(recs_settings) -> None:
    rng = np.random.default_rng(4)
    e = experiment(recs_settings)  # no stop: still running
    ev = [x for x in synthetic(rng, 8000, {"control": 0.2, "treatment": 0.2}, 0)
          if not (x.user_id.endswith(("3", "7")) and int(x.user_id[1:]) % 2 == 1 and int(x.user_id[1:]) % 10 == 3)]  # fmt: skip
    rep = build_report(e, ev, AB)
    assert rep["srm"]["flagged"] and rep["running"]
    assert any("sample-ratio mismatch" in w for w in rep["warnings"])
    assert any("still running" in w for w in rep["warnings"])
