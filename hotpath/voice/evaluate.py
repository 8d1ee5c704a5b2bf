"""``hotpath voice eval``: the speech corpus through the real VAD -> STT -> intent -> router path.

In process, no MQTT: each clip is cut by the Silero VAD into utterances as a watch's stream would be,
each utterance decoded by the pocketsphinx engine (grammar + general LM and the rejection verdict),
then handled by :class:`~hotpath.voice.pipeline.Pipeline` with a list publisher and a silent TTS
(reply audio is not scored here). Each clip has a device of its own, so no dialog carries over.

Figures per group (``overall``, ``by_voice``, ``by_snr``, ``by_kind``):

* ``command_acceptance`` — commands that acted at once with the right intent AND every slot exact;
* ``acceptance_with_confirm`` — ... or were read back for a yes/no with everything exact;
* ``wrong_action_rate`` — commands that acted at once with a wrong intent or slot;
* ``false_action_rate`` — non-command clips (questions, chatter, near-misses, noise, silence) that
  caused any local action at once; ``false_confirm_rate`` — those that were read back as a command;
* ``reject_rate`` — clips answered "say again?"; ``question_wer`` — word error rate of the text a
  question sent to the cloud; ``latency_ms`` — end of speech -> decision (p50/p95/max).
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from hotpath.voice.corpus import NON_COMMAND_KINDS, Utterance, audio
from hotpath.voice.tts import TtsEngine

__all__ = ["evaluate", "summarise", "select", "read_rows", "ClipResult", "wer"]

_FRAME = 512


class _SilentTts(TtsEngine):
    name = "silent"

    def synthesize(self, text: str) -> bytes:
        return b""


class _ListPublisher:
    def __init__(self) -> None:
        self.items: list[tuple[str, bytes]] = []

    async def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        self.items.append((topic, payload))


@dataclass
class ClipResult:
    id: str
    kind: str
    voice: str | None
    split: str
    snr: str
    expected: dict
    utterances: int = 0
    texts: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    actions: list[dict] = field(default_factory=list)
    proposed: list[dict] = field(default_factory=list)
    cloud_text: str | None = None
    features: list[dict] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)


def _norm(v: str | None, teams: set[str]) -> str | None:
    if not v:
        return None
    v = " ".join(w for w in v.lower().split() if w not in ("the", "a", "an"))
    if v.endswith(" team") and v[:-5] in teams:
        v = v[:-5]
    return v


def _exact(act: dict, u_intent: str, slots: dict, teams: set[str]) -> bool:
    if act.get("action") != u_intent:
        return False
    if u_intent == "SUMMON_TEAM":
        return (_norm(act.get("team"), teams) == _norm(slots.get("team"), teams)
                and _norm(act.get("location"), teams) == _norm(slots.get("location"), teams))
    if u_intent == "DIAL_PERSON":
        return _norm(act.get("person"), teams) == _norm(slots.get("person"), teams)
    return True


def wer(ref: str, hyp: str) -> tuple[int, int]:
    """(edits, reference words)."""
    r, h = re.findall(r"[a-z0-9']+", ref.lower()), re.findall(r"[a-z0-9']+", hyp.lower())
    d = list(range(len(h) + 1))
    for i, rw in enumerate(r, 1):
        prev, d[0] = d[0], i
        for j, hw in enumerate(h, 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (rw != hw))
            prev, d[j] = d[j], cur
    return d[len(h)], len(r)


def evaluate(rows: list[Utterance], recipe: dict, cache, voice, *, engine=None, classifier=None,
             say: Callable[[str], None] = lambda m: None,
             on_result: Callable[[ClipResult], None] | None = None) -> list[ClipResult]:
    from hotpath.voice.pipeline import Pipeline
    from hotpath.voice.routing import load_classifier
    from hotpath.voice.stt import SttHints
    from hotpath.voice.stt_pocketsphinx import PocketsphinxEngine
    from hotpath.voice.vad import Segmenter, SileroVad, SpeechAudio, SpeechEnd, SpeechStart

    engine = engine or PocketsphinxEngine.from_settings(voice)
    classifier = classifier or load_classifier(voice.classifier)
    pub = _ListPublisher()
    pipe = Pipeline(voice, classifier=classifier, tts=_SilentTts(), publisher=pub)
    results: list[ClipResult] = []
    t0 = time.monotonic()

    async def run_all():
        for n, u in enumerate(rows, 1):
            pcm = audio(u, recipe, cache)
            res = ClipResult(u.id, u.kind, u.voice, u.split, u.snr, {"intent": u.intent, **u.slots})
            vad = SileroVad()
            seg = Segmenter(threshold=voice.vad_threshold, silence_s=voice.vad_silence_s, max_s=voice.max_utterance_s,
                            min_speech_s=voice.vad_min_speech_s, preroll_s=voice.vad_preroll_s)
            samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
            n_frames = len(samples) // _FRAME
            probs = vad(samples[: n_frames * _FRAME]) if n_frames else np.zeros(0)
            stream, events = None, []
            for i in range(n_frames):
                events.extend(seg.push(pcm[i * _FRAME * 2 : (i + 1) * _FRAME * 2], float(probs[i])))
            events.extend(seg.stop())
            for ev in events:
                if isinstance(ev, SpeechStart):
                    stream = engine.open(SttHints(device_id=u.id))
                elif isinstance(ev, SpeechAudio) and stream is not None:
                    stream.accept(ev.pcm)
                elif isinstance(ev, SpeechEnd) and stream is not None:
                    if ev.reason == "too-short":
                        stream.cancel()
                        stream = None
                        continue
                    ended = time.time()
                    tr = stream.finish()
                    stream = None
                    res.utterances += 1
                    res.texts.append(tr.text)
                    res.sources.append(tr.source)
                    res.features.append(dict(tr.alternatives))
                    before = len(pub.items)
                    out = await pipe.handle(u.id, f"{u.id}-{res.utterances}", tr.text, ended, stt={"source": tr.source})
                    res.latency_ms.append(round((time.time() - ended) * 1000, 1))
                    res.decisions.append(out.decision)
                    if out.action and out.decision in ("act", "undo-offered", "confirmed"):
                        res.actions.append(out.action)
                    if out.proposed:
                        res.proposed.append(out.proposed)
                    if out.decision == "cloud":
                        res.cloud_text = (res.cloud_text + " " if res.cloud_text else "") + tr.text
                    del pub.items[before:]
            pipe.dialogs.pop(u.id, None)
            results.append(res)
            if on_result is not None:
                on_result(res)
            if n % 25 == 0 or n == len(rows):
                say(f"{n}/{len(rows)} clips, {time.monotonic() - t0:.0f} s")
        pipe.close_dialogs()

    asyncio.run(run_all())
    return results


def select(rows: list[Utterance], *, voices: str = "all", kinds: str | None = None,
           min_snr: float | None = None, limit: int | None = None) -> list[Utterance]:
    """The clips of ``voices`` (``held-out``, ``tune``, ``all`` or names), ``kinds``, at least ``min_snr``."""
    if voices in ("held-out", "tune"):
        out = [u for u in rows if u.split == voices]
    elif voices == "all":
        out = list(rows)
    else:
        names = {v.strip() for v in voices.split(",")}
        out = [u for u in rows if u.voice in names]
    if kinds:
        want = {k.strip() for k in kinds.split(",")}
        out = [u for u in out if u.kind in want]
    if min_snr is not None:
        out = [u for u in out if u.snr in ("clean", "none") or float(u.snr) >= min_snr]
    if limit is not None and len(out) > limit:
        step = len(out) / limit
        out = [out[int(i * step)] for i in range(limit)]
    # a fixed shuffle: any prefix of a run (one stopped early) is a fair sample of the selection
    random.Random(len(out)).shuffle(out)
    return out


def _group(rs: list[ClipResult], teams: set[str], texts: dict[str, str]) -> dict:
    cmds = [r for r in rs if r.kind == "command"]
    non = [r for r in rs if r.kind in NON_COMMAND_KINDS]
    ok = sum(1 for r in cmds if r.actions and _exact(r.actions[0], r.expected["intent"], r.expected, teams))
    ok_c = sum(1 for r in cmds if (r.actions and _exact(r.actions[0], r.expected["intent"], r.expected, teams))
               or (not r.actions and r.proposed and _exact(r.proposed[0], r.expected["intent"], r.expected, teams)))
    wrong = sum(1 for r in cmds if r.actions and not _exact(r.actions[0], r.expected["intent"], r.expected, teams))
    qs = [r for r in rs if r.kind == "question"]
    edits = words = 0
    for r in qs:
        e, w = wer(texts[r.id], r.cloud_text or "")
        edits, words = edits + e, words + w
    lat = sorted(x for r in rs for x in r.latency_ms)

    def pct(q):
        return round(lat[min(len(lat) - 1, int(q * len(lat)))], 1) if lat else None

    rate = lambda a, b: round(a / b, 4) if b else None  # noqa: E731
    return {
        "clips": len(rs), "commands": len(cmds), "non_commands": len(non),
        "command_acceptance": rate(ok, len(cmds)),
        "acceptance_with_confirm": rate(ok_c, len(cmds)),
        "wrong_action_rate": rate(wrong, len(cmds)),
        "false_action_rate": rate(sum(1 for r in non if r.actions), len(non)),
        "false_actions": sum(1 for r in non if r.actions),
        "false_confirm_rate": rate(sum(1 for r in non if r.proposed and not r.actions), len(non)),
        "reject_rate": rate(sum(1 for r in rs if "reject" in r.decisions), len(rs)),
        "question_cloud_rate": rate(sum(1 for r in qs if r.cloud_text), len(qs)),
        "question_wer": rate(edits, words),
        "latency_ms": {"p50": pct(0.5), "p95": pct(0.95), "max": lat[-1] if lat else None},
    }


def summarise(results: list[ClipResult], rows: list[Utterance], teams) -> dict:
    teams = set(teams)
    texts = {u.id: u.text for u in rows}
    by = lambda key: {k: _group(v, teams, texts) for k, v in sorted(_split(results, key).items())}  # noqa: E731
    return {"overall": _group(results, teams, texts), "by_split": by(lambda r: r.split),
            "by_voice": by(lambda r: r.voice or "-"), "by_snr": by(lambda r: r.snr),
            "by_kind": by(lambda r: r.kind)}


def _split(results, key) -> dict[str, list[ClipResult]]:
    out: dict[str, list[ClipResult]] = defaultdict(list)
    for r in results:
        out[key(r)].append(r)
    return out


def read_rows(path) -> list[ClipResult]:
    """Clip results stored by ``hotpath voice eval --rows`` (JSON lines, or one JSON list)."""
    import json
    from pathlib import Path

    text = Path(path).read_text()
    items = json.loads(text) if text.lstrip().startswith("[") else [json.loads(x) for x in text.splitlines() if x.strip()]
    return [ClipResult(**d) for d in items]
