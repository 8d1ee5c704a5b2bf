"""``hotpath bench voice-cpu``: CPU seconds each stage of the voice edge costs per utterance, in process.

The end-to-end bench (``hotpath bench voice``) measures latency, and on a small machine latency is
mostly queueing: whether 20 watches fit on the cores is a question of CPU *time*. This bench runs each
stage alone in this process on the bench's own phrases (:data:`bench.voice.PHRASES`, espeak-ng, as
streamed by the simulated watch: lead silence, speech, tail silence) and reads the process's CPU
clock (``time.process_time``: every thread of the process, onnxruntime's too) around it. CPU time
does not grow when other work contends for the cores, so the figures hold on a busy machine (wall
time would not). Each figure is the median of ``--repeats`` runs.

Stages:

* ``vad``: Silero VAD + segmenter (:class:`hotpath.voice.vad.DeviceStream`), per second of audio
  streamed: digital silence, a quiet room (-70 dBFS noise), factory noise (-35 dBFS) and the
  phrases' streams (speech with its silences);
* ``stt``: the pocketsphinx engine per utterance (the VAD's utterance audio), for each ``lm_mode``
  and ``lm_preset`` asked for, split into streaming (``accept``) and end of utterance (``finish``);
  also the command grammar alone (``general_lm`` off), to tell the grammar from the LM;
* ``intent``: the intent classifier's ``predict`` on the transcripts;
* ``pipeline``: :meth:`Pipeline.handle` (intent, route, dialog, trace events; a list publisher and
  a silent TTS);
* ``tts``: the reply engine (``voice.tts``) per reply of the pipeline, first and repeated
  (the reply cache);
* ``ingest``: per 200 ms chunk, the in-process part only: encode + parse the framed payload, the
  pickle of the chunk (what a Ray call serializes), sequencing. The broker, Ray's RPC and gRPC are
  not in it; the end-to-end bench reports the edge processes' CPU for those.

``demand`` turns the table into CPU-seconds per wall-second at ``--devices`` watches that stream all
the time (silence included) and speak one bench phrase every ``--period`` seconds each, against the
machine's cores: with every reply synthesized (the bound), and with replies from the cache (the
bench's steady state: its replies repeat). ``fits``: below 70 % of the cores, the headroom that keeps
queueing short.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import statistics
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import typer

__all__ = ["measure", "demand"]

CHUNK = 6400  # 200 ms of PCM16 at 16 kHz, the simulated watch's chunk
RATE = 16000


def _cpu(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Median CPU seconds of ``fn()`` over ``repeats`` runs (and the last result)."""
    xs, out = [], None
    for _ in range(max(1, repeats)):
        t0 = time.process_time()
        out = fn()
        xs.append(time.process_time() - t0)
    return statistics.median(xs), out


def _stream(pcm: bytes, lead_s: float = 0.6, tail_s: float = 1.2) -> bytes:
    """What the simulated watch streams for one utterance (bench.voice_sim.SimulatedWatch.speak)."""
    return b"\x00\x00" * int(RATE * lead_s) + pcm + b"\x00\x00" * int(RATE * tail_s)


def _noise(seconds: float, dbfs: float, seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(int(RATE * seconds)) * (10 ** (dbfs / 20) * 32768)
    return np.clip(x, -32768, 32767).astype("<i2").tobytes()


def _chunks(pcm: bytes, device: str = "cpu-bench") -> list:
    from hotpath.voice.audio import AudioChunk

    return [AudioChunk(device, pcm[i:i + CHUNK], seq=n) for n, i in enumerate(range(0, len(pcm), CHUNK))]


def _vad_run(voice, pcm: bytes):
    """Stream ``pcm`` through a fresh device stream; returns the utterances' audio."""
    from hotpath.voice.vad import DeviceStream, SpeechAudio, SpeechEnd, SpeechStart

    ds = DeviceStream("cpu-bench", voice)
    utts, cur = [], None
    for c in _chunks(pcm):
        for ev in ds.push(c):
            if isinstance(ev, SpeechStart):
                cur = bytearray()
            elif isinstance(ev, SpeechAudio) and cur is not None:
                cur += ev.pcm
            elif isinstance(ev, SpeechEnd) and cur is not None:
                if ev.reason != "too-short":
                    utts.append(bytes(cur))
                cur = None
    return utts


def _decode(engine, pcm: bytes, device: str) -> tuple[float, float, object]:
    from hotpath.voice.stt import SttHints

    t0 = time.process_time()
    s = engine.open(SttHints(device_id=device))
    for i in range(0, len(pcm), CHUNK):
        s.accept(pcm[i:i + CHUNK])
    t1 = time.process_time()
    tr = s.finish()
    return t1 - t0, time.process_time() - t1, tr


def measure(voice, *, repeats: int = 3, lm_modes=("lazy", "parallel"), presets=("fast",),
            tts: bool = True, say: Callable[[str], None] = print) -> dict:
    from bench.voice import PHRASES
    from bench.voice_sim import synthesize_speech
    from hotpath.voice.audio import Sequencer, encode_framed, parse_payload
    from hotpath.voice.evaluate import _ListPublisher, _SilentTts
    from hotpath.voice.pipeline import Pipeline
    from hotpath.voice.routing import load_classifier
    from hotpath.voice.stt_pocketsphinx import PocketsphinxEngine

    phrases = [p for p, _, _ in PHRASES]
    say(f"synthesizing {len(phrases)} bench phrases (espeak-ng)...")
    speech = {p: synthesize_speech(p) for p in phrases}
    streams = {p: _stream(speech[p]) for p in phrases}
    out: dict = {"phrases": len(phrases), "repeats": repeats, "cpu_clock": "time.process_time (all threads of this process)"}

    # ---------------------------------------------------------------- VAD
    say("VAD...")
    _vad_run(voice, _noise(1.0, -35))  # the ONNX session loads once
    vad = {}
    for name, pcm in (("digital_silence", bytes(RATE * 2 * 10)), ("quiet_room_-70dBFS", _noise(10.0, -70)),
                      ("factory_noise_-35dBFS", _noise(10.0, -35)), ("phrase_streams", b"".join(streams.values()))):
        cpu, _ = _cpu(lambda pcm=pcm: _vad_run(voice, pcm), repeats)
        vad[name] = round(cpu / (len(pcm) / 2 / RATE), 5)
    out["vad_cpu_s_per_audio_s"] = vad
    utts = {p: _vad_run(voice, streams[p]) for p in phrases}
    lost = [p for p, u in utts.items() if len(u) != 1]
    if lost:
        raise RuntimeError(f"the VAD did not cut exactly one utterance from: {lost}")
    utt = {p: u[0] for p, u in utts.items()}
    out["utterance_audio_s"] = {p: round(len(u) / 2 / RATE, 2) for p, u in utt.items()}
    out["stream_audio_s"] = {p: round(len(s) / 2 / RATE, 2) for p, s in streams.items()}

    # ---------------------------------------------------------------- STT
    def stt_config(**upd):
        v = voice.model_copy(update={"stt": voice.stt.model_copy(update=upd)})
        return PocketsphinxEngine.from_settings(v)

    configs = [("grammar_only", dict(general_lm=False))]
    configs += [(f"{mode}/{preset}", dict(lm_mode=mode, lm_preset=preset)) for preset in presets for mode in lm_modes]
    stt = {}
    heard: dict[str, dict[str, tuple[str, str]]] = {}
    for name, upd in configs:
        say(f"STT {name}...")
        engine = stt_config(**upd)
        for p in phrases:  # the live cepstral mean settles, as on a watch after its first words
            _decode(engine, utt[p], "cpu-bench")
        per, verdicts, lm_at = [], {}, {}
        accept_s, finish_s = [], []
        for p in phrases:
            a, f = [], []
            for _ in range(repeats):
                ca, cf, tr = _decode(engine, utt[p], "cpu-bench")
                a.append(ca)
                f.append(cf)
            accept_s.append(statistics.median(a))
            finish_s.append(statistics.median(f))
            per.append(accept_s[-1] + finish_s[-1])
            verdicts[p] = tr.source
            lm_at[p] = tr.alternatives.get("lm_at", "-")
            heard.setdefault(name, {})[p] = (tr.text, tr.source)
        audio_s = sum(len(utt[p]) for p in phrases) / 2 / RATE
        stt[name] = {
            "cpu_s_per_utterance": round(statistics.fmean(per), 4),
            "accept_cpu_s": round(statistics.fmean(accept_s), 4),
            "finish_cpu_s": round(statistics.fmean(finish_s), 4),
            "cpu_s_per_audio_s": round(sum(per) / audio_s, 4),
            "max_cpu_s_per_utterance": round(max(per), 4),
            "verdicts": verdicts,
            "lm_at": lm_at,
        }
    out["stt"] = stt
    default = f"{voice.stt.lm_mode}/{voice.stt.lm_preset}"
    texts = heard.get(default) or heard[configs[-1][0]]

    # ---------------------------------------------------------------- intent and pipeline
    say("intent + pipeline...")
    clf = load_classifier(voice.classifier)
    for t, _ in texts.values():
        clf.predict(t)
    cpu, _ = _cpu(lambda: [clf.predict(t) for t, _ in texts.values()], max(repeats, 5))
    out["intent_cpu_s"] = round(cpu / len(texts), 5)
    pub = _ListPublisher()
    pipe = Pipeline(voice, classifier=clf, tts=_SilentTts(), publisher=pub)
    replies: dict[str, str] = {}

    async def handle_all() -> None:
        for n, (p, (t, src)) in enumerate(texts.items()):
            o = await pipe.handle(f"cpu-{n}", f"u{n}", t, time.time(), stt={"source": src})
            replies[p] = o.reply
            pipe.dialogs.pop(f"cpu-{n}", None)
        pub.items.clear()

    asyncio.run(handle_all())
    cpu, _ = _cpu(lambda: asyncio.run(handle_all()), max(repeats, 5))
    out["pipeline_cpu_s"] = round(cpu / len(texts), 5)
    out["transcripts"] = {p: {"text": t, "source": s, "reply": replies[p]} for p, (t, s) in texts.items()}
    pipe.close_dialogs()

    # ---------------------------------------------------------------- TTS
    if tts:
        from hotpath.voice.tts import create_tts

        say(f"TTS ({voice.tts.engine})...")
        engine = create_tts(voice.tts)
        uniq = sorted(set(replies.values()))
        first, again, audio = [], [], 0.0
        engine.synthesize("Warm up.")
        for r in uniq:
            if hasattr(engine, "cache"):
                engine.cache.clear()
            c, pcm = _cpu(lambda r=r: engine.synthesize(r), 1)
            first.append(c)
            audio += len(pcm) / 2 / RATE
            c2, _ = _cpu(lambda r=r: engine.synthesize(r), repeats)
            again.append(c2)
        out["tts"] = {"engine": getattr(engine, "name", "?"), "replies": len(uniq),
                      "cpu_s_per_reply": round(statistics.fmean(first), 4),
                      "cpu_s_per_reply_repeated": round(statistics.fmean(again), 5),
                      "cached": hasattr(engine, "cache"),
                      "reply_audio_s": round(audio / len(uniq), 2)}

    # ---------------------------------------------------------------- ingest (in-process part)
    seq = Sequencer(voice.limits.reorder_window)

    def ingest(pcm: bytes) -> int:
        n = 0
        for i in range(0, len(pcm), CHUNK):
            payload = encode_framed(pcm[i:i + CHUNK], seq=n)
            chunk = parse_payload("cpu-bench", payload, max_bytes=voice.limits.max_payload_bytes, received_at=time.time())
            pickle.loads(pickle.dumps((chunk, 1)))
            seq.push(chunk)
            n += 1
        return n

    def ingest_fresh() -> int:
        nonlocal seq
        seq = Sequencer(voice.limits.reorder_window)
        return ingest(bytes(RATE * 2 * 10))

    cpu, n = _cpu(ingest_fresh, repeats)
    out["ingest_cpu_s_per_chunk"] = round(cpu / n, 6)
    return out


def demand(table: dict, *, devices: int, period_s: float, stt_config: str, cores: int, quiet: str) -> dict:
    """CPU-s per wall-s at ``devices`` watches streaming all the time, one phrase each every ``period_s``."""
    utt_s = statistics.fmean(table["utterance_audio_s"].values())
    stream_s = statistics.fmean(table["stream_audio_s"].values())
    vad = table["vad_cpu_s_per_audio_s"]
    per_utt = {
        # the utterance's stream costs the phrase-stream rate; the rest of the period is background
        "vad": vad["phrase_streams"] * stream_s,
        "stt": table["stt"][stt_config]["cpu_s_per_utterance"],
        "pipeline": table["pipeline_cpu_s"],
        "tts": (table.get("tts") or {}).get("cpu_s_per_reply", 0.0),
        "ingest": table["ingest_cpu_s_per_chunk"] * stream_s / (CHUNK / 2 / RATE),
    }
    background_per_s = vad[quiet] + table["ingest_cpu_s_per_chunk"] / (CHUNK / 2 / RATE)
    rate = devices / period_s
    rows = {k: round(v * rate, 3) for k, v in per_utt.items()}
    rows["background_vad_ingest"] = round(background_per_s * max(0.0, period_s - stream_s) / period_s * devices, 3)
    total = sum(rows.values())
    tts = table.get("tts") or {}
    # the bench's replies are its 6 phrases' templates: after the first of each, every reply is a
    # cache hit (a site's replies repeat too, but less: the cold figure is the bound)
    warm = total - rows["tts"] + tts.get("cpu_s_per_reply_repeated", rows["tts"] / max(rate, 1e-9)) * rate
    return {"devices": devices, "period_s": period_s, "utterances_per_s": round(rate, 2), "stt_config": stt_config,
            "background": quiet, "utterance_audio_s": round(utt_s, 2),
            "cpu_s_per_utterance": {k: round(v, 4) for k, v in per_utt.items()},
            "cpu_s_per_wall_s": rows, "total_cpu_s_per_wall_s": round(total, 3),
            "total_cpu_s_per_wall_s_replies_cached": round(warm, 3), "cores": cores,
            "utilisation": round(total / cores, 3), "utilisation_replies_cached": round(warm / cores, 3),
            "fits": total < 0.7 * cores, "fits_replies_cached": warm < 0.7 * cores}


def bench_voice_cpu(
    repeats: int = typer.Option(3, help="Runs per figure (the median is kept)"),
    devices: int = typer.Option(20, "--devices", "-n", help="Watches for the demand figure"),
    period_s: float = typer.Option(6.0, "--period", help="Seconds between one watch's utterances (bench voice: about 6)"),
    lm_modes: str = typer.Option("lazy,parallel", "--lm-modes"),
    presets: str = typer.Option("fast", "--presets", help="pocketsphinx LM presets to measure: fastest,fast,balanced,full"),
    background: str = typer.Option("quiet_room_-70dBFS", "--background",
                                   help="What watches stream between utterances (a vad_cpu_s_per_audio_s row)"),
    tts: bool = typer.Option(True, "--tts/--no-tts", help="Measure the reply voice too"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML settings file"),
) -> None:
    """CPU seconds per utterance of each voice-edge stage (in process), and the demand at N watches."""
    from hotpath.config import load_settings

    s = load_settings(config)
    say = lambda m: typer.echo(m, err=True)  # noqa: E731
    modes = tuple(m for m in lm_modes.split(",") if m)
    table = measure(s.voice, repeats=repeats, lm_modes=modes, presets=tuple(p for p in presets.split(",") if p),
                    tts=tts, say=say)
    default = f"{s.voice.stt.lm_mode}/{s.voice.stt.lm_preset}"
    config_name = default if default in table["stt"] else next(k for k in table["stt"] if k != "grammar_only")
    table["settings"] = {"lm_mode": s.voice.stt.lm_mode, "lm_preset": s.voice.stt.lm_preset,
                         "replicas": s.voice.stt.replicas, "tts": s.voice.tts.engine,
                         "vad_gate_dbfs": getattr(s.voice, "vad_gate_dbfs", None)}
    table["demand"] = demand(table, devices=devices, period_s=period_s, stt_config=config_name,
                             cores=os.cpu_count() or 1, quiet=background)
    table["load_avg_1m"] = round(os.getloadavg()[0], 2)
    typer.echo(json.dumps(table, indent=2))


def register(bench: typer.Typer) -> None:
    """Add ``hotpath bench voice-cpu``."""
    bench.command("voice-cpu")(bench_voice_cpu)
