"""The A/B simulator (``hotpath ab simulate``) and the serving-overhead benchmark (``hotpath bench ab``).

Simulator, three parts:

1. **Planted lift, through the real serving path.** A small generated catalog is loaded into an
   in-process hot cache, SQLite and DuckDB (the stores tests/recs use); generated users (new ones,
   and returning ones with a catalog user's history) browse in sessions over a simulated week. Every
   view is a real request: :class:`~hotpath.ab.hook.AbHook` assigns it, ``RecsService.related``
   serves it with the variant's settings, the exposure goes through the :class:`ExposureBuffer` to
   an embedded event log. Clicks are drawn with probability ``base_ctr`` — times ``1 + lift`` in
   ``treatment``; some clicks lead to an add-to-cart and an order with a revenue. Outcomes are
   appended to the log, read back with the exposures, joined and analysed as ``hotpath ab report``
   does.
2. **A/A tests** (``aa_tests`` of them, statistics only): both groups get the same click rate; the
   real bucketing splits users under a new salt each time; the share of tests with p < alpha is the
   false-positive rate.
3. **SRM**: a 50/50 split where ``skew`` of the treatment's users lose their exposures (a logging bug
   in one arm), at ``srm_users`` users; the chi-square check should flag it. The clean run of part 1
   should not be flagged.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import typer

__all__ = ["SimParams", "simulate", "overhead_bench", "register"]

WIDGETS = ("pdp_related", "homepage", "sponsored")


@dataclass
class SimParams:
    users: int = 16_000
    """Users of the planted-lift run (each one a few sessions): ~66,000 served requests."""
    sessions_extra: float = 0.7
    """Sessions per user: 1 + Poisson(this)."""
    views_extra: float = 1.4
    """Requests (exposures) per session: 1 + Poisson(this)."""
    returning_share: float = 0.6
    base_ctr: float = 0.25
    lift: float = 0.05
    """Relative CTR lift planted in ``treatment``."""
    cart_rate: float = 0.3
    order_rate: float = 0.4
    revenue_mean: float = 40.0
    days: float = 7.0
    aa_tests: int = 200
    aa_users: int = 4_000
    srm_users: int = 500_000
    skew: float = 0.02
    seed: int = 7


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the serving stack
class Stack:
    """A generated catalog in an in-process hot cache + SQLite + DuckDB, and a RecsService over it."""

    def __init__(self, tmp: Path, *, masters: int = 2500, users: int = 500, seed: int = 11) -> None:
        from hotpath.config import load_settings
        from hotpath.recs.catalog import generate
        from hotpath.recs.loader import load_catalog
        from hotpath.recs.service import RecsService
        from hotpath.recs.settings import CatalogSettings
        from hotpath.stores.memory_cache import InMemoryHotCache
        from hotpath.stores.redis_fast import bulk_writer
        from hotpath.stores.rollups import DuckDbRollupStore
        from hotpath.stores.sqlite_dim import SqliteDimensionStore

        base = load_settings()
        self.settings = base.model_copy(
            update={
                "runtime_dir": tmp,
                "sqlite": base.sqlite.model_copy(update={"path": tmp / "dim.sqlite"}),
                "duckdb": base.duckdb.model_copy(update={"path": tmp / "rollups.duckdb"}),
                "event_log": base.event_log.model_copy(update={"path": tmp / "eventlog"}),
                # generated rows are up to a year old: keep the stale-row warnings out of the simulation
                "recs": base.recs.model_copy(update={"stale_after_days": 1e6}),
            }
        )
        s = self.settings
        self.catalog = generate(CatalogSettings(masters=masters, users=users, departments=4, subcats_per_department=3,
                                                leaves_per_subcat=5, seed=seed))  # fmt: skip
        self.cache = InMemoryHotCache()
        self.store = SqliteDimensionStore(s)
        rollups = DuckDbRollupStore(s.in_runtime(s.duckdb.path))
        try:
            load_catalog(self.catalog, s.recs, self.cache, bulk_writer(self.cache), self.store, rollups)
        finally:
            rollups.close()
        self.service = RecsService(
            s.recs, self.cache, self.store, DuckDbRollupStore(s.in_runtime(s.duckdb.path), read_only=True), subscribe=False
        )
        self.service.warm(masters=masters)

    def history(self, catalog_user: int) -> list:
        return self.service._ztop_many(*self.service.user_keys(f"u{catalog_user}"))

    def close(self) -> None:
        self.service.close()
        self.store.close()
        self.cache.close()


def lift_experiment(salt: str, *, weights=(50, 50), name: str = "sim-lift", start: float | None = None, days: float | None = None) -> dict:
    from datetime import datetime, timezone

    when = {}
    if start is not None:
        when = {"start": datetime.fromtimestamp(start, timezone.utc).isoformat()}
        if days is not None:
            when["stop"] = datetime.fromtimestamp(start + days * 86400 + 3600, timezone.utc).isoformat()
    return {
        "name": name,
        "layer": "ranking",
        "salt": salt,
        **when,
        "variants": [
            {"name": "control", "weight": weights[0]},
            {"name": "treatment", "weight": weights[1],
             "overrides": {"recent_view_decay": 0.6, "widgets": {"pdp_related": {"boost_power": 0.5}}}},
        ],
    }  # fmt: skip


# --------------------------------------------------------------------------- part 1
def planted_lift_run(p: SimParams, stack: Stack, *, progress=_say) -> dict:
    """Drive generated sessions through the serving path; return the report and run figures."""
    from hotpath.ab.analysis import build_report
    from hotpath.ab.events import ExposureBuffer, Outcome, append_events, read_events
    from hotpath.ab.experiments import Experiments, parse_experiments
    from hotpath.ab.hook import AbHook
    from hotpath.recs.catalog import master_uuid
    from hotpath.recs.model import RelatedQuery
    from hotpath.streams.embedded_log import EmbeddedEventLog

    s = stack.settings
    rng = np.random.default_rng(p.seed)
    t0 = 1_764_547_200.0  # 2025-12-01 00:00 UTC
    parsed = parse_experiments({"experiments": [lift_experiment(f"sim-{p.seed}", start=t0, days=p.days)]}, s.recs)
    exp = parsed.experiments[0]
    now = [t0]
    exps = Experiments(s.recs, parsed=parsed, clock=lambda: now[0])
    event_log = EmbeddedEventLog(s)
    buffer = ExposureBuffer(event_log, s.ab.exposure_topic, clock=lambda: now[0], flush_interval_s=0.2)
    hook = AbHook(exps, buffer)
    U = len(stack.catalog.user_views)
    M = stack.catalog.n_masters
    requests: list[tuple[float, int, bool, str, int]] = []  # (time, user, returning, widget, master)
    for u in range(p.users):
        returning = rng.random() < p.returning_share
        for _ in range(1 + rng.poisson(p.sessions_extra)):
            t = t0 + rng.random() * p.days * 86400
            for _ in range(1 + rng.poisson(p.views_extra)):
                requests.append((t, u, returning, WIDGETS[int(rng.integers(len(WIDGETS)))], int(rng.integers(M))))
                t += 20 + rng.exponential(90)
    requests.sort()
    outcomes: list[Outcome] = []
    named = 0
    started = time.perf_counter()
    last = started
    for i, (t, u, returning, widget, m) in enumerate(requests):
        now[0] = t
        uid = f"sim{u}"
        hist = stack.history(u % U) if returning else [[], []]
        q = RelatedQuery(uid, master_uuid(m), widget, 10)
        a = hook.assign(uid, widget, hist)
        res = stack.service.related(q, hist, settings=a.settings)
        hook.served(res, uid, widget, a)
        variant = res.meta.get("experiments", [{}])[0].get("variant")
        named += variant is not None
        ctr = p.base_ctr * (1 + p.lift if variant == "treatment" else 1.0)
        if rng.random() < ctr:
            tc = t + 1 + 15 * rng.random()  # before the user's next view (>= 20 s later)
            ms = int(tc * 1000)
            outcomes.append(Outcome("click", uid, ms, widget=widget))
            if rng.random() < p.cart_rate:
                outcomes.append(Outcome("add_to_cart", uid, ms + 15_000))
                if rng.random() < p.order_rate:
                    rev = float(rng.lognormal(math.log(p.revenue_mean) - 0.18, 0.6))
                    outcomes.append(Outcome("order", uid, ms + 120_000, revenue=round(rev, 2)))
        if time.perf_counter() - last > 5:
            last = time.perf_counter()
            progress(f"  simulate: {i + 1:,}/{len(requests):,} requests served")
    serve_s = time.perf_counter() - started
    buffer.flush(60)

    async def io() -> list:
        await append_events(event_log, s.ab.outcome_topic, outcomes, partitions=s.ab.topic_partitions)
        evs = await read_events(event_log, s.ab.exposure_topic)
        evs += await read_events(event_log, s.ab.outcome_topic)
        await event_log.close()
        return evs

    events = asyncio.run(io())
    buffer.close()
    from datetime import datetime, timezone

    report = build_report(exp, events, s.ab, now=datetime.fromtimestamp(t0 + p.days * 86400 + 7200, timezone.utc))
    return {
        "report": report,
        "requests": len(requests),
        "responses_naming_variant": named,
        "exposures_written": buffer.written,
        "exposures_dropped": buffer.dropped,
        "outcomes": len(outcomes),
        "serve_us_per_request": 1e6 * serve_s / max(1, len(requests)),
    }


# --------------------------------------------------------------------------- parts 2 and 3
def _exposures_per_user(rng: np.random.Generator, n: int, p: SimParams) -> np.ndarray:
    sessions = 1 + rng.poisson(p.sessions_extra, n)
    return np.array([int((1 + rng.poisson(p.views_extra, k)).sum()) for k in sessions], dtype=np.int64)


def aa_false_positive_rate(p: SimParams, base_recs) -> dict:
    """``aa_tests`` A/A experiments, each under its own salt, bucketed by the real code."""
    from hotpath.ab.experiments import Experiments, parse_experiments
    from hotpath.ab.stats import two_proportion_ztest

    rng = np.random.default_rng(p.seed + 1)
    alpha = 0.05
    hits = 0
    pvals = []
    for rep in range(p.aa_tests):
        parsed = parse_experiments({"experiments": [{"name": "aa", "salt": f"aa-{p.seed}-{rep}",
                                                     "variants": [{"name": "a"}, {"name": "b"}]}]}, base_recs)  # fmt: skip
        exps = Experiments(base_recs, parsed=parsed)
        n_exp = _exposures_per_user(rng, p.aa_users, p)
        in_b = np.array([exps.assign(f"aa{rep}-{u}", "pdp_related").variant == "b" for u in range(p.aa_users)])
        clicks = rng.binomial(n_exp, p.base_ctr)
        t = two_proportion_ztest(int(clicks[~in_b].sum()), int(n_exp[~in_b].sum()), int(clicks[in_b].sum()), int(n_exp[in_b].sum()), alpha)
        pvals.append(t.p_value)
        hits += t.p_value < alpha
    return {"tests": p.aa_tests, "false_positive_rate": hits / max(1, p.aa_tests), "median_p": float(np.median(pvals))}


def srm_check(p: SimParams, base_recs) -> dict:
    """A 50/50 split where ``skew`` of the treatment's users are lost from the exposure log."""
    from hotpath.ab.experiments import Experiments, bucket, parse_experiments
    from hotpath.ab.stats import srm

    parsed = parse_experiments({"experiments": [lift_experiment(f"srm-{p.seed}")]}, base_recs)
    exps = Experiments(base_recs, parsed=parsed)
    counts = {"control": 0, "treatment": 0}
    for u in range(p.srm_users):
        uid = f"srm{u}"
        v = exps.assign(uid, "pdp_related").variant
        if v == "treatment" and bucket("logging-bug", uid) < p.skew:
            continue
        counts[v] += 1
    res = srm(counts, parsed.experiments[0].expected_shares(), 0.001)
    return {"users": p.srm_users, "skew": p.skew, **res}


def simulate(p: SimParams, *, progress=_say) -> dict:
    t = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hotpath-ab-sim-") as tmp:
        progress("ab simulate: loading a generated catalog into in-process stores ...")
        stack = Stack(Path(tmp))
        try:
            progress(f"ab simulate: planted +{100 * p.lift:g}% CTR lift, {p.users:,} users through the serving path ...")
            run = planted_lift_run(p, stack, progress=progress)
        finally:
            stack.close()
        base_recs = stack.settings.recs
    progress(f"ab simulate: {p.aa_tests} A/A tests ...")
    aa = aa_false_positive_rate(p, base_recs)
    progress(f"ab simulate: SRM check at {p.srm_users:,} users, {100 * p.skew:g}% of one arm lost ...")
    srm_ = srm_check(p, base_recs)
    rep = run["report"]
    ctr = rep["comparisons"]["treatment"]["ctr"]
    return {
        "planted_lift": p.lift,
        "measured_ctr_lift": ctr["lift"],
        "ctr_p_value": ctr["p_value"],
        "ctr_p_sequential": ctr["p_sequential"],
        "planted_lift_detected": bool(ctr["p_value"] < 0.05),
        "planted_lift_sign_ok": bool(ctr["lift"] is not None and (ctr["lift"] > 0) == (p.lift > 0)),
        "aa_false_positive_rate": aa["false_positive_rate"],
        "aa_tests": aa["tests"],
        "srm_flagged": bool(srm_["flagged"]),
        "srm_p_value": srm_["p_value"],
        "srm_flagged_on_clean_run": bool(rep["srm"]["flagged"]),
        "requests": run["requests"],
        "responses_naming_variant": run["responses_naming_variant"],
        "exposures_written": run["exposures_written"],
        "exposures_dropped": run["exposures_dropped"],
        "outcomes": run["outcomes"],
        "serve_us_per_request": round(run["serve_us_per_request"], 1),
        "groups": {k: {"users": g["users"], "exposures": g["exposures"], "ctr": g["ctr"]["value"]} for k, g in rep["groups"].items()},
        "params": asdict(p),
        "seconds": round(time.perf_counter() - t, 1),
        "_report": rep,
    }


# --------------------------------------------------------------------------- overhead benchmark
def overhead_bench(*, requests: int = 20_000, rounds: int = 5, baseline: bool = True, progress=_say) -> dict:
    """Per-request cost of the A/B hook (assign + name in the response + record the exposure) with two
    layered experiments, exposures flushed to an embedded event log in the background; the baseline is
    one ``RecsService.related`` call on the simulator's stack, measured in the same run. Wall time and
    the request thread's CPU time (``thread_time``: robust to a machine shared with other work) are
    both reported; the background flush's CPU per request apart (it is off the request path)."""
    from hotpath.ab.events import ExposureBuffer
    from hotpath.ab.experiments import Experiments
    from hotpath.ab.hook import AbHook
    from hotpath.recs.catalog import master_uuid
    from hotpath.recs.model import RecsResult, RelatedQuery
    from hotpath.streams.embedded_log import EmbeddedEventLog

    with tempfile.TemporaryDirectory(prefix="hotpath-ab-bench-") as tmp:
        stack = Stack(Path(tmp)) if baseline else None
        from hotpath.config import load_settings

        s = stack.settings if stack else load_settings(runtime_dir=Path(tmp))
        second = {"name": "homepage-rerank", "layer": "homepage", "widgets": ["homepage"], "holdout": 0.05,
                  "variants": [{"name": "control"}, {"name": "flash", "overrides": {"widgets": {"homepage": {"flash_sale_mult": 2.0}}}}]}  # fmt: skip
        path = Path(tmp) / "experiments.yaml"
        import yaml

        path.write_text(yaml.safe_dump({"experiments": [lift_experiment("bench"), second]}))
        exps = Experiments(s.recs, path, reload_check_s=1.0)  # the file is checked as in serving
        event_log = EmbeddedEventLog(s)
        buffer = ExposureBuffer(event_log, s.ab.exposure_topic)
        hook = AbHook(exps, buffer)
        rng = random.Random(3)
        users = [f"user{rng.randrange(1_000_000)}" for _ in range(requests)]
        widgets = [WIDGETS[rng.randrange(3)] for _ in range(requests)]
        hist = [[("x", 1.0)], []]
        per_round, cpu_round = [], []
        for r in range(rounds):
            results = [RecsResult(item_dicts=[], widget=w) for w in widgets]
            buffer.flush(60)
            t, c = time.perf_counter(), time.thread_time()
            for uid, w, res in zip(users, widgets, results):
                a = hook.assign(uid, w, hist)
                hook.served(res, uid, w, a)
            cpu_round.append(1e6 * (time.thread_time() - c) / requests)
            per_round.append(1e6 * (time.perf_counter() - t) / requests)
            # the background cost: encoding and appending this round's exposures
            t_flush = time.process_time()
            buffer.flush(60)
            flush_cpu = 1e6 * (time.process_time() - t_flush) / requests
        base_us = None
        if stack is not None:
            qs = [RelatedQuery(f"u{rng.randrange(500)}", master_uuid(rng.randrange(2500)), "pdp_related", 10) for _ in range(2000)]
            for q in qs[:200]:
                stack.service.related(q)
            times = []
            for _ in range(3):
                t = time.perf_counter()
                for q in qs:
                    stack.service.related(q)
                times.append(1e6 * (time.perf_counter() - t) / len(qs))
            base_us = statistics.median(times)
            stack.close()
        written = buffer.written
        buffer.close()
        asyncio.run(event_log.close())
    med = statistics.median(per_round)
    cpu = statistics.median(cpu_round)
    return {
        "overhead_us_per_request": round(med, 2),
        "overhead_us_rounds": [round(x, 2) for x in per_round],
        "overhead_cpu_us_per_request": round(cpu, 2),
        "overhead_cpu_us_rounds": [round(x, 2) for x in cpu_round],
        "background_flush_cpu_us_per_request": round(flush_cpu, 2),
        "target_us": 50.0,
        "within_target": cpu <= 50.0,
        "within_target_wall": med <= 50.0,
        "baseline_related_us": round(base_us, 1) if base_us else None,
        "overhead_ratio_to_related": round(med / base_us, 4) if base_us else None,
        "exposures_written": written,
        "requests_per_round": requests,
    }


def register(bench: typer.Typer) -> None:
    @bench.command("ab")
    def bench_ab(
        requests: int = typer.Option(20_000, help="Requests per round"),
        rounds: int = typer.Option(5, help="Rounds (the median is reported)"),
        baseline: bool = typer.Option(True, help="Also time RecsService.related on a small in-memory stack"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Serving overhead of the A/B hook per request (target <= 50 us), with a baseline ratio."""
        out = overhead_bench(requests=requests, rounds=rounds, baseline=baseline)
        if as_json:
            typer.echo(json.dumps(out))
        else:
            typer.echo(f"A/B hook overhead: {out['overhead_us_per_request']} us/request wall, {out['overhead_cpu_us_per_request']} us CPU "
                       f"(medians of {rounds} rounds: {out['overhead_us_rounds']}), target <= 50 us")
            if out["baseline_related_us"]:
                typer.echo(f"  one related() call: {out['baseline_related_us']} us; overhead ratio {out['overhead_ratio_to_related']}")
