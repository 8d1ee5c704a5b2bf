"""``hotpath voice say``: speak a sentence as a watch would (``hotpath bench voice``: :mod:`bench.voice`)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Optional

import typer

from hotpath.errors import ServiceUnavailable

__all__ = ["register"]


def register(root: typer.Typer, bench: typer.Typer) -> None:
    voice = typer.Typer(no_args_is_help=True, help="The voice edge: speak to it as a watch would.")
    root.add_typer(voice, name="voice")

    _register_context(voice)

    @voice.command("corpus")
    def corpus_cmd(
        recipe: Path = typer.Option(None, help="Recipe YAML (default data/speech/recipe.yaml)"),
        out: Path = typer.Option(None, help="Corpus JSONL to write (default data/speech/corpus.jsonl)"),
        synthesize: bool = typer.Option(False, "--synthesize", help="Also make every clip now (cached)"),
        cache: Path = typer.Option(Path(".hotpath/speech"), help="Where the clips are cached"),
    ) -> None:
        """Expand the speech recipe into the labelled corpus (text, kind, intent, exact slots, voice, SNR)."""
        from collections import Counter

        from hotpath.voice import corpus as c

        r = c.load_recipe(recipe or c.DEFAULT_RECIPE)
        rows = c.expand(r)
        path = c.write_corpus(rows, out or c.DEFAULT_CORPUS)
        typer.echo(f"{len(rows)} utterances -> {path}: {dict(Counter(u.kind for u in rows))}")
        if synthesize:
            for n, u in enumerate(rows, 1):
                c.audio(u, r, cache)
                if n % 50 == 0:
                    typer.echo(f"  {n}/{len(rows)} clips", err=True)

    @voice.command("eval")
    def eval_cmd(
        corpus: Optional[Path] = typer.Argument(None, help="Corpus JSONL (default data/speech/corpus.jsonl)"),
        voices: str = typer.Option("all", "--voices", help="held-out | tune | all | a comma list of voice names"),
        kinds: Optional[str] = typer.Option(None, help="Only these kinds (comma list: command,question,...)"),
        min_snr: Optional[float] = typer.Option(None, "--min-snr", help="Only clips at least this SNR (clean counts as inf)"),
        limit: Optional[int] = typer.Option(None, help="At most this many clips (every k-th, spread evenly)"),
        recipe: Optional[Path] = typer.Option(None, help="Recipe YAML the corpus came from"),
        cache: Path = typer.Option(Path(".hotpath/speech"), help="Where clips are cached"),
        rows_out: Optional[Path] = typer.Option(None, "--rows", help="Also write each clip's decisions and features (JSON lines, as they are done)"),
        from_rows: Optional[Path] = typer.Option(None, "--from-rows", help="Summarise rows stored by --rows (no decoding)"),
        as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON only"),
        config: Optional[Path] = typer.Option(None, "--config", help="YAML settings file"),
    ) -> None:
        """Run the corpus through VAD -> STT -> intent -> router in process and print the figures."""
        import dataclasses

        from hotpath.config import load_settings
        from hotpath.errors import BadInput
        from hotpath.voice import corpus as c
        from hotpath.voice.evaluate import evaluate, select, summarise

        s = load_settings(config)
        r = c.load_recipe(recipe or c.DEFAULT_RECIPE)
        rows = c.read_corpus(corpus or c.DEFAULT_CORPUS)
        sel = select(rows, voices=voices, kinds=kinds, min_snr=min_snr, limit=limit)
        if not sel:
            raise BadInput(f"no utterance of the corpus matches --voices {voices} --kinds {kinds} --min-snr {min_snr}")
        say = (lambda m: typer.echo(m, err=True))
        if from_rows is not None:
            from hotpath.voice.evaluate import read_rows

            done = read_rows(from_rows)
            ids = {u.id for u in sel}
            done = [x for x in done if x.id in ids]
            figures = summarise(done, sel, s.voice.teams)
            figures["selection"] = {"voices": voices, "kinds": kinds, "min_snr": min_snr, "clips": len(done),
                                    "from_rows": str(from_rows)}
            typer.echo(json.dumps(figures, indent=None if as_json else 2))
            return
        say(f"{len(sel)} clips ({voices} voices)")
        sink = rows_out.open("w") if rows_out is not None else None

        def keep(res) -> None:  # one JSON line per clip as it is done: a stopped run keeps its rows
            if sink is not None:
                sink.write(json.dumps(dataclasses.asdict(res)) + "\n")
                sink.flush()

        try:
            results = evaluate(sel, r, cache, s.voice, say=say, on_result=keep)
        finally:
            if sink is not None:
                sink.close()
        figures = summarise(results, sel, s.voice.teams)
        figures["selection"] = {"voices": voices, "kinds": kinds, "min_snr": min_snr, "clips": len(sel)}
        typer.echo(json.dumps(figures, indent=None if as_json else 2))

    @voice.command("say")
    def say_cmd(
        text: str = typer.Argument("", help="What the watch's wearer says (synthesized with espeak-ng)"),
        wav: Optional[Path] = typer.Option(None, "--wav", help="Play this recording instead (any rate/channels: resampled)"),
        device: str = typer.Option("w-17", "--device", "-d", help="Device id (topic wearable/{id}/audio)"),
        timeout: float = typer.Option(30.0, help="Seconds to wait for the spoken reply"),
        save: Optional[Path] = typer.Option(None, help="Write the reply audio to this WAV file"),
        as_json: bool = typer.Option(False, "--json", help="Print the trace events as JSON"),
        config: Optional[Path] = typer.Option(None, "--config", help="YAML settings file"),
        prefix: Optional[str] = typer.Option(None, "--prefix", help="Topic prefix of the tenant to speak to (the demo's second tenant: home/)"),
    ) -> None:
        """Publish TEXT as speech on wearable/{device}/audio and print what the edge did.

        Needs the voice edge running (``hotpath up``) and Mosquitto (``hotpath services up``).
        """
        from hotpath.config import load_settings
        from hotpath.errors import BadInput
        from bench.voice_sim import SimulatedWatch, synthesize_speech  # the simulator ships in bench/

        s = load_settings(config)
        if prefix is not None:
            s = s.model_copy(update={"voice": s.voice.model_copy(update={"topic_prefix": prefix})})
        if wav is not None:
            from hotpath.voice.audio import read_wav

            pcm = read_wav(wav)
            text = text or wav.name
        elif text:
            pcm = synthesize_speech(text)
        else:
            raise BadInput("say what? give a TEXT or --wav FILE")

        async def go():
            async with aiomqtt_client(s) as team:
                w = SimulatedWatch(device, s.mqtt.host, s.mqtt.port, prefix=s.voice.topic_prefix,
                                   silence_s=s.voice.vad_silence_s)
                await w.__aenter__()
                try:
                    spoken = await w.speak(pcm, text=text)
                    try:
                        await w.wait_reply(spoken, timeout)
                    except asyncio.TimeoutError:
                        raise ServiceUnavailable(f"no reply from the voice edge within {timeout:.0f} s",
                                                 hint="is it running? hotpath up") from None
                    await asyncio.sleep(0.2)
                    return spoken, list(team)
                finally:
                    await w.__aexit__()

        spoken, summons = asyncio.run(go())
        if save is not None:
            import wave

            with wave.open(str(save), "wb") as f:
                f.setnchannels(1)
                f.setsampwidth(2)
                f.setframerate(16000)
                f.writeframes(spoken.reply_pcm)
        if as_json:
            typer.echo(json.dumps({"events": [e for _, e in spoken.events], "summons": summons}, indent=2))
            return
        for t, e in spoken.events:
            since = e.get("since_end_ms")
            when = f"{since:8.1f} ms" if since is not None else " " * 11
            typer.echo(f"{when}  {e['event']:<10} {json.dumps(e.get('data', {}))}")
        for m in summons:
            typer.echo(f"team/summon <- {json.dumps(m)}")
        typer.echo(f"reply audio: {len(spoken.reply_pcm) / 32000:.2f} s"
                   + (f"; first chunk {(spoken.first_audio_at - spoken.t_end) * 1000:.0f} ms after end of speech"
                      if spoken.first_audio_at else ""))

def _register_context(voice: typer.Typer) -> None:
    ctx = typer.Typer(no_args_is_help=True, help="Tenant command contexts: validate, compile, test, import (docs/contexts.md).")
    voice.add_typer(ctx, name="context")

    @ctx.command("validate")
    def validate_cmd(file: Path = typer.Argument(..., help="Context YAML")) -> None:
        """Check a context file: one line naming the file, line and problem when it is wrong."""
        from hotpath.voice.context import load_context

        c = load_context(file)
        n = sum(len(i.expressions) for i in c.intents.values())
        typer.echo(f"{file}: context {c.context!r} ok: {len(c.intents)} intents, {n} expressions, "
                   f"{len(c.slots)} slot types")

    @ctx.command("compile")
    def compile_cmd(
        file: Path = typer.Argument(..., help="Context YAML"),
        out: Path = typer.Option(Path(".hotpath/contexts"), help="Directory for <name>.jsgf, <name>.train.jsonl, <name>.json"),
        per_intent: int = typer.Option(200, "--per-intent", help="Training sentences per intent (expanded expressions)"),
        noise: float = typer.Option(0.5, help="Share of training sentences given paraphrase noise"),
        seed: int = typer.Option(0),
        config: Optional[Path] = typer.Option(None, "--config", help="YAML settings file (the tenant's people, teams, directory)"),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON"),
    ) -> None:
        """Compile a context: the STT grammar (JSGF), the slot parser check, and intent training data (JSONL)."""
        from hotpath.config import load_settings
        from hotpath.voice.context_compile import compile_context, write_training
        from hotpath.voice.grammar import tenant_values

        v = load_settings(config).voice
        values = tenant_values(people=v.people, teams=v.teams, directory=list(v.actions.directory), prompt=v.initial_prompt)
        c = compile_context(file, per_intent=per_intent, noise=noise, seed=seed, values=values)
        out.mkdir(parents=True, exist_ok=True)
        name = c.context.context
        (out / f"{name}.jsgf").write_text(c.jsgf, encoding="utf-8")
        write_training(c.rows, out / f"{name}.train.jsonl")
        # the slot parser is the context itself; check it reads back every sentence it generated
        misses = [r["text"] for r in c.rows if r["source"] == f"context:{name}" and (
            (m := c.matcher.match(r["text"])) is None or m.intent != r["intent"] or m.slots != r["slots"])]
        summary = {"context": name, "intents": len(c.context.intents), "training_rows": len(c.rows),
                   "jsgf": str(out / f"{name}.jsgf"), "training": str(out / f"{name}.train.jsonl"),
                   "parser_misses": len(misses), "seconds": {k: round(x, 4) for k, x in c.seconds.items()}}
        (out / f"{name}.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        if as_json:
            typer.echo(json.dumps(summary))
            return
        typer.echo(f"{file}: {summary['intents']} intents -> {summary['jsgf']} ({len(c.jsgf)} bytes), "
                   f"{summary['training']} ({len(c.rows)} rows) in {c.seconds['total']:.2f} s")
        if misses:
            typer.echo(f"warning: the slot parser reads {len(misses)} generated sentences differently, e.g. {misses[0]!r}"
                       " (an ambiguous expression)", err=True)

    @ctx.command("test")
    def test_cmd(
        file: Path = typer.Argument(..., help="Context YAML"),
        sentence: str = typer.Argument("", help="What is said (typed text)"),
        wav: Optional[Path] = typer.Option(None, "--wav", help="A recording instead: decoded with the context's grammar"),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON"),
        config: Optional[Path] = typer.Option(None, "--config", help="YAML settings file"),
    ) -> None:
        """Run a sentence (or a recording) through the context: intent, slots, the action and the reply."""
        from hotpath.config import load_settings
        from hotpath.errors import BadInput
        from hotpath.voice.context import load_context
        from hotpath.voice.context_compile import Matcher, render_action, render_reply
        from hotpath.voice.grammar import tenant_values

        v = load_settings(config).voice
        c = load_context(file)
        values = tenant_values(people=v.people, teams=v.teams, directory=list(v.actions.directory), prompt=v.initial_prompt)
        res: dict = {"context": c.context}
        text = sentence
        if wav is not None:
            from hotpath.voice.audio import read_wav
            from hotpath.voice.stt import SttHints
            from hotpath.voice.stt_pocketsphinx import PocketsphinxEngine

            engine = PocketsphinxEngine.from_settings(v, context=c)
            stream = engine.open(SttHints(device_id="context-test"))
            stream.accept(read_wav(wav))
            t = stream.finish()
            text = t.text
            res["stt"] = {"text": t.text, "source": t.source, **t.alternatives}
            if not t.source.startswith("grammar"):
                text = ""  # the rejection verdict: not a command of this context
        elif not sentence:
            raise BadInput("test what? give a SENTENCE or --wav FILE")
        m = Matcher(c, values).match(text) if text else None
        res["text"] = text
        if m is None:
            res.update(intent=None, slots={}, action=None, reply="Sorry, say that again?" if wav else None,
                       note="no expression of this context matches: no action (the text would go to the cloud)")
        else:
            it = c.intents[m.intent]
            res.update(intent=m.intent, slots=m.slots, said=m.said, confirm=it.confirm,
                       action=render_action(c, m.intent, m.slots, prefix=v.topic_prefix, directory=v.actions.directory),
                       reply=render_reply(it.reply, m.slots))
        if as_json:
            typer.echo(json.dumps(res))
            return
        if "stt" in res:
            typer.echo(f"heard:   {res['stt']['text']!r} ({res['stt']['source']})")
        typer.echo(f"intent:  {res['intent']}")
        typer.echo(f"slots:   {json.dumps(res['slots'])}")
        typer.echo(f"action:  {json.dumps(res['action'])}" + (f" (confirm: {res['confirm']})" if res.get("confirm") else ""))
        typer.echo(f"reply:   {res['reply']}")

    @ctx.command("import")
    def import_cmd(
        rhino: Path = typer.Argument(..., help="A Picovoice Rhino context YAML"),
        out: Path = typer.Option(..., "--out", help="Our context YAML to write"),
        name: Optional[str] = typer.Option(None, help="Context name (default: the file's stem)"),
    ) -> None:
        """Convert a Picovoice Rhino context to ours (then edit each intent's action, confirmation and reply)."""
        from hotpath.voice.context import parse_context
        from hotpath.voice.context_rhino import import_rhino

        text = import_rhino(rhino, name)
        c = parse_context(text, out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        typer.echo(f"{rhino} -> {out}: {len(c.intents)} intents, {len(c.slots)} slot types")


class aiomqtt_client:  # noqa: N801 - a context manager collecting team/summon messages
    def __init__(self, s) -> None:
        self.s = s
        self.items: list[dict] = []

    async def __aenter__(self):
        import aiomqtt

        from hotpath.streams.mqtt_login import client_login

        self.client = aiomqtt.Client(self.s.mqtt.host, self.s.mqtt.port, timeout=5, **client_login("edge", self.s))
        try:
            await self.client.__aenter__()
        except aiomqtt.MqttError as exc:
            raise ServiceUnavailable(f"MQTT broker unreachable: {exc}", hint="hotpath services up") from exc
        await self.client.subscribe(self.s.voice.topic_prefix + self.s.voice.actions.summon_topic, qos=1)

        async def read():
            async for m in self.client.messages:
                self.items.append(json.loads(m.payload))

        self.task = asyncio.get_running_loop().create_task(read())
        return self.items

    async def __aexit__(self, *exc):
        self.task.cancel()
        await self.client.__aexit__(None, None, None)
