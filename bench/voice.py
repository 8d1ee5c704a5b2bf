"""``hotpath bench voice``: N simulated watches speak commands in real time through Mosquitto into the
voice edge on Ray; latency is measured from the end of speech with the VAD's silence window excluded.

``cpu`` is the user+system CPU time the private edge's processes (STT actor, ingress, session hosts,
broker) used over the measured run, per wall second and per utterance: what the cores must supply,
whether or not the run was contended (``hotpath bench voice-cpu`` splits it by stage, in process).

Zero of every figure: the moment the watch published the chunk that completes the silence window
after the last loud sample of the utterance (:mod:`bench.voice_sim`). ``action`` is when a
subscriber on ``team/summon`` received the action; ``reply`` when the watch received the first reply
audio chunk. Stage shares come from the pipeline's trace events (same host, same clock).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import time
import uuid
from pathlib import Path
from typing import Optional

import aiomqtt
import typer

from hotpath.config import Settings
from bench.voice_sim import SimulatedWatch, Spoken, synthesize_speech
from hotpath.streams.mqtt_login import client_login

__all__ = ["run_bench", "PHRASES"]

PHRASES = [
    ("Need a supervisor at loading dock 4", "supervisor", "dock 4"),
    ("Summon cleaning crew to aisle 5", "cleaning crew", "aisle 5"),
    ("Send security to zone B", "security", "zone b"),
    ("Need a medic at bay 3", "medic", "bay 3"),
    ("Bring the forklift driver to dock 2", "forklift driver", "dock 2"),
    ("Emergency help", "emergency response", None),
]


def _pct(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100 * (len(xs) - 1)))))
    return round(xs[k], 1)


def _cpu_seconds(pids: dict[str, list[int]]) -> dict[str, float]:
    """User + system CPU seconds so far of each named group of processes (all their threads)."""
    import psutil

    out = {}
    for name, group in pids.items():
        total = 0.0
        for pid in group:
            try:
                t = psutil.Process(pid).cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        out[name] = total
    return out


async def _edge_pids(settings: Settings, tag: str) -> dict[str, list[int]]:
    """The processes of this bench's private edge (STT actor, ingress, session hosts), the broker
    and this driver (the simulated watches)."""
    import psutil
    import ray

    from hotpath.graphs.voice_edge_app import INGRESS_ACTOR, STT_ACTOR

    def pid_of(self):  # runs inside the actor
        import os as _os

        return _os.getpid()

    stt = ray.get_actor(STT_ACTOR + tag)
    ingress = ray.get_actor(INGRESS_ACTOR + tag)
    pids = {"stt": [await stt.__ray_call__.remote(pid_of)], "ingress": [await ingress.__ray_call__.remote(pid_of)],
            "session_hosts": [h["pid"] for h in await ingress.host_stats.remote()], "driver": [os.getpid()]}
    broker = []
    try:
        for c in psutil.net_connections("tcp"):
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == settings.mqtt.port and c.pid:
                broker.append(c.pid)
    except psutil.Error:
        pass
    pids["mqtt_broker"] = sorted(set(broker))
    return pids


async def _drive(settings: Settings, devices: int, utterances: int, seed: int, say, tag: str = "") -> dict:
    rnd = random.Random(seed)
    v = settings.voice
    audio = {p: synthesize_speech(p) for p, _, _ in PHRASES}
    summons: dict[str, list[tuple[float, dict]]] = {}

    async def collect(client: aiomqtt.Client) -> None:
        async for msg in client.messages:
            data = json.loads(msg.payload)
            summons.setdefault(data["device"], []).append((time.time(), data))

    ids = [f"bench-{i:02d}" for i in range(devices)]
    async with aiomqtt.Client(settings.mqtt.host, settings.mqtt.port, **client_login("edge", settings)) as team:
        await team.subscribe(v.topic_prefix + v.actions.summon_topic, qos=1)
        reader = asyncio.get_running_loop().create_task(collect(team))
        watches = [SimulatedWatch(d, settings.mqtt.host, settings.mqtt.port, prefix=v.topic_prefix) for d in ids]
        for w in watches:
            await w.__aenter__()
        try:
            say(f"warming up {devices} watches (sessions open on first sight)...")
            t0 = time.time()
            warm = await asyncio.gather(*(w.speak(audio[PHRASES[0][0]], text="warm-up") for w in watches))
            await asyncio.gather(*(w.wait_reply(s, 120) for w, s in zip(watches, warm)), return_exceptions=True)
            say(f"warm-up done in {time.time() - t0:.1f} s; measuring {utterances} utterances per watch")
            results: list[tuple[str, str, Spoken]] = []

            async def run(w: SimulatedWatch) -> None:
                await asyncio.sleep(rnd.uniform(0, 3.0))  # watches are not in lockstep
                for _ in range(utterances):
                    phrase = rnd.choice(PHRASES)[0]
                    spoken = await w.speak(audio[phrase], text=phrase, lead_s=rnd.uniform(0.2, 1.0))
                    try:
                        await w.wait_reply(spoken, 30)
                    except asyncio.TimeoutError:
                        pass
                    results.append((w.device_id, phrase, spoken))
                    await asyncio.sleep(rnd.uniform(0.3, 1.5))

            try:
                pids = await _edge_pids(settings, tag)
            except Exception as exc:  # the CPU account is extra: the latency figures stand without it
                say(f"edge processes not found, no CPU account: {exc!r}")
                pids = {}
            cpu0 = _cpu_seconds(pids)
            t_run = time.time()
            await asyncio.gather(*(run(w) for w in watches))
            wall = time.time() - t_run
            cpu1 = _cpu_seconds(pids)
            await asyncio.sleep(1.0)
        finally:
            reader.cancel()
            for w in watches:
                await w.__aexit__()
    figures = _figures(results, summons, devices, utterances, wall)
    if pids:
        used = {k: cpu1[k] - cpu0[k] for k in pids}
        edge = sum(v for k, v in used.items() if k != "driver")
        figures["cpu"] = {
            "cpu_s_per_wall_s": {k: round(v / wall, 3) for k, v in used.items()},
            "edge_cpu_s_per_wall_s": round(edge / wall, 3),
            "edge_cpu_s_per_utterance": round(edge / max(1, len(results)), 4),
            "processes": {k: len(v) for k, v in pids.items()},
            "note": "user+system CPU of the edge's processes over the measured run (the driver is the simulated watches)",
        }
    return figures


def _figures(results, summons, devices, utterances, wall) -> dict:
    expected = {p: (team, loc) for p, team, loc in PHRASES}
    action_ms, reply_ms, stages = [], [], {k: [] for k in ("ingest_vad", "stt", "intent", "action", "tts", "delivery")}
    correct = missing_reply = missing_action = read_back = 0
    decisions: dict[str, int] = {}
    for device, phrase, sp in results:
        uid = (sp.event("vad-start") or {}).get("utterance_id")
        decision = str(((sp.event("decision") or {}).get("data") or {}).get("decision") or "none")
        decisions[decision] = decisions.get(decision, 0) + 1
        summon = next((d for t, d in summons.get(device, []) if d.get("utterance_id") == uid), None)
        t_summon = next((t for t, d in summons.get(device, []) if d.get("utterance_id") == uid), None)
        if t_summon is None:
            # a read-back ("Summon X to Y?") is the pipeline asking, not an action lost: counted apart
            if decision == "confirm":
                read_back += 1
            else:
                missing_action += 1
        else:
            action_ms.append((t_summon - sp.t_end) * 1000)
            team, loc = expected[phrase]
            if summon.get("team") == team and summon.get("location") == loc:
                correct += 1
        first = sp.first_audio_at
        if first is None:
            missing_reply += 1
            continue
        reply_ms.append((first - sp.t_end) * 1000)
        ev = {name: (sp.event(name) or {}).get("time") for name in ("vad-end", "stt-end", "intent", "action", "tts-start")}
        if all(ev.values()):
            stages["ingest_vad"].append((ev["vad-end"] - sp.t_end) * 1000)
            stages["stt"].append((ev["stt-end"] - ev["vad-end"]) * 1000)
            stages["intent"].append((ev["intent"] - ev["stt-end"]) * 1000)
            stages["action"].append((ev["action"] - ev["intent"]) * 1000)
            stages["tts"].append((ev["tts-start"] - ev["action"]) * 1000)
            stages["delivery"].append((first - ev["tts-start"]) * 1000)
    total = sum(statistics.fmean(v) for v in stages.values() if v) or 1.0
    return {
        "devices": devices,
        "utterances": len(results),
        "wall_s": round(wall, 1),
        "action_p50_ms": _pct(action_ms, 50),
        "action_p99_ms": _pct(action_ms, 99),
        "reply_p50_ms": _pct(reply_ms, 50),
        "reply_p99_ms": _pct(reply_ms, 99),
        "reply_max_ms": _pct(reply_ms, 100),
        "target_p99_ms": 500,
        "actions_correct": correct,
        "actions_missing": missing_action,
        "read_backs": read_back,
        "decisions": dict(sorted(decisions.items())),
        "replies_missing": missing_reply,
        "stage_p50_ms": {k: _pct(v, 50) for k, v in stages.items()},
        "stage_p99_ms": {k: _pct(v, 99) for k, v in stages.items()},
        "stage_share": {k: round(statistics.fmean(v) / total, 3) if v else None for k, v in stages.items()},
        "behind_realtime": _pct(stages["ingest_vad"], 99) is not None and _pct(stages["ingest_vad"], 99) > 1000,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }


async def _idle(settings: Settings, n: int, ingress, say) -> dict:
    """Connect ``n`` idle watches (each sends 200 ms of silence, so its session opens, then stays
    connected) and report the session hosts' RSS growth per watch."""
    v = settings.voice
    before = await ingress.host_stats.remote()
    watches = [SimulatedWatch(f"idle-{i:04d}", settings.mqtt.host, settings.mqtt.port, prefix=v.topic_prefix)
               for i in range(n)]
    say(f"connecting {n} idle watches...")
    for i in range(0, n, 50):
        await asyncio.gather(*(w.__aenter__() for w in watches[i:i + 50]))
    try:
        silence = bytes(6400)
        await asyncio.gather(*(w.publish_raw(silence) for w in watches))
        want = sum(h["devices"] for h in before) + n
        deadline = time.time() + 120
        while True:
            after = await ingress.host_stats.remote()
            if sum(h["devices"] for h in after) >= want or time.time() > deadline:
                break
            await asyncio.sleep(1.0)
        await asyncio.sleep(2.0)  # let the sessions' first chunk be processed
        after = await ingress.host_stats.remote()
    finally:
        for w in watches:
            await w.__aexit__()
    rss_before = {h["host"]: h["rss"] for h in before}
    hosted = sum(h["devices"] for h in after)
    grown = sum(h["rss"] - rss_before[h["host"]] for h in after if h["host"] in rss_before)
    new_devices = sum(h["devices"] for h in after if h["host"] in rss_before) - sum(h["devices"] for h in before)
    return {
        "idle_watches": n,
        "sessions_hosted": hosted,
        "session_hosts": len(after),
        "host_rss_mb": [round(h["rss"] / 2**20, 1) for h in after],
        "host_rss_total_mb": round(sum(h["rss"] for h in after) / 2**20, 1),
        "rss_per_idle_watch_kb": round(grown / new_devices / 1024, 1) if before and new_devices > 0 else None,
        "rss_per_watch_all_in_kb": round(sum(h["rss"] for h in after) / max(hosted, 1) / 1024, 1),
    }


def run_bench(settings: Settings, *, devices: int = 20, utterances: int = 3, replicas: int | None = None,
              seed: int = 7, lm_preset: str | None = None, idle_devices: int = 0, say=print) -> dict:
    """Deploy a private voice edge (own topic prefix and STT port), drive it, tear it down."""
    import socket

    from hotpath.graphs.voice_edge_app import start_voice, stop_voice

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tag = "-bench-" + uuid.uuid4().hex[:6]
    v = settings.voice
    voice = v.model_copy(update={
        "topic_prefix": f"b{tag}/",
        "stt": v.stt.model_copy(update={"grpc_port": port, "replicas": replicas or min(devices, 12), "lease_timeout_s": 10.0,
                                        "lm_preset": lm_preset or v.stt.lm_preset}),
        "limits": v.limits.model_copy(update={"max_devices": max(devices + idle_devices, v.limits.max_devices)}),
    })
    s = settings.model_copy(update={"voice": voice})
    say("; ".join(start_voice(s, tag=tag, detached=False)))
    try:
        figures = asyncio.run(_drive(s, devices, utterances, seed, say, tag)) if devices else {"devices": 0}
        if idle_devices:
            import ray

            from hotpath.graphs.voice_edge_app import INGRESS_ACTOR

            figures["idle"] = asyncio.run(_idle(s, idle_devices, ray.get_actor(INGRESS_ACTOR + tag), say))
        figures["stt"] = {"engine": voice.stt.engine, "replicas": voice.stt.replicas, "lm_preset": voice.stt.lm_preset,
                          "lm_mode": voice.stt.lm_mode}
        figures["tts"] = {"engine": voice.tts.engine, "cache_size": voice.tts.cache_size, "threads": voice.tts.threads}
        figures["vad_gate_dbfs"] = voice.vad_gate_dbfs
        return figures
    finally:
        stop_voice(s, tag=tag)


def bench_voice(
    devices: int = typer.Option(20, "--devices", "-n", help="Simulated watches streaming in real time"),
    idle_devices: int = typer.Option(0, "--idle-devices", help="Then connect this many idle watches and report the RSS per idle watch"),
    utterances: int = typer.Option(3, help="Measured utterances per watch (after one warm-up each)"),
    replicas: Optional[int] = typer.Option(None, help="STT replicas (default: min(devices, 12))"),
    seed: int = typer.Option(7),
    lm_preset: Optional[str] = typer.Option(None, "--lm-preset", help="pocketsphinx LM pass: fastest|fast|balanced|full"),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON only"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML settings file"),
) -> None:
    """Latency from end of speech (VAD silence window excluded) to the action and to the reply."""
    from hotpath.config import load_settings
    
    s = load_settings(config)
    say = (lambda m: typer.echo(m, err=True)) if as_json else typer.echo
    figures = run_bench(s, devices=devices, utterances=utterances, replicas=replicas, seed=seed,
                        lm_preset=lm_preset, idle_devices=idle_devices, say=say)
    typer.echo(json.dumps(figures, indent=None if as_json else 2))


def register(bench: typer.Typer) -> None:
    """Add ``hotpath bench voice``."""
    bench.command("voice")(bench_voice)
