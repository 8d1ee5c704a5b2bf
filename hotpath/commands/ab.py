"""``hotpath ab report|simulate|export|check``: A/B experiments of the recommendation widgets."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Optional

import typer

__all__ = ["register"]


def _clean(o):
    """NaN / inf as null, so ``--json`` prints valid JSON."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def _experiments_path(s, experiments: Optional[Path]) -> Path:
    from hotpath.errors import ConfigError

    if experiments is not None:
        return experiments
    if s.ab.experiments_file is None:
        raise ConfigError("no experiments file", hint="pass --experiments FILE or set ab.experiments_file (HOTPATH_AB__EXPERIMENTS_FILE)")
    return s.in_runtime(s.ab.experiments_file)


def register(root: typer.Typer, bench: typer.Typer) -> None:
    ab = typer.Typer(no_args_is_help=True, help="A/B experiments: report, simulate, export to Amplitude.")
    root.add_typer(ab, name="ab")

    @ab.command("check")
    def check_cmd(
        file: Path = typer.Argument(..., help="Experiments YAML file"),
        config: Optional[Path] = typer.Option(None, "--config"),
    ) -> None:
        """Validate an experiments file (every problem named, nothing started)."""
        from hotpath.ab.experiments import load_experiments_file
        from hotpath.config import load_settings

        s = load_settings(config)
        parsed = load_experiments_file(file, s.recs)
        for e in parsed.experiments:
            shares = ", ".join(f"{k} {100 * v:.1f}%" for k, v in e.expected_shares().items())
            typer.echo(f"{e.name}: layer {e.layer}, traffic {100 * e.traffic:g}%, widgets {', '.join(e.widgets or ['all'])}, {shares}")
        typer.echo(f"ok: {len(parsed.experiments)} experiments")

    @ab.command("report")
    def report_cmd(
        experiment: str = typer.Argument(..., help="Experiment name"),
        as_json: bool = typer.Option(False, "--json", help="Print the whole report as JSON"),
        png: Optional[Path] = typer.Option(None, "--png", help="Write a PNG of the metrics over time"),
        experiments: Optional[Path] = typer.Option(None, "--experiments", help="Experiments file (default: ab.experiments_file)"),
        config: Optional[Path] = typer.Option(None, "--config"),
    ) -> None:
        """Per-variant CTR, conversion, revenue per session with intervals, tests, SRM, from the event log."""
        from hotpath.ab.analysis import build_report, summary_lines
        from hotpath.ab.events import read_events
        from hotpath.ab.experiments import load_experiments_file
        from hotpath.config import load_settings
        from hotpath.streams.factory import open_event_log

        s = load_settings(config)
        exp = load_experiments_file(_experiments_path(s, experiments), s.recs).get(experiment)

        async def load():
            log = open_event_log(s)
            try:
                return await read_events(log, s.ab.exposure_topic) + await read_events(log, s.ab.outcome_topic)
            finally:
                await log.close()

        report = build_report(exp, asyncio.run(load()), s.ab)
        if png is not None:
            from hotpath.ab.plot import render_png

            render_png(report, png)
        if as_json:
            typer.echo(json.dumps(_clean(report)))
        else:
            for line in summary_lines(report):
                typer.echo(line)
            if png is not None:
                typer.echo(f"  chart: {png}")

    @ab.command("simulate")
    def simulate_cmd(
        as_json: bool = typer.Option(False, "--json"),
        users: Optional[int] = typer.Option(None, help="Users of the planted-lift run (default 16,000)"),
        lift: Optional[float] = typer.Option(None, help="Planted relative CTR lift (default 0.05)"),
        aa_tests: Optional[int] = typer.Option(None, help="A/A tests (default 200)"),
        seed: Optional[int] = typer.Option(None),
        png: Optional[Path] = typer.Option(None, "--png", help="Write the planted-lift run's chart"),
        report_json: Optional[Path] = typer.Option(None, "--report", help="Write the planted-lift run's full report (JSON)"),
    ) -> None:
        """Generated users through the real serving path with a planted lift; A/A false positives; SRM."""
        from bench.ab import SimParams, simulate

        upd = {k: v for k, v in {"users": users, "lift": lift, "aa_tests": aa_tests, "seed": seed}.items() if v is not None}
        from hotpath.errors import BadInput

        if upd.get("users", 10) < 10 or upd.get("aa_tests", 1) < 1:
            raise BadInput("--users must be at least 10 and --aa-tests at least 1")
        out = simulate(SimParams(**upd))
        rep = out.pop("_report")
        if png is not None:
            from hotpath.ab.plot import render_png

            render_png(rep, png)
        if report_json is not None:
            report_json.write_text(json.dumps(_clean(rep)))
        if as_json:
            typer.echo(json.dumps(_clean(out)))
        else:
            typer.echo(
                f"planted +{100 * out['planted_lift']:g}% CTR: measured {100 * (out['measured_ctr_lift'] or 0):+.2f}% "
                f"(p = {out['ctr_p_value']:.3g}) detected={out['planted_lift_detected']} sign_ok={out['planted_lift_sign_ok']}"
            )
            typer.echo(f"A/A false-positive rate: {100 * out['aa_false_positive_rate']:.1f}% of {out['aa_tests']} tests")
            typer.echo(f"SRM flagged for a {100 * out['params']['skew']:g}% loss in one arm: {out['srm_flagged']} (p = {out['srm_p_value']:.2g})")

    @ab.command("export")
    def export_cmd(
        drain_only: bool = typer.Option(False, "--drain-only", help="Only send what is already queued"),
        config: Optional[Path] = typer.Option(None, "--config"),
    ) -> None:
        """Send new exposures and outcomes to Amplitude (HTTP V2), through the disk queue."""
        from hotpath.ab.events import read_events
        from hotpath.ab.export import to_amplitude
        from hotpath.clients.amplitude import AmplitudeClient
        from hotpath.config import load_settings
        from hotpath.streams.factory import open_event_log

        s = load_settings(config)
        client = AmplitudeClient.from_settings(s)
        state_path = client.dir / "export-state.json"
        try:
            if not drain_only:
                state = json.loads(state_path.read_text()) if state_path.exists() else {"offsets": {}, "known": {}}
                offsets = {t: {int(p): o for p, o in d.items()} for t, d in state["offsets"].items()}

                async def load():
                    log = open_event_log(s)
                    try:
                        evs = []
                        for topic in (s.ab.exposure_topic, s.ab.outcome_topic):
                            evs += await read_events(log, topic, offsets.setdefault(topic, {}))
                        return evs
                    finally:
                        await log.close()

                events = asyncio.run(load())
                known = {u: {e: tuple(v) for e, v in d.items()} for u, d in state["known"].items()}
                n = client.enqueue(to_amplitude(events, known))
                # the queue holds the events now: only then does the log position move on
                tmp = state_path.with_suffix(".tmp")
                tmp.write_text(json.dumps({"offsets": offsets, "known": known}))
                tmp.replace(state_path)
                typer.echo(f"queued {n:,} new events", err=True)
            rep = client.drain()
        finally:
            client.close()
        typer.echo(json.dumps(rep.to_json()))
        if rep.stopped:
            typer.echo(f"hotpath: warning: {rep.stopped}", err=True)
            raise typer.Exit(1)
