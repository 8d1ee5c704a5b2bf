"""``hotpath bench context``: how fast a tenant context compiles, and how well its commands are heard.

* **compile** (always): a generated 20-intent context (30 values per slot type, optional parts, a
  number slot) compiled to JSGF + slot parser + 200 training sentences per intent, ``--runs`` times;
  the baseline in the same run is the industrial default. Target: ≤ 5 s.
* **speech** (``--speech CONTEXT``): the context's commands (expanded from its own expressions, never
  tuned on) spoken by the corpus' *held-out* voices (data/speech/recipe.yaml) at clean / 20 / 10 dB,
  plus speech *outside* the context (the industrial commands and everyday questions), through the
  real VAD -> pocketsphinx (the context's grammar + the general-LM competitor) -> pipeline path.
  Reports command acceptance (acted at once with the intent and every slot exact), acceptance with a
  read-back, wrong actions, and the no-action rate on out-of-context speech.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from pathlib import Path
from typing import Optional

import typer

__all__ = ["register", "twenty_intent_context"]


def twenty_intent_context(intents: int = 20, values: int = 30) -> str:
    slots = "\n".join(f"  thing{i}:\n    values: [{', '.join(f'item {i} {j}' for j in range(values))}]" for i in range(intents))
    body = "\n".join(
        f"  do{i}:\n    expressions: [\"[please] (start | run | begin) [the] $thing{i} [on] [line $number] [now]\","
        f" \"(can | could) you (start | run) $thing{i}\", \"$thing{i} (on | off) [please]\"]\n"
        f"    action: {{type: mqtt, topic: \"line/{{number}}/do{i}\"}}\n    confirm: 0.9"
        for i in range(intents))
    return f"context: bench\nslots:\n{slots}\n  number: {{builtin: number, min: 1, max: 99}}\nintents:\n{body}\n"


def _compile_figures(runs: int) -> dict:
    from hotpath.voice.context import DEFAULT_CONTEXT, parse_context
    from hotpath.voice.context_compile import compile_context

    text = twenty_intent_context()
    big, base = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        c = compile_context(parse_context(text, "bench.yaml"), per_intent=200)
        big.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        compile_context(DEFAULT_CONTEXT, per_intent=200)
        base.append(time.perf_counter() - t0)
    med = statistics.median(big)
    return {"intents": len(c.context.intents), "training_rows": len(c.rows), "jsgf_bytes": len(c.jsgf),
            "compile_s_median": round(med, 3), "compile_s_max": round(max(big), 3),
            "baseline_industrial_s_median": round(statistics.median(base), 3),
            "ratio_to_baseline": round(med / max(1e-9, statistics.median(base)), 2),
            "target_s": 5.0, "ok": med <= 5.0, "runs": runs}


def _speech_figures(path: Path, per_intent: int, outside: int, snrs: list[str], cache: Path, say,
                    rows_out: Path | None = None) -> dict:
    from hotpath.voice import corpus as c
    from hotpath.voice.context import load_context
    from hotpath.voice.context_compile import OOS_LINES, expand
    from hotpath.voice.corpus import Utterance
    from hotpath.voice.evaluate import evaluate
    from hotpath.voice.settings import VoiceSettings

    recipe = c.load_recipe(c.DEFAULT_RECIPE)
    voices = [v["name"] for v in recipe["voices"] if v["split"] == "held-out"]
    ctx = load_context(path)
    rng = random.Random(7)
    cmds = expand(ctx, per_intent=per_intent, seed=11)
    industrial = [t for t, _, _ in expand(load_context(c.ROOT / "contexts" / "industrial.yaml"), per_intent=outside, seed=3)]
    others = [(t, "outside") for t in rng.sample(industrial, min(len(industrial), outside * 2))]
    others += [(t, "outside") for t in rng.sample(OOS_LINES, min(len(OOS_LINES), outside * 2))]
    rows: list[Utterance] = []
    for n, (text, intent, slots) in enumerate(cmds):
        snr = snrs[n % len(snrs)]
        rows.append(Utterance(f"ctx-{ctx.context}-c{n}", "command", text, voices[n % len(voices)], "held-out", snr,
                              None if snr == "clean" else rng.choice(recipe["noises"]), False, intent, slots))
    for n, (text, _) in enumerate(others):
        snr = snrs[n % len(snrs)]
        rows.append(Utterance(f"ctx-{ctx.context}-o{n}", "chatter", text, voices[(n + 1) % len(voices)], "held-out",
                              snr, None if snr == "clean" else rng.choice(recipe["noises"]), False))
    say(f"{len(cmds)} commands of {ctx.context} + {len(others)} outside it, voices {voices}, SNR {snrs}")
    voice = VoiceSettings(context=path, classifier="keyword")
    t0 = time.monotonic()
    results = evaluate(rows, recipe, cache, voice, say=say)
    by_id = {u.id: u for u in rows}
    if rows_out is not None:
        import dataclasses

        with rows_out.open("w") as f:
            for r in results:
                f.write(json.dumps({**dataclasses.asdict(r), "text": by_id[r.id].text}) + "\n")
    acc = confirm_ok = wrong = false = cmd_n = out_n = 0
    for r in results:
        u = by_id[r.id]
        acted = next((a for a in r.actions), None)
        if u.kind == "command":
            cmd_n += 1
            ok = acted is not None and acted.get("action") == u.intent and acted.get("slots") == u.slots
            acc += ok
            wrong += acted is not None and not ok
            prop = next((p for p in r.proposed), None)
            confirm_ok += ok or (prop is not None and prop.get("action") == u.intent
                                 and {k: v for k, v in prop.items() if k != "action"} == u.slots)
        else:
            out_n += 1
            false += acted is not None
    div = lambda a, b: round(a / b, 4) if b else None  # noqa: E731
    return {"context": ctx.context, "voices": voices, "snrs": snrs, "commands": cmd_n, "outside": out_n,
            "command_acceptance": div(acc, cmd_n), "acceptance_with_confirm": div(confirm_ok, cmd_n),
            "wrong_action_rate": div(wrong, cmd_n), "no_action_rate_outside": div(out_n - false, out_n),
            "false_actions": false, "seconds": round(time.monotonic() - t0, 1)}


def bench_context(
    runs: int = typer.Option(5, help="Compile runs (the median is reported)"),
    speech: Optional[Path] = typer.Option(None, "--speech", help="Also speak this context's commands (held-out voices)"),
    per_intent: int = typer.Option(6, "--per-intent", help="Spoken commands per intent"),
    outside: int = typer.Option(10, help="Out-of-context utterances (x2 industrial commands, x2 questions)"),
    snr: str = typer.Option("clean,20,10", help="SNRs to mix in (comma list: clean,20,10,5)"),
    cache: Path = typer.Option(Path(".hotpath/speech-contexts"), help="Where the clips are cached"),
    rows_out: Optional[Path] = typer.Option(None, "--rows", help="Write each clip's decodes and decisions (JSON lines)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Compile time of a 20-intent context (target ≤ 5 s), and optionally a context's spoken commands."""
    say = lambda m: typer.echo(m, err=True)  # noqa: E731
    out = {"compile": _compile_figures(runs),
           "note": "timed on whatever machine ran it (figures under load are contended)"}
    if speech is not None:
        out["speech"] = _speech_figures(speech, per_intent, outside, snr.split(","), cache, say, rows_out)
    typer.echo(json.dumps(out, indent=None if as_json else 2))


def register(bench: typer.Typer) -> None:
    """Add ``hotpath bench context``."""
    bench.command("context")(bench_context)
