"""The faster-whisper STT engine (CTranslate2 Whisper model directory).

Whisper decodes a whole utterance at once, so the stream buffers audio (bounded by the VAD's
utterance cap upstream) and decodes in ``finish`` with the tenant's ``initial_prompt`` hints. Device
and compute type come from config (``auto``: CUDA when CTranslate2 sees a GPU).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from hotpath.errors import ConfigError, ModelError
from hotpath.voice.stt import SttEngine, SttHints, SttStream, Transcript

__all__ = ["WhisperEngine"]


class WhisperEngine(SttEngine):
    name = "faster-whisper"

    def __init__(self, model_path: Path | str, *, device: str = "auto", compute_type: str = "default",
                 beam_size: int = 1, max_new_tokens: int | None = None, cpu_threads: int = 1) -> None:
        path = Path(model_path)
        if not (path / "model.bin").exists():
            raise ConfigError(f"{path} is not a CTranslate2 Whisper model directory (no model.bin)",
                              hint="convert one with ct2-transformers-converter")
        from faster_whisper import WhisperModel

        try:
            self.model = WhisperModel(str(path), device=device, compute_type=compute_type, cpu_threads=cpu_threads)
        except Exception as exc:  # ctranslate2 raises RuntimeError/ValueError
            raise ModelError(f"cannot load the Whisper model at {path}: {exc}") from exc
        self.device = self.model.model.device
        self.beam_size = beam_size
        self.max_new_tokens = max_new_tokens

    @classmethod
    def from_settings(cls, stt) -> WhisperEngine:
        if stt.model_path is None:
            raise ConfigError("voice.stt.model_path must name a CTranslate2 Whisper model for faster-whisper")
        return cls(stt.model_path, device=stt.device, compute_type=stt.compute_type, beam_size=stt.beam_size)

    def open(self, hints: SttHints) -> SttStream:
        return _Stream(self, hints)


class _Stream(SttStream):
    def __init__(self, engine: WhisperEngine, hints: SttHints) -> None:
        self.e = engine
        self.hints = hints
        self.parts: list[bytes] = []
        self.options = None
        """faster-whisper's record of the options the last decode ran with."""

    def accept(self, pcm: bytes) -> str | None:
        self.parts.append(pcm)
        return None

    def finish(self) -> Transcript:
        t0 = time.perf_counter()
        pcm = b"".join(self.parts)
        audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        kw = {"max_new_tokens": self.e.max_new_tokens} if self.e.max_new_tokens else {}
        segments, info = self.e.model.transcribe(
            audio, language=self.hints.language or "en", initial_prompt=self.hints.initial_prompt or None,
            beam_size=self.e.beam_size, vad_filter=False, without_timestamps=True,
            condition_on_previous_text=False, temperature=0.0, **kw,
        )
        segs = list(segments)
        self.options = info.transcription_options
        text = " ".join(s.text.strip() for s in segs).strip()
        conf = float(np.exp(np.mean([s.avg_logprob for s in segs]))) if segs else 0.0
        return Transcript(text, conf, "faster-whisper", "whisper", len(audio) / 16000,
                          (time.perf_counter() - t0) * 1000,
                          alternatives={"initial_prompt": str(self.options.initial_prompt or "")})
