"""A PNG of an experiment's metrics over time, readable at a glance (matplotlib, Agg backend).

Four panels over the run's time: cumulative CTR per group with its 95 % band; cumulative
conversion; cumulative revenue per session; the p-value of each variant's CTR against the control
(fixed-horizon and always-valid) on a log scale with the alpha line. The title says the verdict.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

__all__ = ["render_png"]

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#7f7f7f"]


def _verdict(report: dict) -> str:
    parts = []
    for name, cmp_ in report["comparisons"].items():
        t = cmp_["ctr"]
        if t["lift"] is None:
            continue
        sig = "significant" if t["significant"] else "not significant"
        parts.append(f"{name}: CTR {100 * t['lift']:+.1f}% vs {report['control']} (p={t['p_value']:.2g}, {sig})")
    if report["srm"]["flagged"]:
        parts.append("SAMPLE-RATIO MISMATCH: do not trust")
    return "; ".join(parts) or "no comparison yet"


def render_png(report: dict, path: Path | str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tl = report["timeline"]
    times = [datetime.fromtimestamp(t / 1000, timezone.utc) for t in tl["t_ms"]]
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5), sharex=True, layout="constrained")
    fig.get_layout_engine().set(rect=(0, 0.03, 1, 0.97))  # room for the status line at the bottom
    srm = report["srm"]
    status = f"sample-ratio check: p = {srm['p_value']:.3g} " + ("(MISMATCH: assignment or logging is broken)" if srm["flagged"] else "(ok)")
    if report.get("running"):
        status += "   |   still running: judge by the always-valid p (dashed) until the planned end"
    fig.suptitle(f"Experiment {report['experiment']}\n{_verdict(report)}", fontsize=13, fontweight="bold")
    fig.text(0.5, 0.0, status, ha="center", va="bottom", fontsize=10, color="#b00000" if srm["flagged"] else "#333333")
    ax_ctr, ax_conv, ax_rev, ax_p = axes[0, 0], axes[0, 1], axes[1, 0], axes[1, 1]
    names = list(tl["groups"])
    for i, name in enumerate(names):
        g = tl["groups"][name]
        c = _COLORS[i % len(_COLORS)]
        n = report["groups"][name]["users"]
        label = f"{name} ({n:,} users)"
        ax_ctr.plot(times, [100 * v for v in g["ctr"]], color=c, lw=2, label=label)
        ax_ctr.fill_between(times, [100 * v for v in g["ctr_low"]], [100 * v for v in g["ctr_high"]], color=c, alpha=0.15)
        ax_conv.plot(times, [100 * v for v in g["conversion"]], color=c, lw=2, label=name)
        ax_rev.plot(times, g["revenue_per_session"], color=c, lw=2, label=name)
    alpha = report["settings"]["alpha"]
    for i, (name, ps) in enumerate(tl["p_ctr"].items()):
        c = _COLORS[(names.index(name) if name in names else i) % len(_COLORS)]
        ax_p.plot(times, [max(p, 1e-12) for p in ps], color=c, lw=2, label=f"{name}: fixed-horizon p")
        seq = tl["p_ctr_sequential"].get(name)
        if seq:
            ax_p.plot(times, [max(p, 1e-12) for p in seq], color=c, lw=2, ls="--", label=f"{name}: always-valid p")
    ax_p.axhline(alpha, color="black", lw=1, ls=":", label=f"alpha = {alpha:g}")
    ax_p.set_yscale("log")
    lows = [p for ps in tl["p_ctr"].values() for p in ps if p > 0]
    ax_p.set_ylim(bottom=max(1e-12, min([alpha / 5] + [p / 2 for p in lows])), top=1.5)
    ax_ctr.set_title("CTR (cumulative, 95% band)")
    ax_ctr.set_ylabel("clicked exposures, %")
    ax_conv.set_title("Conversion (cumulative)")
    ax_conv.set_ylabel("sessions with an order, %")
    ax_rev.set_title("Revenue per session (cumulative)")
    ax_rev.set_ylabel("revenue / session")
    ax_p.set_title("CTR vs control: p-value (lower = stronger evidence)")
    ax_p.set_ylabel("p-value (log)")
    for ax in axes.flat:
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(mdates.AutoDateLocator()))
    ax_ctr.legend(loc="best", fontsize=10)
    ax_conv.legend(loc="best", fontsize=9)
    ax_p.legend(loc="lower left", fontsize=9)
    for ax in (ax_rev, ax_p):
        ax.set_xlabel("time (UTC)")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    if not path.exists():
        raise OSError(f"could not write {path}")
    return path
