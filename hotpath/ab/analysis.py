"""The attribution join and the report of one experiment.

Join (per user, by time): the user's group is the variant of their first exposure to the experiment
(users seen in two groups — a config change mid-run — are counted as ``mixed_users`` and left out).
Exposures more than ``session_gap_s`` apart start a new session. An outcome belongs to the user's
latest exposure at most ``attribution_window_s`` before it (a click naming a widget: the latest
exposure on that widget); a click marks that exposure clicked (once), an order converts its session
and adds its revenue.

Metrics per group: CTR = clicked exposures / exposures; conversion = sessions with an order /
sessions; revenue per session (sessions without an order count as 0). Every variant is compared with
the control: z-test for CTR and conversion, Welch's t for revenue per session, plus an always-valid
(mSPRT) p-value of CTR taken over the timeline. Sample-ratio mismatch: chi-square of the users per group
against the configured shares.

CTR treats exposures as independent trials; a user's exposures are correlated when users differ in how
much they click, which makes its interval too narrow. Conversion and revenue are per session.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from hotpath.ab import stats
from hotpath.ab.events import Exposure, Outcome
from hotpath.ab.experiments import Experiment
from hotpath.ab.settings import AbSettings

__all__ = ["GroupData", "join", "build_report"]


@dataclass
class GroupData:
    """One group's joined data: per exposure (time, clicked), per session (start, converted, revenue)."""

    users: int = 0
    exp_ts: list[int] = field(default_factory=list)
    clicked: list[bool] = field(default_factory=list)
    sess_ts: list[int] = field(default_factory=list)
    converted: list[bool] = field(default_factory=list)
    carted: list[bool] = field(default_factory=list)
    revenue: list[float] = field(default_factory=list)


def join(experiment: Experiment, events: Iterable[Exposure | Outcome], ab: AbSettings) -> tuple[dict[str, GroupData], dict]:
    """Group the experiment's exposures by variant and attribute outcomes to them."""
    window = int(ab.attribution_window_s * 1000)
    gap = int(ab.session_gap_s * 1000)
    by_user: dict[str, list[Exposure]] = defaultdict(list)
    outcomes: dict[str, list[Outcome]] = defaultdict(list)
    seen_ids: set[str] = set()
    dupes = 0
    for e in events:
        if e.id:
            if e.id in seen_ids:
                dupes += 1
                continue
            seen_ids.add(e.id)
        if isinstance(e, Exposure):
            if e.experiment == experiment.name:
                by_user[e.user_id].append(e)
        else:
            outcomes[e.user_id].append(e)
    groups: dict[str, GroupData] = {g: GroupData() for g in experiment.expected_shares()}
    mixed = 0
    unattributed = 0
    for uid, exps in by_user.items():
        exps.sort(key=lambda x: x.ts_ms)
        variant = exps[0].variant
        if any(x.variant != variant for x in exps):
            mixed += 1
            continue
        g = groups.setdefault(variant, GroupData())
        g.users += 1
        base_e = len(g.exp_ts)
        times = [x.ts_ms for x in exps]
        sess_of: list[int] = []
        last = None
        for x in exps:
            if last is None or x.ts_ms - last > gap:
                g.sess_ts.append(x.ts_ms)
                g.converted.append(False)
                g.carted.append(False)
                g.revenue.append(0.0)
            sess_of.append(len(g.sess_ts) - 1)
            last = x.ts_ms
            g.exp_ts.append(x.ts_ms)
            g.clicked.append(False)
        by_widget: dict[str, list[int]] = defaultdict(list)
        for i, x in enumerate(exps):
            by_widget[x.widget].append(i)
        for o in outcomes.get(uid, ()):
            if o.type == "click" and o.widget is not None:
                idx = by_widget.get(o.widget)
                if not idx:
                    unattributed += 1
                    continue
                j = bisect.bisect_right([times[i] for i in idx], o.ts_ms) - 1
                i = idx[j] if j >= 0 else -1
            else:
                i = bisect.bisect_right(times, o.ts_ms) - 1
            if i < 0 or o.ts_ms - times[i] > window:
                unattributed += 1
                continue
            if o.type == "click":
                g.clicked[base_e + i] = True
            elif o.type == "add_to_cart":
                g.carted[sess_of[i]] = True
            else:
                s = sess_of[i]
                g.converted[s] = True
                g.revenue[s] += o.revenue
    info = {"mixed_users": mixed, "unattributed_outcomes": unattributed, "duplicate_events": dupes}
    return groups, info


def _metrics(g: GroupData, alpha: float) -> dict:
    return {
        "users": g.users,
        "exposures": len(g.exp_ts),
        "sessions": len(g.sess_ts),
        "ctr": stats.proportion_ci(sum(g.clicked), len(g.clicked), alpha).to_json(),
        "add_to_cart_rate": stats.proportion_ci(sum(g.carted), len(g.carted), alpha).to_json(),
        "conversion": stats.proportion_ci(sum(g.converted), len(g.converted), alpha).to_json(),
        "revenue_per_session": stats.mean_ci(g.revenue, alpha).to_json(),
    }


def _compare(c: GroupData, v: GroupData, alpha: float) -> dict:
    rc, rv = np.asarray(c.revenue), np.asarray(v.revenue)
    return {
        "ctr": stats.two_proportion_ztest(sum(c.clicked), len(c.clicked), sum(v.clicked), len(v.clicked), alpha).to_json(),
        "conversion": stats.two_proportion_ztest(sum(c.converted), len(c.converted), sum(v.converted), len(v.converted), alpha).to_json(),
        "revenue_per_session": stats.welch(
            float(rc.mean()) if len(rc) else 0.0, float(rc.std(ddof=1)) if len(rc) > 1 else 0.0, len(rc),
            float(rv.mean()) if len(rv) else 0.0, float(rv.std(ddof=1)) if len(rv) > 1 else 0.0, len(rv), alpha,
        ).to_json(),  # fmt: skip
    }


def _timeline(groups: dict[str, GroupData], control: str, bins: int, alpha: float, tau: float) -> dict:
    """Cumulative metrics at ``bins`` cut times (by exposure / session start time)."""
    all_ts = [t for g in groups.values() for t in g.exp_ts]
    if not all_ts:
        return {"t_ms": [], "groups": {}, "p_ctr": {}, "p_ctr_sequential": {}}
    lo, hi = min(all_ts), max(all_ts)
    cuts = np.linspace(lo, hi, bins + 1)[1:] if hi > lo else np.array([hi], dtype=float)
    out: dict[str, dict[str, list]] = {}
    raw: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, g in groups.items():
        et = np.asarray(g.exp_ts, dtype=np.float64)
        ck = np.asarray(g.clicked, dtype=bool)
        st_ = np.asarray(g.sess_ts, dtype=np.float64)
        cv = np.asarray(g.converted, dtype=bool)
        rv = np.asarray(g.revenue, dtype=np.float64)
        oe, os_ = np.argsort(et, kind="stable"), np.argsort(st_, kind="stable")
        et, ck, st_, cv, rv = et[oe], ck[oe], st_[os_], cv[os_], rv[os_]
        ne = np.searchsorted(et, cuts, side="right")
        ns = np.searchsorted(st_, cuts, side="right")
        cclk = np.concatenate([[0], np.cumsum(ck)])[ne]
        cconv = np.concatenate([[0], np.cumsum(cv)])[ns]
        crev = np.concatenate([[0.0], np.cumsum(rv)])[ns]
        with np.errstate(invalid="ignore", divide="ignore"):
            ctr = np.where(ne > 0, cclk / np.maximum(ne, 1), np.nan)
            half = 1.96 * np.sqrt(ctr * (1 - ctr) / np.maximum(ne, 1))
            out[name] = {
                "exposures": ne.tolist(),
                "ctr": ctr.tolist(),
                "ctr_low": (ctr - half).tolist(),
                "ctr_high": (ctr + half).tolist(),
                "conversion": np.where(ns > 0, cconv / np.maximum(ns, 1), np.nan).tolist(),
                "revenue_per_session": np.where(ns > 0, crev / np.maximum(ns, 1), np.nan).tolist(),
            }
        raw[name] = (ne, cclk)
    p_ctr: dict[str, list] = {}
    p_seq: dict[str, list] = {}
    if control in raw:
        n1, x1 = raw[control]
        for name, (n2, x2) in raw.items():
            if name == control:
                continue
            ps, qs, running = [], [], 1.0
            for a, b, c, d in zip(x1.tolist(), n1.tolist(), x2.tolist(), n2.tolist()):
                t = stats.two_proportion_ztest(a, b, c, d, alpha)
                ps.append(t.p_value)
                if b > 0 and d > 0:
                    p1, p2 = a / b, c / d
                    var = p1 * (1 - p1) / b + p2 * (1 - p2) / d
                    running = min(running, stats.msprt_pvalue(p2 - p1, var, tau * max(p1, 1e-6)))
                qs.append(running)
            p_ctr[name], p_seq[name] = ps, qs
    return {"t_ms": [int(c) for c in cuts.tolist()], "groups": out, "p_ctr": p_ctr, "p_ctr_sequential": p_seq}


def build_report(
    experiment: Experiment,
    events: Iterable[Exposure | Outcome],
    ab: AbSettings,
    *,
    now: datetime | None = None,
    bins: int = 24,
) -> dict:
    """The whole report of one experiment as a JSON-ready dict."""
    now = now or datetime.now(timezone.utc)
    groups, info = join(experiment, events, ab)
    control = experiment.control
    alpha = ab.alpha
    timeline = _timeline(groups, control, bins, alpha, ab.sequential_tau)
    comparisons = {}
    for name, g in groups.items():
        if name == control or control not in groups:
            continue
        cmp_ = _compare(groups[control], g, alpha)
        seq = timeline["p_ctr_sequential"].get(name)
        cmp_["ctr"]["p_sequential"] = seq[-1] if seq else None
        comparisons[name] = cmp_
    shares = experiment.expected_shares()
    srm = stats.srm({k: g.users for k, g in groups.items()}, shares, ab.srm_alpha)
    warnings = []
    running = experiment.stop is None or now < experiment.stop
    if running:
        warnings.append(
            "the experiment is still running: a fixed-horizon p-value is valid at the planned end only; looking "
            "repeatedly and stopping at the first p < alpha inflates false positives — until then read p_sequential "
            "(always valid, mSPRT)"
        )
    if srm["flagged"]:
        warnings.append(
            f"sample-ratio mismatch (chi-square p = {srm['p_value']:.2g} < {ab.srm_alpha:g}): the groups' sizes do not "
            "match the configured split, so assignment or exposure logging is broken; do not trust the comparisons"
        )
    if info["mixed_users"]:
        warnings.append(f"{info['mixed_users']} users were exposed to more than one variant and are left out")
    for name, g in groups.items():
        if len(g.exp_ts) < 100:
            warnings.append(f"group {name} has only {len(g.exp_ts)} exposures")
    return {
        "experiment": experiment.name,
        "layer": experiment.layer,
        "control": control,
        "running": running,
        "generated_at": now.isoformat(),
        "settings": {"alpha": alpha, "attribution_window_s": ab.attribution_window_s, "session_gap_s": ab.session_gap_s,
                     "srm_alpha": ab.srm_alpha},  # fmt: skip
        "groups": {name: _metrics(g, alpha) for name, g in groups.items()},
        "comparisons": comparisons,
        "srm": srm,
        "join": info,
        "warnings": warnings,
        "timeline": timeline,
    }


def summary_lines(report: dict) -> list[str]:
    """The report as a few human lines (the CLI's default output)."""
    lines = [f"experiment {report['experiment']} (control: {report['control']}, {'running' if report['running'] else 'stopped'})"]
    for name, g in report["groups"].items():
        c, cv, r = g["ctr"], g["conversion"], g["revenue_per_session"]
        lines.append(
            f"  {name:<16} users {g['users']:>8,}  exposures {g['exposures']:>9,}  CTR {_pct(c['value'])} [{_pct(c['ci_low'])}, {_pct(c['ci_high'])}]"
            f"  conv {_pct(cv['value'])}  rev/session {r['value']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
        )
    for name, cmp_ in report["comparisons"].items():
        for metric in ("ctr", "conversion", "revenue_per_session"):
            t = cmp_[metric]
            lift = f"{100 * t['lift']:+.2f}%" if t["lift"] is not None else "n/a"
            extra = f", p_seq {t['p_sequential']:.3g}" if t.get("p_sequential") is not None else ""
            lines.append(f"  {name} vs {report['control']} {metric:<20} lift {lift:>8}  p {t['p_value']:.3g}{extra}{'  *' if t['significant'] else ''}")
    s = report["srm"]
    lines.append(f"  SRM chi2 {s['chi2']:.2f} p {s['p_value']:.3g}{'  FLAGGED' if s['flagged'] else ''}")
    lines += [f"  warning: {w}" for w in report["warnings"]]
    return lines


def _pct(v: float) -> str:
    return "  n/a " if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:6.3f}%"

