"""Text-to-speech behind one interface; replies go to the watch as PCM16 mono 16 kHz.

* :class:`EspeakTts` — the default that needs no download (the ``espeak-ng`` binary).
* :class:`PiperTts` — a Piper voice loaded from its ``.onnx`` path (``piper-tts`` package).

``synthesize`` is blocking (a subprocess or an ONNX run); callers run it off the event loop.
"""

from __future__ import annotations

import abc
import io
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np

from hotpath.errors import ConfigError, ModelError

__all__ = ["TtsEngine", "EspeakTts", "PiperTts", "create_tts", "resample", "chunk_pcm"]

RATE = 16000


def resample(samples: np.ndarray, src_rate: int, dst_rate: int = RATE) -> np.ndarray:
    """Linear-interpolation resampling (float32 in, float32 out); plenty for a spoken prompt."""
    if src_rate == dst_rate or len(samples) == 0:
        return samples.astype(np.float32, copy=False)
    n = int(round(len(samples) * dst_rate / src_rate))
    x = np.linspace(0, len(samples) - 1, n, dtype=np.float64)
    return np.interp(x, np.arange(len(samples)), samples).astype(np.float32)


def to_pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def chunk_pcm(pcm: bytes, chunk_ms: int, rate: int = RATE) -> list[bytes]:
    step = max(2, rate * 2 * chunk_ms // 1000)
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


class TtsEngine(abc.ABC):
    name = "tts"

    @abc.abstractmethod
    def synthesize(self, text: str) -> bytes:
        """PCM16 mono 16 kHz of ``text``."""


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

    def __init__(self, model: Path | str, *, use_cuda: bool = False) -> None:
        path = Path(model)
        config = path.with_name(path.name + ".json")
        if not path.exists() or not config.exists():
            raise ConfigError(f"Piper voice {path} (and {config.name}) not found",
                              hint="download a voice with python -m piper.download_voices")
        try:
            from piper import PiperVoice
        except ImportError as exc:
            raise ConfigError("piper-tts is not installed") from exc
        try:
            self.voice = PiperVoice.load(path, config_path=config, use_cuda=use_cuda)
        except Exception as exc:  # onnxruntime / json errors
            raise ModelError(f"cannot load Piper voice {path}: {exc}") from exc
        self.rate = self.voice.config.sample_rate

    def synthesize(self, text: str) -> bytes:
        try:
            parts = [c.audio_float_array for c in self.voice.synthesize(text)]
        except Exception as exc:
            raise ModelError(f"piper synthesis failed: {exc}") from exc
        data = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        return to_pcm16(resample(data, self.rate))


def create_tts(tts) -> TtsEngine:
    """The engine ``tts`` (TtsSettings) names."""
    if tts.engine == "piper":
        if tts.piper_model is None:
            raise ConfigError("voice.tts.piper_model must name a Piper voice .onnx")
        return PiperTts(tts.piper_model)
    return EspeakTts(tts.voice, tts.speed_wpm)
