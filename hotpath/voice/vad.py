"""Voice activity: the Silero model shipped inside faster-whisper, and the segmentation state machine.

:class:`SileroVad` scores 512-sample frames (32 ms at 16 kHz) with onnxruntime, carrying the model's
recurrent state and 64-sample context from call to call, so a stream is scored chunk by chunk.
:class:`Segmenter` turns per-frame speech probabilities into utterances: it opens one on speech
(with a little pre-roll), closes it after ``silence_s`` of silence, and cuts it at ``max_s``.
The segmenter is pure; it does not know where the probabilities come from.
:class:`DeviceStream` is the plain object a device session holds: ``push(chunk)`` orders the chunks,
scores whole frames and returns the segment events that chunk caused. It keeps less than one frame
of leftover audio, so its memory is bounded whatever arrives.

CPU: watches stream all the time, and most of what they stream is silence. While no utterance is open,
a chunk whose every frame is quieter than ``vad_gate_dbfs`` (RMS, default -60 dBFS: digital silence,
a quiet room's noise floor) is not scored by the model: its frames count as silence (probability 0)
and the model's recurrent state is set to the one it reaches after a second of silence. Inside an utterance
every frame is scored, so how an utterance ends does not change.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Literal

import numpy as np

from hotpath.errors import ModelError
from hotpath.voice.audio import AudioChunk, Sequencer, pcm_to_float

if TYPE_CHECKING:
    from hotpath.voice.settings import VoiceSettings

__all__ = ["FRAME", "SileroVad", "silero_path", "Segmenter", "SpeechStart", "SpeechAudio", "SpeechEnd", "DeviceStream"]

FRAME = 512
_CONTEXT = 64


def silero_path() -> str:
    """The Silero VAD ONNX file inside the installed faster-whisper package."""
    import faster_whisper

    assets = os.path.join(os.path.dirname(faster_whisper.__file__), "assets")
    for name in sorted(os.listdir(assets), reverse=True):
        if name.startswith("silero_vad") and name.endswith(".onnx"):
            return os.path.join(assets, name)
    raise ModelError("no silero_vad*.onnx inside faster_whisper/assets")


class SileroVad:
    """Streaming Silero VAD over 512-sample frames. One instance per stream (it has state)."""

    _session = None  # shared per process: the session is thread-safe and 2 MB

    def __init__(self, path: str | None = None) -> None:
        if SileroVad._session is None or path is not None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.inter_op_num_threads = 1
            opts.intra_op_num_threads = 1
            opts.log_severity_level = 4
            try:
                session = ort.InferenceSession(path or silero_path(), providers=["CPUExecutionProvider"], sess_options=opts)
            except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
                raise ModelError(f"cannot load the Silero VAD model: {exc}") from exc
            if path is not None:
                self._own = session
            else:
                SileroVad._session = session
        self.session = getattr(self, "_own", None) or SileroVad._session
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(_CONTEXT, dtype=np.float32)
        self.frames_scored = 0

    _quiet_state = None  # per process: the recurrent state after 1 s of silence

    def skip(self, samples: np.ndarray) -> np.ndarray:
        """``samples`` are not scored (gated as silence): probability 0 for each whole frame; the
        recurrent state becomes the one the model settles in after a second of silence (computed once
        per process), so the next loud frame is scored as after silence, and the context is the
        skipped audio's tail."""
        n = len(samples) // FRAME
        if SileroVad._quiet_state is None:
            probe = SileroVad.__new__(SileroVad)
            probe.session = self.session
            probe.reset()
            probe(np.zeros(FRAME * 32, dtype=np.float32))
            SileroVad._quiet_state = (probe._h.copy(), probe._c.copy())
        self._h, self._c = (a.copy() for a in SileroVad._quiet_state)
        if n:
            self._context = np.asarray(samples[n * FRAME - _CONTEXT : n * FRAME], dtype=np.float32).copy()
        return np.zeros(n, dtype=np.float32)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """Speech probability of each whole 512-sample frame of ``samples`` (float32, len % 512 == 0)."""
        n = len(samples) // FRAME
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        frames = samples[: n * FRAME].reshape(n, FRAME).astype(np.float32, copy=False)
        contexts = np.empty((n, _CONTEXT), dtype=np.float32)
        contexts[0] = self._context
        if n > 1:
            contexts[1:] = frames[:-1, -_CONTEXT:]
        batch = np.concatenate([contexts, frames], axis=1)
        probs, self._h, self._c = self.session.run(None, {"input": batch, "h": self._h, "c": self._c})
        self._context = frames[-1, -_CONTEXT:].copy()
        self.frames_scored += n
        return np.asarray(probs, dtype=np.float32).reshape(-1)


@dataclass(frozen=True, slots=True)
class SpeechStart:
    """An utterance opened; ``at_sample`` counts samples since the stream began."""

    at_sample: int


@dataclass(frozen=True, slots=True)
class SpeechAudio:
    """Audio of the open utterance (pre-roll first), in order."""

    pcm: bytes


@dataclass(frozen=True, slots=True)
class SpeechEnd:
    """The open utterance closed."""

    reason: Literal["silence", "max-length", "device-stop", "too-short"]
    at_sample: int
    speech_samples: int
    """Samples from the utterance start to the last speech frame."""


SegmentEvent = SpeechStart | SpeechAudio | SpeechEnd


class Segmenter:
    """Per-frame probabilities -> utterance events. Hysteresis: opens at ``threshold``, counts
    silence below ``threshold - 0.15``."""

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        silence_s: float = 0.7,
        max_s: float = 15.0,
        min_speech_s: float = 0.25,
        preroll_s: float = 0.3,
        sample_rate: int = 16000,
    ) -> None:
        self.threshold = threshold
        self.off_threshold = max(0.05, threshold - 0.15)
        self.silence_frames = max(1, round(silence_s * sample_rate / FRAME))
        self.max_frames = max(1, round(max_s * sample_rate / FRAME))
        self.min_speech_frames = round(min_speech_s * sample_rate / FRAME)
        self._preroll: deque[bytes] = deque(maxlen=max(0, round(preroll_s * sample_rate / FRAME)))
        self.frames_seen = 0
        self.in_speech = False
        self._utt_frames = 0
        self._silence_run = 0
        self._speech_frames = 0
        self._last_speech = 0
        self._start = 0

    def push(self, frame: bytes, prob: float) -> list[SegmentEvent]:
        """Feed one 512-sample PCM16 frame and its speech probability."""
        self.frames_seen += 1
        if not self.in_speech:
            if prob >= self.threshold:
                self.in_speech = True
                self._start = self.frames_seen - 1 - len(self._preroll)
                self._utt_frames = len(self._preroll) + 1
                self._silence_run = 0
                self._speech_frames = 1
                self._last_speech = self._utt_frames
                pre = b"".join(self._preroll)
                self._preroll.clear()
                return [SpeechStart(self._start * FRAME), SpeechAudio(pre + frame)]
            if self._preroll.maxlen:
                self._preroll.append(frame)
            return []
        self._utt_frames += 1
        if prob >= self.off_threshold:
            self._silence_run = 0
            self._speech_frames += 1
            self._last_speech = self._utt_frames
        else:
            self._silence_run += 1
        out: list[SegmentEvent] = [SpeechAudio(frame)]
        if self._silence_run >= self.silence_frames:
            out.append(self._close("silence" if self._speech_frames >= self.min_speech_frames else "too-short"))
        elif self._utt_frames >= self.max_frames:
            out.append(self._close("max-length"))
        return out

    def stop(self) -> list[SegmentEvent]:
        """The device ended the utterance (framed ``stop``)."""
        if not self.in_speech:
            return []
        return [self._close("device-stop")]

    def _close(self, reason) -> SpeechEnd:
        self.in_speech = False
        self._silence_run = 0
        return SpeechEnd(reason, self.frames_seen * FRAME, self._last_speech * FRAME)


_FRAME_BYTES = FRAME * 2


class DeviceStream:
    def __init__(self, device_id: str, settings: VoiceSettings, vad: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.device_id = device_id
        self.sequencer = Sequencer(settings.limits.reorder_window)
        self.vad = vad or SileroVad()
        self.segmenter = Segmenter(
            threshold=settings.vad_threshold,
            silence_s=settings.vad_silence_s,
            max_s=settings.max_utterance_s,
            min_speech_s=settings.vad_min_speech_s,
            preroll_s=settings.vad_preroll_s,
            sample_rate=settings.limits.sample_rate,
        )
        self._rest = b""
        self.samples_in = 0
        gate = getattr(settings, "vad_gate_dbfs", None)
        self.gate_rms = None if gate is None else 10 ** (gate / 20)
        """Frames below this RMS (full scale 1.0) are silence without scoring while no utterance is open."""
        self.frames_gated = 0

    @property
    def in_speech(self) -> bool:
        return self.segmenter.in_speech

    def push(self, chunk: AudioChunk) -> list[SegmentEvent]:
        events: list[SegmentEvent] = []
        for c in self.sequencer.push(chunk):
            events.extend(self._audio(c.pcm))
            if c.stop:
                events.extend(self.segmenter.stop())
        return events

    def _audio(self, pcm: bytes) -> list[SegmentEvent]:
        self.samples_in += len(pcm) // 2
        data = self._rest + pcm
        n = len(data) // _FRAME_BYTES
        self._rest = data[n * _FRAME_BYTES :]
        if n == 0:
            return []
        whole = data[: n * _FRAME_BYTES]
        samples = pcm_to_float(whole)
        if self.gate_rms is not None and not self.segmenter.in_speech and hasattr(self.vad, "skip"):
            frames = samples.reshape(n, FRAME)
            quiet = float(np.sqrt(np.max(np.mean(frames * frames, axis=1)))) < self.gate_rms
            probs = self.vad.skip(samples) if quiet else self.vad(samples)
            self.frames_gated += n if quiet else 0
        else:
            probs = self.vad(samples)
        events: list[SegmentEvent] = []
        for i in range(n):
            events.extend(self.segmenter.push(whole[i * _FRAME_BYTES : (i + 1) * _FRAME_BYTES], float(probs[i])))
        return events
