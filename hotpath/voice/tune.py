"""Calibrate the rejection thresholds on the *tune* voices from stored eval rows (no re-decoding).

``hotpath voice eval --voices tune --rows rows.json`` keeps each utterance's two decodes and their
scores; :func:`replay` re-applies :func:`~hotpath.voice.rejection.judge` with another
:class:`~hotpath.voice.rejection.RejectionPolicy` and runs the pipeline's decision on the result, so
a grid of policies costs the intent model's time only. :func:`best` picks the policy with the highest
command acceptance among those whose false-action rate is zero on the tune clips.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace

from hotpath.voice.evaluate import ClipResult, _exact, _norm  # noqa: F401 - shared scoring
from hotpath.voice.rejection import Features, RejectionPolicy, backed_share, judge

__all__ = ["replay", "best", "rejudge", "GRID"]

GRID = {
    "accept_score": [-45.0, -50.0, -55.0, -60.0],
    "accept_margin": [12.0, 14.0, 16.0, 18.0],
    "min_margin": [8.0, 11.0, 14.0],
}


def _features(f: dict) -> Features:
    num = lambda k: float(f.get(k, "-inf"))  # noqa: E731
    g, lm = f.get("grammar", ""), f.get("lm", "")
    return Features(g, lm, num("score"), num("margin"), num("coverage"), backed_share(g, lm))


def replay(rows: list[dict], policy: RejectionPolicy, pipeline_factory, teams) -> dict:
    teams = set(teams)

    async def go():
        acts = {"cmd_ok": 0, "cmd": 0, "non": 0, "false": 0, "wrong": 0, "confirm_ok": 0}
        for r in rows:
            pipe = pipeline_factory()
            acted = proposed = None
            for n, fd in enumerate(r["features"]):
                f = _features(fd)
                v = judge(f, policy)
                text = f.grammar if v.startswith("grammar") else ("" if v == "rejected" else f.lm)
                out = await pipe.handle("d", f"u{n}", text, 0.0, stt={"source": v})
                if out.action and out.decision in ("act", "undo-offered") and acted is None:
                    acted = out.action
                if out.proposed and proposed is None:
                    proposed = out.proposed
            if r["kind"] == "command":
                acts["cmd"] += 1
                exp = r["expected"]
                if acted is not None:
                    ok = _exact(acted, exp["intent"], exp, teams)
                    acts["cmd_ok"] += ok
                    acts["wrong"] += not ok
                    acts["confirm_ok"] += ok
                elif proposed is not None:
                    acts["confirm_ok"] += _exact(proposed, exp["intent"], exp, teams)
            else:
                acts["non"] += 1
                acts["false"] += acted is not None
            pipe.close_dialogs()
        return acts

    a = asyncio.run(go())
    div = lambda x, y: round(x / y, 4) if y else None  # noqa: E731
    return {"command_acceptance": div(a["cmd_ok"], a["cmd"]), "acceptance_with_confirm": div(a["confirm_ok"], a["cmd"]),
            "wrong_action_rate": div(a["wrong"], a["cmd"]), "false_action_rate": div(a["false"], a["non"]),
            "false_actions": a["false"], "wrong_actions": a["wrong"]}


def best(rows: list[dict], base: RejectionPolicy, pipeline_factory, teams, grid=GRID, say=print):
    results = []
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        p = replace(base, **dict(zip(keys, values)))
        m = replay(rows, p, pipeline_factory, teams)
        results.append((p, m))
        say(f"{dict(zip(keys, values))} -> {m}")
    safe = [x for x in results if x[1]["false_actions"] == 0]
    pool = safe or results
    return max(pool, key=lambda x: (-(x[1]["wrong_actions"]), x[1]["command_acceptance"] or 0,
                                    x[1]["acceptance_with_confirm"] or 0)), results


def rejudge(results: list[ClipResult], policy: RejectionPolicy, pipeline_factory) -> list[ClipResult]:
    """The clips' stored decodes decided again under ``policy`` (the cloud text is kept as it was)."""

    async def go():
        out = []
        for r in results:
            pipe = pipeline_factory()
            new = replace(r, decisions=[], actions=[], proposed=[], sources=[])
            for n, fd in enumerate(r.features):
                f = _features(fd)
                v = judge(f, policy)
                text = f.grammar if v.startswith("grammar") else ("" if v == "rejected" else f.lm)
                o = await pipe.handle("d", f"u{n}", text, 0.0, stt={"source": v})
                new.sources.append(v)
                new.decisions.append(o.decision)
                if o.action and o.decision in ("act", "undo-offered", "confirmed"):
                    new.actions.append(o.action)
                if o.proposed:
                    new.proposed.append(o.proposed)
            pipe.close_dialogs()
            out.append(new)
        return out

    return asyncio.run(go())
