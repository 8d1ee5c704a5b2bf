"""One device's audio stream: order the chunks, score 512-sample frames, segment utterances.

:class:`DeviceStream` is the plain object a device session holds. ``push(chunk)`` returns the
segment events (:class:`~hotpath.voice.vad.SpeechStart`, ``SpeechAudio``, ``SpeechEnd``) that chunk
caused. It keeps less than one frame of leftover audio, so its memory is bounded whatever arrives.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from hotpath.voice.audio import AudioChunk, Sequencer, pcm_to_float
from hotpath.voice.settings import VoiceSettings
from hotpath.voice.vad import FRAME, Segmenter, SegmentEvent, SileroVad

__all__ = ["DeviceStream"]

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
        probs = self.vad(pcm_to_float(whole))
        events: list[SegmentEvent] = []
        for i in range(n):
            events.extend(self.segmenter.push(whole[i * _FRAME_BYTES : (i + 1) * _FRAME_BYTES], float(probs[i])))
        return events
