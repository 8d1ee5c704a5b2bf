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
    ) -> None:
        """Publish TEXT as speech on wearable/{device}/audio and print what the edge did.

        Needs the voice edge running (``hotpath up``) and Mosquitto (``hotpath services up``).
        """
        from hotpath.config import load_settings
        from hotpath.errors import BadInput
        from bench.voice_sim import SimulatedWatch, synthesize_speech  # the simulator ships in bench/

        s = load_settings(config)
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
