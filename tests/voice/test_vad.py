"""Silero VAD (the onnx inside faster-whisper) and the segmentation state machine, on real speech."""

from __future__ import annotations

import numpy as np

from hotpath.voice.audio import AudioChunk, encode_framed, parse_payload
from hotpath.voice.settings import VoiceSettings
from hotpath.voice.vad import DeviceStream
from hotpath.voice.vad import FRAME, Segmenter, SileroVad, SpeechAudio, SpeechEnd, SpeechStart

from .conftest import SILENCE_1S


def _chunks(pcm: bytes, ms: int = 200):
    step = 16000 * 2 * ms // 1000
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


def _run(stream: DeviceStream, pcm: bytes):
    events = []
    for c in _chunks(pcm):
        events.extend(stream.push(AudioChunk("w-1", c)))
    return events


def test_silero_scores_speech_high_and_silence_low(speech):
    vad = SileroVad()
    pcm = speech("Need a supervisor at loading dock 4")
    samples = np.frombuffer(SILENCE_1S + pcm + SILENCE_1S, dtype="<i2").astype(np.float32) / 32768
    samples = samples[: len(samples) // FRAME * FRAME]
    probs = vad(samples)
    assert len(probs) == len(samples) // FRAME
    assert probs[:25].max() < 0.2  # leading second of silence
    assert (probs[35:70] > 0.5).mean() > 0.5  # speech in the middle


def test_chunked_scoring_matches_one_pass(speech):
    pcm = speech("Call technician Nguyen")
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    samples = samples[: len(samples) // FRAME * FRAME]
    whole = SileroVad()(samples)
    v = SileroVad()
    parts = np.concatenate([v(samples[i : i + 4 * FRAME]) for i in range(0, len(samples), 4 * FRAME)])
    np.testing.assert_allclose(parts, whole, atol=1e-4)


def test_one_utterance_ends_after_silence_window(speech):
    s = VoiceSettings()
    stream = DeviceStream("w-1", s)
    pcm = speech("Need a supervisor at loading dock 4")
    events = _run(stream, SILENCE_1S + pcm + SILENCE_1S * 2)
    starts = [e for e in events if isinstance(e, SpeechStart)]
    ends = [e for e in events if isinstance(e, SpeechEnd)]
    assert len(starts) == 1 and len(ends) == 1
    assert ends[0].reason == "silence"
    speech_end = (16000 + len(pcm) // 2)
    # closes about vad_silence_s (0.7 s) after the last speech, never before it
    assert ends[0].at_sample >= ends[0].speech_samples + starts[0].at_sample
    lag = (ends[0].at_sample - speech_end) / 16000
    assert 0.3 < lag < 1.0, lag
    audio = b"".join(e.pcm for e in events if isinstance(e, SpeechAudio))
    assert len(audio) >= len(pcm) * 0.8


def test_never_ending_speech_is_cut_at_max_length(speech):
    s = VoiceSettings(max_utterance_s=3.0)
    stream = DeviceStream("w-1", s)
    talk = speech("Please keep talking about the loading dock and the forklift and the scanner and the aisle")
    events = _run(stream, talk * 3)
    ends = [e for e in events if isinstance(e, SpeechEnd)]
    assert ends and ends[0].reason == "max-length"
    first_len = ends[0].at_sample - [e for e in events if isinstance(e, SpeechStart)][0].at_sample
    assert first_len <= 3.0 * 16000 + FRAME


def test_device_stop_flag_closes_utterance(speech):
    stream = DeviceStream("w-1", VoiceSettings())
    pcm = speech("Emergency help")
    events = []
    for i, c in enumerate(_chunks(SILENCE_1S + pcm)):
        events.extend(stream.push(parse_payload("w-1", encode_framed(c, seq=i), max_bytes=64000)))
    events.extend(stream.push(parse_payload("w-1", encode_framed(b"", seq=i + 1, stop=True), max_bytes=64000)))
    assert isinstance(events[-1], SpeechEnd) and events[-1].reason == "device-stop"


def test_short_click_is_marked_too_short():
    seg = Segmenter(silence_s=0.1, min_speech_s=0.25)
    frame = b"\x00\x00" * FRAME
    events = seg.push(frame, 0.9)
    for _ in range(5):
        events += seg.push(frame, 0.0)
    assert isinstance(events[0], SpeechStart)
    assert isinstance(events[-1], SpeechEnd) and events[-1].reason == "too-short"
