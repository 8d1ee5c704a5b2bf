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

    @voice.command("say")
    def say_cmd(
        text: str = typer.Argument(..., help="What the watch's wearer says (synthesized with espeak-ng)"),
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
        from bench.voice_sim import SimulatedWatch, synthesize_speech  # the simulator ships in bench/

        s = load_settings(config)
        pcm = synthesize_speech(text)

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
